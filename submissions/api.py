"""Versions over REST: CI jobs submit archives and poll; host platforms read status."""

from django.db.models import Prefetch
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from governance.models import RiskRating
from reviews.models import SEVERITY_RANK, CheckRun, StageReview
from reviews.selectors import latest_runs

from . import services
from .models import PluginVersion
from .selectors import plugins_visible_to, versions_visible_to


class StageReviewOut(serializers.ModelSerializer):
    stage = serializers.CharField(source="stage.key")
    assignee = serializers.CharField(source="assignee.username", default=None)

    class Meta:
        model = StageReview
        fields = ["stage", "round", "status", "assignee", "started_at", "due_at", "decided_at", "decision_reason"]


class CheckRunOut(serializers.ModelSerializer):
    class Meta:
        model = CheckRun
        fields = [
            "id",
            "check_key",
            "origin",
            "tool",
            "tool_version",
            "status",
            "progress",
            "started_at",
            "finished_at",
            "summary",
            "error",
        ]


class VersionOut(serializers.ModelSerializer):
    organisation = serializers.CharField(source="plugin.organisation.slug")
    plugin = serializers.CharField(source="plugin.name")
    stages = serializers.SerializerMethodField()
    check_runs = serializers.SerializerMethodField()
    findings = serializers.SerializerMethodField()
    rating = serializers.SerializerMethodField()

    class Meta:
        model = PluginVersion
        fields = [
            "id",
            "organisation",
            "plugin",
            "version",
            "status",
            "review_round",
            "sha256",
            "size",
            "submitted_at",
            "decided_at",
            "decision_reason",
            "stages",
            "check_runs",
            "findings",
            "rating",
        ]

    def get_stages(self, version) -> list[dict]:
        current = [r for r in version.all_reviews if r.round == version.review_round]
        return StageReviewOut(current, many=True).data

    def get_check_runs(self, version) -> list[dict]:
        return CheckRunOut(version.all_runs, many=True).data

    def get_findings(self, version) -> dict[str, int]:
        """Counts by severity over the latest run of each check, from the runs' own summaries
        (no query per version)."""
        totals = dict.fromkeys(SEVERITY_RANK, 0)
        for run in latest_runs(version.all_runs):
            for severity, count in run.summary.get("findings", {}).items():
                totals[severity] = totals.get(severity, 0) + count
        return totals

    def get_rating(self, version) -> dict | None:
        """The latest risk rating: total (0-100), band, rubric version and the plain summary."""
        rating = version.latest_ratings[0] if version.latest_ratings else None
        if rating is None:
            return None
        return {
            "total": str(rating.total),
            "band": rating.band,
            "rubric": str(rating.rubric),
            "summary": rating.summary,
        }


def versions_for_api(*, user):
    reviews = StageReview.objects.select_related("stage", "assignee").order_by("stage__order", "stage__key")
    return (
        versions_visible_to(user=user)
        .select_related("plugin__organisation")
        .prefetch_related(
            Prefetch("stage_reviews", queryset=reviews, to_attr="all_reviews"),
            Prefetch("check_runs", queryset=CheckRun.objects.order_by("pk"), to_attr="all_runs"),
            Prefetch(
                "risk_ratings",
                queryset=RiskRating.objects.select_related("rubric").order_by("-pk"),
                to_attr="latest_ratings",
            ),
        )
        .order_by("-created_at", "-pk")
    )


class VersionViewSet(viewsets.ReadOnlyModelViewSet):
    """Versions the caller may see: status, current stages, check runs, findings by severity."""

    serializer_class = VersionOut

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return PluginVersion.objects.none()
        return versions_for_api(user=self.request.user)


class VersionUpload(serializers.Serializer):
    artifact = serializers.FileField(help_text="A .whl, .zip or .tar.gz with plugin.toml at its root.")
    submit = serializers.BooleanField(default=True, help_text="Submit for review at once (else keep a draft).")


class PluginVersionCreate(APIView):
    """Upload a new version of a plugin (multipart ``artifact``)."""

    parser_classes = [MultiPartParser]

    @extend_schema(request=VersionUpload, responses={201: VersionOut})
    def post(self, request, plugin: int):
        plugin_obj = get_object_or_404(plugins_visible_to(user=request.user), pk=plugin)
        upload = VersionUpload(data=request.data)
        upload.is_valid(raise_exception=True)
        version = services.version_create(
            plugin=plugin_obj, artifact=upload.validated_data["artifact"], actor=request.user
        )
        if upload.validated_data["submit"]:
            services.version_submit(version=version, actor=request.user)
        body = VersionOut(versions_for_api(user=request.user).get(pk=version.pk)).data
        return Response(body, status=status.HTTP_201_CREATED)

"""Versions over REST: CI jobs submit archives and poll; host platforms read status."""

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypedDict

import django_filters
from django.contrib.auth.models import User
from django.db.models import Prefetch, QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.fields import empty
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from decisions.models import RiskRating
from governance.api import StrictJSONParser
from governance.filters import IdFilter, UtcDateTimeFilter
from governance.ids import MAX_ID
from governance.viewsets import VisibleViewSet
from reviews.models import SEVERITY_RANK, CheckRun, StageReview
from reviews.selectors import latest_runs
from submissions import services
from submissions.models import PluginVersion, VersionRevision, VersionStatus
from submissions.selectors import plugins_visible_to, versions_visible_to


class _ApiPrefetches(TypedDict):
    """What ``versions_for_api`` prefetches onto each version (``Prefetch(to_attr=...)``)."""

    all_reviews: list[StageReview]
    all_runs: list[CheckRun]
    all_revisions: list[VersionRevision]
    latest_ratings: list[RiskRating]


if TYPE_CHECKING:  # django-stubs-ext is a development dependency
    from django_stubs_ext import WithAnnotations

    ApiVersion = WithAnnotations[PluginVersion, _ApiPrefetches]
else:  # what typing.get_type_hints (drf-spectacular reads the get_* methods) resolves at run time
    ApiVersion = PluginVersion


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
            "revision",
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


class RevisionOut(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.username")

    class Meta:
        model = VersionRevision
        fields = ["number", "artifact_name", "sha256", "size", "created_by", "created_at", "reason"]


class VersionOut(serializers.ModelSerializer):
    organisation = serializers.CharField(source="plugin.organisation.slug")
    plugin = serializers.CharField(source="plugin.name")
    stages = serializers.SerializerMethodField()
    check_runs = serializers.SerializerMethodField()
    findings = serializers.SerializerMethodField()
    rating = serializers.SerializerMethodField()
    revisions = RevisionOut(source="all_revisions", many=True, read_only=True)

    class Meta:
        model = PluginVersion
        fields = [
            "id",
            "organisation",
            "plugin",
            "version",
            "status",
            "review_round",
            "revision",
            "sha256",
            "size",
            "revisions",
            "submitted_at",
            "decided_at",
            "decision_reason",
            "stages",
            "check_runs",
            "findings",
            "rating",
        ]

    def get_stages(self, version: ApiVersion) -> list[dict]:
        current = [r for r in version.all_reviews if r.round == version.review_round]
        return StageReviewOut(current, many=True).data

    def get_check_runs(self, version: ApiVersion) -> list[dict]:
        return CheckRunOut(version.all_runs, many=True).data

    def get_findings(self, version: ApiVersion) -> dict[str, int]:
        """Counts by severity over the latest run of each check, from the runs' own summaries
        (no query per version)."""
        totals = dict.fromkeys(SEVERITY_RANK, 0)
        for run in latest_runs([r for r in version.all_runs if r.revision == version.revision]):
            for severity, count in run.summary.get("findings", {}).items():
                totals[severity] = totals.get(severity, 0) + count
        return totals

    def get_rating(self, version: ApiVersion) -> dict | None:
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


def versions_for_api(*, user: User) -> QuerySet[ApiVersion]:
    reviews = StageReview.objects.select_related("stage", "assignee").order_by("stage__order", "stage__key")
    return (
        versions_visible_to(user=user)
        .select_related("plugin__organisation")
        .prefetch_related(
            Prefetch("stage_reviews", queryset=reviews, to_attr="all_reviews"),
            Prefetch("check_runs", queryset=CheckRun.objects.order_by("pk"), to_attr="all_runs"),
            Prefetch(
                "revisions",
                queryset=VersionRevision.objects.select_related("created_by").order_by("number"),
                to_attr="all_revisions",
            ),
            Prefetch(
                "risk_ratings",
                queryset=RiskRating.objects.select_related("rubric").order_by("-pk"),
                to_attr="latest_ratings",
            ),
        )
        .order_by("-created_at", "-pk")
    )


class VersionFilter(django_filters.FilterSet):
    """``?status=approved&plugin=acme-exporter&organisation=acme&submitted_after=2026-01-01``; a
    value that is not one of the choices is a 400 naming the field, never silently ignored."""

    status = django_filters.MultipleChoiceFilter(choices=VersionStatus.choices)
    plugin = django_filters.CharFilter(field_name="plugin__name")
    plugin_id = IdFilter(field_name="plugin_id")
    organisation = django_filters.CharFilter(field_name="plugin__organisation__slug")
    created_after = UtcDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UtcDateTimeFilter(field_name="created_at", lookup_expr="lt")
    submitted_after = UtcDateTimeFilter(field_name="submitted_at", lookup_expr="gte")
    submitted_before = UtcDateTimeFilter(field_name="submitted_at", lookup_expr="lt")

    class Meta:
        model = PluginVersion
        fields: list[str] = []


class VersionViewSet(VisibleViewSet):
    """Versions the caller may see: status, current stages, check runs, findings by severity."""

    model = PluginVersion
    serializer_class = VersionOut
    filterset_class = VersionFilter
    token_scopes = {"GET": ("read", "submit", "report")}

    def visible(self, user: User) -> QuerySet[PluginVersion]:
        return versions_for_api(user=user)


class VersionUpload(serializers.Serializer):
    artifact = serializers.FileField(help_text="A .whl, .zip or .tar.gz with plugin.toml at its root.")
    submit = serializers.BooleanField(default=True, help_text="Submit for review at once (else keep a draft).")


class PluginVersionCreate(APIView):
    """Upload a new version of a plugin (multipart ``artifact``)."""

    parser_classes = [MultiPartParser]
    token_scopes = {"POST": "submit"}

    @extend_schema(request=VersionUpload, responses={201: VersionOut})
    def post(self, request: Request, plugin: int) -> Response:
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


# -- an author's CI drives its own versions -------------------------------------------

ERRORS = {
    400: OpenApiResponse(description="Invalid input: `code`, `detail` and `errors` (field, code, message)."),
    403: OpenApiResponse(description="The caller may see the version but is not one of its authors."),
    404: OpenApiResponse(description="No such version, or the caller may not see it."),
    409: OpenApiResponse(description="`invalid_transition`: the version is not in a state that allows this."),
}


class ReasonIn(serializers.Serializer):
    reason = serializers.CharField(help_text="Why; recorded in the history and the audit log.")


class AnswerIn(serializers.Serializer):
    thread = serializers.IntegerField(
        min_value=1, max_value=MAX_ID, help_text="The id of an open thread addressed to the authors."
    )
    body = serializers.CharField(help_text="The answer, added as a reply to that thread.")


class AnswersField(serializers.ListField):
    """A JSON list of answers. A multipart request sends it as one field holding the JSON."""

    child = AnswerIn()
    default_error_messages = {"invalid_json": "Send the answers as a JSON list of objects with `thread` and `body`."}

    def get_value(self, dictionary: Mapping[str, Any]) -> object:
        if hasattr(dictionary, "getlist"):  # a form: one field holding the JSON text
            return dictionary.get(self.field_name, empty)
        return super().get_value(dictionary)

    def to_internal_value(self, data: object) -> list[dict]:
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except ValueError:
                self.fail("invalid_json")
        return super().to_internal_value(data)


class ResubmitIn(ReasonIn):
    artifact = serializers.FileField(
        required=False,
        help_text="Optional: the fixed archive, a new revision of the same version (the manifest's name, "
        "version number and category must match). Intake and the checks run on it; the previous revision stays.",
    )
    answers = AnswersField(
        required=False,
        help_text='Optional: replies to open threads addressed to the authors, `[{"thread": 12, "body": "..."}]`; '
        "in a multipart request, this field holds that list as JSON.",
    )

    def validate(self, attrs: dict) -> dict:
        if any(str(key).startswith("answers[") for key in self.initial_data):  # never ignore an answer
            raise serializers.ValidationError({"answers": "Send the answers as one field holding a JSON list."})
        return attrs

    def validate_answers(self, value: list[dict]) -> dict[int, str]:
        answers: dict[int, str] = {}
        for item in value:
            if item["thread"] in answers:
                raise serializers.ValidationError(f"Thread {item['thread']} is answered twice.")
            answers[item["thread"]] = item["body"]
        return answers


class _VersionAction(APIView):
    """Find the version among those the caller may see (else 404), call the service, answer
    with the version as ``GET /versions/{id}/`` shows it."""

    token_scopes = {"POST": "submit"}

    def version(self, request: Request, pk: int) -> PluginVersion:
        return get_object_or_404(versions_visible_to(user=request.user), pk=pk)

    def answer(self, request: Request, version: PluginVersion) -> Response:
        return Response(VersionOut(versions_for_api(user=request.user).get(pk=version.pk)).data)


class VersionSubmit(_VersionAction):
    """Submit a draft for review."""

    @extend_schema(request=None, responses={200: VersionOut, **ERRORS})
    def post(self, request: Request, version: int) -> Response:
        target = self.version(request, version)
        return self.answer(request, services.version_submit(version=target, actor=request.user))


class VersionResubmit(_VersionAction):
    """Answer a request for changes: a reason, optionally a fixed archive (a new revision)
    and answers to the threads addressed to the authors, all in one step: if any part is
    refused, nothing changes. A new review round starts."""

    parser_classes = [MultiPartParser, FormParser, StrictJSONParser]

    @extend_schema(
        request={"multipart/form-data": ResubmitIn, "application/json": ResubmitIn},
        responses={200: VersionOut, **ERRORS},
    )
    def post(self, request: Request, version: int) -> Response:
        target = self.version(request, version)
        given = ResubmitIn(data=request.data)
        given.is_valid(raise_exception=True)
        data = given.validated_data
        resubmitted = services.version_resubmit(
            version=target,
            actor=request.user,
            reason=data["reason"],
            artifact=data.get("artifact"),
            answers=data.get("answers"),
        )
        return self.answer(request, resubmitted)


class VersionWithdraw(_VersionAction):
    """Withdraw a version that has not been decided yet (with a reason)."""

    @extend_schema(request=ReasonIn, responses={200: VersionOut, **ERRORS})
    def post(self, request: Request, version: int) -> Response:
        target = self.version(request, version)
        given = ReasonIn(data=request.data)
        given.is_valid(raise_exception=True)
        withdrawn = services.version_withdraw(version=target, actor=request.user, reason=given.validated_data["reason"])
        return self.answer(request, withdrawn)

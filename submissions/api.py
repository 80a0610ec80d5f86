"""Read API for versions: what CI jobs and host platforms poll."""

from django.db.models import Prefetch
from rest_framework import serializers, viewsets

from reviews.models import StageReview

from .models import PluginVersion
from .selectors import versions_visible_to


class StageReviewOut(serializers.ModelSerializer):
    stage = serializers.CharField(source="stage.key")
    assignee = serializers.CharField(source="assignee.username", default=None)

    class Meta:
        model = StageReview
        fields = ["stage", "round", "status", "assignee", "started_at", "due_at", "decided_at", "decision_reason"]


class VersionOut(serializers.ModelSerializer):
    organisation = serializers.CharField(source="plugin.organisation.slug")
    plugin = serializers.CharField(source="plugin.name")
    stages = serializers.SerializerMethodField()

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
        ]

    def get_stages(self, version) -> list[dict]:
        current = [r for r in version.all_reviews if r.round == version.review_round]
        return StageReviewOut(current, many=True).data


class VersionViewSet(viewsets.ReadOnlyModelViewSet):
    """Versions the caller may see, with the stage reviews of their current round."""

    serializer_class = VersionOut

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return PluginVersion.objects.none()
        reviews = StageReview.objects.select_related("stage", "assignee").order_by("stage__order", "stage__key")
        return (
            versions_visible_to(user=self.request.user)
            .select_related("plugin__organisation")
            .prefetch_related(Prefetch("stage_reviews", queryset=reviews, to_attr="all_reviews"))
            .order_by("-created_at", "-pk")
        )

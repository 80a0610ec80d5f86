"""Exemptions and deployments over REST, read-only: ``GET /api/v1/exemptions/`` (what may ship
despite a policy or a finding, until when, on whose approval) and ``GET
/api/v1/deployments/`` (where each version runs and ran). They are granted and recorded in the
admin; the feed (decisions/feed_api.py) is what host platforms poll for changes."""

import django_filters
from django.contrib.auth.models import User
from django.db.models import QuerySet
from rest_framework import serializers

from governance.filters import IdFilter
from governance.viewsets import VisibleViewSet

from .models import Deployment, DeploymentStatus, Exemption, ExemptionStatus
from .selectors import deployments_visible_to, exemptions_visible_to


def username() -> serializers.SlugRelatedField:
    return serializers.SlugRelatedField(slug_field="username", read_only=True)


class ExemptionFilter(django_filters.FilterSet):
    """``?plugin=4&version=9&status=approved&policy=no-network``."""

    plugin = IdFilter(field_name="plugin_id")
    version = IdFilter(field_name="version_id")
    status = django_filters.MultipleChoiceFilter(choices=ExemptionStatus.choices)
    policy = django_filters.CharFilter(field_name="policy_key")

    class Meta:
        model = Exemption
        fields: list[str] = []


class ExemptionOut(serializers.ModelSerializer):
    requested_by, approved_by = username(), username()

    class Meta:
        model = Exemption
        fields = [
            "id",
            "plugin",
            "version",
            "scope",
            "policy_key",
            "finding_fingerprint",
            "finding_title",
            "justification",
            "compensating_controls",
            "status",
            "requested_by",
            "requested_at",
            "approved_by",
            "decided_at",
            "decision_reason",
            "expires_at",
        ]


class ExemptionViewSet(VisibleViewSet):
    """The exemptions the caller may see: of the plugins and versions they see, and their own
    requests. Only an approved one that has not expired suppresses anything."""

    model = Exemption
    serializer_class = ExemptionOut
    filterset_class = ExemptionFilter
    token_scopes = {"GET": ("read",)}

    def visible(self, user: User) -> QuerySet[Exemption]:
        return exemptions_visible_to(user=user).select_related("requested_by", "approved_by")


class DeploymentFilter(django_filters.FilterSet):
    """``?version=9&plugin=4&environment=production&status=active``."""

    version = IdFilter(field_name="version_id")
    plugin = IdFilter(field_name="version__plugin_id")
    environment = django_filters.CharFilter(field_name="environment__key")
    status = django_filters.MultipleChoiceFilter(choices=DeploymentStatus.choices)

    class Meta:
        model = Deployment
        fields: list[str] = []


class DeploymentOut(serializers.ModelSerializer):
    plugin = serializers.IntegerField(source="version.plugin_id", read_only=True)
    environment = serializers.SlugRelatedField(slug_field="key", read_only=True)
    deployed_by, ended_by = username(), username()

    class Meta:
        model = Deployment
        fields = [
            "id",
            "version",
            "plugin",
            "environment",
            "status",
            "attestation",
            "deployed_by",
            "deployed_at",
            "reason",
            "ended_by",
            "ended_at",
            "end_reason",
            "incident",
        ]


class DeploymentViewSet(VisibleViewSet):
    """Where the versions the caller may see run (``active``) and ran."""

    model = Deployment
    serializer_class = DeploymentOut
    filterset_class = DeploymentFilter
    token_scopes = {"GET": ("read", "feed")}

    def visible(self, user: User) -> QuerySet[Deployment]:
        return deployments_visible_to(user=user).select_related("version", "environment", "deployed_by", "ended_by")

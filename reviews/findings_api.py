"""Findings over REST, for the tools that mirror them (a ticketing system, a dashboard):
``GET /api/v1/findings/`` with filters, ``GET /api/v1/findings/{id}/``, and
``POST /api/v1/findings/{id}/triage/``, which is the admin's triage (``finding_triage``): the
same people may do it (the reviewers of the stage that owns the finding, never its authors),
with a reason, each change a trail row and an audit event."""

import django_filters
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from governance.filters import IdFilter
from governance.viewsets import VisibleViewSet

from .findings_data import KINDS
from .models import Finding, Severity, Triage
from .selectors import findings_visible_to
from .services import finding_triage


class FindingFilter(django_filters.FilterSet):
    """``?version=3&severity=high&severity=critical&triage=open&kind=security&tool=bandit&rule=B602``;
    a value outside the choices is a 400 naming the field."""

    version = IdFilter(field_name="version_id")
    severity = django_filters.MultipleChoiceFilter(choices=Severity.choices)
    triage = django_filters.MultipleChoiceFilter(choices=Triage.choices)
    kind = django_filters.ChoiceFilter(choices=[(kind, kind) for kind in KINDS])
    tool = django_filters.CharFilter()
    rule = django_filters.CharFilter(field_name="rule_id")

    class Meta:
        model = Finding
        fields: list[str] = []


class FindingOut(serializers.ModelSerializer):
    check_key = serializers.CharField(source="check_run.check_key", read_only=True)

    class Meta:
        model = Finding
        fields = [
            "id",
            "version",
            "check_run",
            "check_key",
            "kind",
            "severity",
            "rule_id",
            "title",
            "message",
            "path",
            "line",
            "cwe",
            "tool",
            "fingerprint",
            "carried_over",
            "triage",
            "plan",
            "plan_due",
        ]


class TriageIn(serializers.Serializer):
    to_state = serializers.ChoiceField(choices=Triage.choices)
    reason = serializers.CharField(max_length=5000, help_text="Why: required, as in the admin.")
    plan = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)
    plan_due = serializers.DateField(required=False, allow_null=True, default=None)


class FindingViewSet(VisibleViewSet):
    """The findings of the versions the caller may see, newest first."""

    model = Finding
    serializer_class = FindingOut
    filterset_class = FindingFilter
    token_scopes = {"GET": ("read", "triage"), "POST": "triage"}

    def visible(self, user) -> QuerySet[Finding]:
        return findings_visible_to(user=user).select_related("check_run")

    @extend_schema(request=TriageIn, responses={200: FindingOut})
    @action(detail=True, methods=["post"])
    def triage(self, request: Request, pk: str | None = None) -> Response:
        """Triage the finding; 403 for those who may see it but not judge it."""
        finding = get_object_or_404(self.get_queryset(), pk=pk)  # pk: an id (IdConverter)
        given = TriageIn(data=request.data)
        given.is_valid(raise_exception=True)
        finding = finding_triage(finding=finding, actor=request.user, **given.validated_data)
        return Response(FindingOut(self.get_queryset().get(pk=finding.pk)).data)

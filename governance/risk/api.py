"""The CI gate over REST: pass or fail, with the policies and findings that decide it."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from submissions.selectors import versions_visible_to

from .services import gate_verdict

GateOut = inline_serializer(
    name="GateOut",
    fields={
        "version": serializers.IntegerField(),
        "status": serializers.CharField(),
        "verdict": serializers.ChoiceField(choices=["pass", "fail"]),
        "policies": serializers.ListField(child=serializers.DictField(), help_text="Enforce-mode violations."),
        "findings": serializers.ListField(child=serializers.DictField(), help_text="Open critical and high findings."),
        "exempted": serializers.DictField(help_text="What approved, unexpired exemptions suppress."),
        "evaluated": serializers.ListField(child=serializers.DictField(), help_text="Every policy's outcome."),
        "rating": serializers.DictField(),
    },
)


class VersionGate(APIView):
    """``GET /api/v1/versions/{id}/gate/``: evaluated now, nothing stored. A CI job fails its
    pipeline when ``verdict`` is ``fail``."""

    @extend_schema(responses={200: GateOut})
    def get(self, request, version: int):
        target = get_object_or_404(
            versions_visible_to(user=request.user).select_related("plugin__organisation"), pk=version
        )
        return Response(gate_verdict(version=target))

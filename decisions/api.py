"""The CI gate over REST: pass or fail, with the policies and findings that decide it; and the
reports CI jobs post, answered with the verdict they lead to when asked to wait."""

from django.conf import settings
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from governance.errors import ValidationFailed
from reviews.api import ReportOut, ReportUpload
from reviews.models import RUN_ACTIVE, CheckRun, RunOrigin
from reviews.reports import STREAMED, AttachedReport, report_attach, report_queue
from submissions.selectors import versions_visible_to

from .gate import gate_verdict, gate_verdict_waiting

VERDICTS = ["pass", "fail", "pending"]
WAIT = OpenApiParameter(
    "wait",
    bool,
    description="Wait (at most WARDEN_GATE_WAIT_SECONDS) until the verdict is no longer `pending`; "
    "`wait.gave_up` is true when it still is.",
)


def wants_wait(request: Request) -> bool:
    return request.query_params.get("wait", "").lower() in ("true", "1", "yes")


GateOut = inline_serializer(
    name="GateOut",
    fields={
        "version": serializers.IntegerField(),
        "status": serializers.CharField(),
        "review_round": serializers.IntegerField(),
        "verdict": serializers.ChoiceField(
            choices=VERDICTS,
            help_text="pending: checks of the current round have not all finished (or not been queued yet); "
            "fail: a blocking stage failed, the review ended without a pass, or an enforced policy is violated; "
            "pass: every check of every started stage finished and no enforced policy is violated.",
        ),
        "reasons": serializers.ListField(
            child=serializers.DictField(), help_text="`code` and `detail` of the verdict."
        ),
        "waiting_for": serializers.ListField(
            child=serializers.DictField(),
            help_text="Checks not finished: `check`, `status` (not_run, queued, running).",
        ),
        "policies": serializers.ListField(child=serializers.DictField(), help_text="Enforce-mode violations."),
        "findings": serializers.ListField(child=serializers.DictField(), help_text="Open critical and high findings."),
        "exempted": serializers.DictField(help_text="What approved, unexpired exemptions suppress."),
        "evaluated": serializers.ListField(child=serializers.DictField(), help_text="Every policy's outcome."),
        "rating": serializers.DictField(),
        "wait": serializers.DictField(
            required=False, help_text="With ?wait=true: waited_seconds, limit_seconds, gave_up."
        ),
    },
)


class VersionGate(APIView):
    """``GET /api/v1/versions/{id}/gate/``: evaluated now, nothing stored. A CI job passes on
    ``pass``, fails on ``fail``, and waits (or polls again) on ``pending`` (docs/policies.md)."""

    token_scopes = {"GET": ("read", "report", "submit")}  # a CI job asks after it posts

    @extend_schema(responses={200: GateOut}, parameters=[WAIT])
    def get(self, request: Request, version: int) -> Response:
        target = get_object_or_404(
            versions_visible_to(user=request.user).select_related("plugin__organisation"), pk=version
        )
        return Response(gate_verdict_waiting(version=target) if wants_wait(request) else gate_verdict(version=target))


class VersionReports(APIView):
    """Attach an external report (multipart ``format`` and ``report``) to a version: 201 with
    the new check run. Posting the same report again is idempotent: when the poster's current
    run of that format and tool has the same digest (the report's bytes and what Warden derived
    from them: advisory matches, budgets), the answer is 200 with that run and
    ``"unchanged": true``, and nothing is stored (no run, no findings, no audit row).

    A SARIF log over ``WARDEN_REPORT_INLINE_BYTES`` is imported by a worker: 202 with the
    queued run and its ``url`` (also the ``Location`` header) to poll; the gate is pending
    until it is imported."""

    parser_classes = [MultiPartParser]
    token_scopes = {"POST": "report"}

    @extend_schema(
        request=ReportUpload,
        responses={201: ReportOut, 200: ReportOut, 202: ReportOut},
        parameters=[
            OpenApiParameter(
                "wait",
                bool,
                description="Also answer with the gate verdict (`gate`), waiting (at most WARDEN_GATE_WAIT_SECONDS) "
                "until it is no longer `pending`.",
            )
        ],
    )
    def post(self, request: Request, version: int) -> Response:
        target = get_object_or_404(versions_visible_to(user=request.user), pk=version)
        upload = ReportUpload(data=request.data)
        upload.is_valid(raise_exception=True)
        report = upload.validated_data["report"]
        if report.size > settings.WARDEN_MAX_REPORT_BYTES:
            raise ValidationFailed(
                f"The report is larger than {settings.WARDEN_MAX_REPORT_BYTES} bytes.",
                code="invalid_report",
                errors=[{"field": "report", "code": "too_large", "message": "Too large."}],
            )
        format, filename = upload.validated_data["format"], (report.name or "report.json")[-80:]
        queued = format in STREAMED and report.size > settings.WARDEN_REPORT_INLINE_BYTES
        if queued:
            attached = report_queue(version=target, format=format, upload=report, actor=request.user, filename=filename)
        else:
            attached = report_attach(
                version=target, format=format, content=report.read(), actor=request.user, filename=filename
            )
        if wants_wait(request):  # the report is stored: wait for the verdict it leads to
            gate = gate_verdict_waiting(version=target)
            attached.run.refresh_from_db()
        body = ReportOut(attached).data
        if wants_wait(request):
            body["gate"] = gate
        status = 200 if attached.unchanged else 202 if attached.run.status in RUN_ACTIVE else 201
        return Response(body, status=status, headers={"Location": body["url"]} if status == 202 else None)


class VersionReport(APIView):
    """``GET /api/v1/versions/{id}/reports/{run}/``: a posted report's run, to poll while a
    worker imports it (``status`` queued or running) and to read why it was refused."""

    token_scopes = {"GET": ("read", "report", "submit")}

    @extend_schema(responses={200: ReportOut})
    def get(self, request: Request, version: int, run: int) -> Response:
        target = get_object_or_404(versions_visible_to(user=request.user), pk=version)
        found = get_object_or_404(CheckRun.objects.filter(version=target, origin=RunOrigin.EXTERNAL), pk=run)
        return Response(ReportOut(AttachedReport(run=found, unchanged=False)).data)

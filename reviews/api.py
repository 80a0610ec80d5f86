"""Checks over REST: advisory imports from vulnerability feeds, and the serializers of a CI
job's report (posted through decisions/api.py, which answers with the gate verdict)."""

import json
import tempfile
from pathlib import Path

from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from governance.api import StrictJSONParser
from governance.errors import ValidationFailed
from governance.text import encodable

from .advisories.osv import load_any, parse_advisory
from .advisories.store import advisories_import
from .findings_data import ReportError
from .reports import FORMATS
from .selectors import also_reported_by

MAX_ADVISORY_UPLOAD = 512 * 1024 * 1024


class CanImportAdvisories(BasePermission):
    def has_permission(self, request, view):
        return request.user.has_perm("reviews.add_advisory")


class ImportResultOut(serializers.Serializer):
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    errors = serializers.ListField(child=serializers.CharField())


class AdvisoryImport(APIView):
    """Import OSV advisories: a JSON body (one advisory or a list), or a multipart ``file``
    (.json, .yaml, or an OSV all.zip export). Entries that cannot be read are listed in
    ``errors``; if none could be read at all the answer is 400."""

    parser_classes = [StrictJSONParser, MultiPartParser]
    permission_classes = [CanImportAdvisories]
    token_scopes = {"POST": "advisories"}

    @extend_schema(request=None, responses={200: ImportResultOut})
    def post(self, request):
        errors: list[ReportError] = []
        upload = request.FILES.get("file")
        if upload is not None:
            result = self._import_file(upload, errors)
        else:
            documents = request.data if isinstance(request.data, list) else [request.data]
            result = advisories_import(advisories=_parse_each(documents, errors))
        if errors and not result.seen:
            raise ValidationFailed(
                "No advisory could be read.",
                code="invalid_advisories",
                errors=[{"field": "advisories", "code": "invalid", "message": str(e)} for e in errors],
            )
        return Response(
            {
                "created": result.created,
                "updated": result.updated,
                "unchanged": result.unchanged,
                "errors": [str(e) for e in errors],
            }
        )

    def _import_file(self, upload, errors):
        if upload.size > MAX_ADVISORY_UPLOAD:
            raise ValidationFailed(f"The file is larger than {MAX_ADVISORY_UPLOAD} bytes.", code="too_large")
        suffix = Path(upload.name or "").suffix.lower()
        if suffix not in (".json", ".yaml", ".yml", ".zip"):
            raise ValidationFailed("Send a .json, .yaml or .zip file.", code="unsupported_format")
        with tempfile.TemporaryDirectory(prefix="warden-osv-") as scratch:
            path = Path(scratch) / f"upload{suffix}"
            with path.open("wb") as target:
                for chunk in upload.chunks():
                    target.write(chunk)
            name = encodable(Path(upload.name or "upload").name) or f"upload{suffix}"
            try:
                return advisories_import(advisories=load_any(path, errors=errors, name=name))
            except ReportError as exc:  # the file as a whole is unreadable (not a zip, say): nothing was stored
                raise ValidationFailed(
                    "No advisory could be read.",
                    code="invalid_advisories",
                    errors=[{"field": "file", "code": "invalid", "message": str(exc)}],
                ) from None


def _parse_each(documents: list, errors: list[ReportError]):
    for index, document in enumerate(documents):
        try:
            yield parse_advisory(json.loads(json.dumps(document)))
        except ReportError as exc:
            errors.append(ReportError(f"[{index}]: {exc}"))


class ReportUpload(serializers.Serializer):
    format = serializers.ChoiceField(choices=FORMATS)
    report = serializers.FileField()


class ReportOut(serializers.Serializer):
    id = serializers.IntegerField(source="run.pk")
    check_key = serializers.CharField(source="run.check_key")
    revision = serializers.IntegerField(source="run.revision", help_text="The version's revision the report is about.")
    tool = serializers.CharField(source="run.tool")
    tool_version = serializers.CharField(source="run.tool_version")
    status = serializers.CharField(
        source="run.status",
        help_text="queued or running: a large report a worker is importing (poll its `url`); succeeded or failed: "
        "imported, failed when it holds critical or high findings; errored: the worker refused it (`error`).",
    )
    summary = serializers.DictField(source="run.summary")
    error = serializers.CharField(source="run.error", help_text="Why the worker refused the report.")
    url = serializers.SerializerMethodField(help_text="Where to ask after this report.")
    unchanged = serializers.BooleanField(
        help_text="True (and status 200): this poster's current report of this tool already was this one."
    )
    also_reported_by = serializers.SerializerMethodField(
        help_text="Per other current source (a Warden check, or another posted report and its tool): how many "
        "of this report's places it reports too. Each such place counts once in the rating."
    )

    def get_also_reported_by(self, attached) -> dict[str, int]:
        return also_reported_by(run=attached.run)

    def get_url(self, attached) -> str:
        return reverse("version-report", kwargs={"version": attached.run.version_id, "run": attached.run.pk})

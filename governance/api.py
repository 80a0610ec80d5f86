"""API plumbing shared by the apps: one JSON error shape for every refusal."""

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from rest_framework import exceptions
from rest_framework.pagination import CursorPagination
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from .contention import RETRY_AFTER_SECONDS, busy_body, is_contention
from .errors import WardenError
from .text import encodable, lone_surrogate


class StrictJSONParser(JSONParser):
    r"""DRF's JSON parser, refusing a document that holds a lone UTF-16 surrogate (``"\udc80"``):
    it is not text, and could not be stored or sent back (governance/text.py)."""

    def parse(self, stream, media_type=None, parser_context=None):
        document = super().parse(stream, media_type, parser_context)
        bad = lone_surrogate(document)
        if bad is not None:
            raise exceptions.ParseError(f"JSON parse error - {bad[:60]!r} holds a lone UTF-16 surrogate, not text.")
        return document


def exception_handler(exc, context):
    """Errors are ``{"code", "detail", "errors"}``: ``code`` is stable, ``detail`` is for people."""
    if isinstance(exc, WardenError):
        return Response(exc.as_dict(), status=exc.status)
    if is_contention(exc):
        busy = Response(busy_body(), status=503)
        busy["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return busy
    if isinstance(exc, RecursionError):  # JSON nested deeper than the parser can follow
        return Response({"code": "parse_error", "detail": "The JSON is nested too deeply.", "errors": []}, status=400)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        errors = [
            {"field": encodable(field), "message": encodable(" ".join(map(str, messages)))}
            for field, messages in _flatten(exc.detail)
        ]
        response.data = {"code": "invalid", "detail": "The request is invalid.", "errors": errors}
    else:
        response.data = {
            "code": exc.get_codes() if isinstance(exc.get_codes(), str) else "error",
            "detail": encodable(str(exc.detail)),
            "errors": [],
        }
    return response


def _flatten(detail, prefix: str = ""):
    if isinstance(detail, dict):
        for key, value in detail.items():
            yield from _flatten(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(detail, list) and detail and not isinstance(detail[0], (str, exceptions.ErrorDetail)):
        for index, value in enumerate(detail):
            yield from _flatten(value, f"{prefix}[{index}]")
    else:
        yield prefix or "non_field_errors", detail if isinstance(detail, list) else [detail]


class CursorPage(CursorPagination):
    """Every list under /api/: newest first, 50 a page (``?page_size=`` up to 500), with
    ``next`` and ``previous`` links whose cursor stays right while rows are added (an offset
    would skip or repeat rows then). A cursor Warden did not write is a 404."""

    ordering = "-pk"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500

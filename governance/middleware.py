import logging
import re

from django.conf import settings
from django.http import HttpResponse, JsonResponse

from .contention import DETAIL, RETRY_AFTER_SECONDS, busy_body, is_contention
from .request_context import bind_request_id, current_request_id, unbind_request_id

# A caller-supplied id is kept only when it looks like an id, so it cannot smuggle
# arbitrary text into the audit log.
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


class RequestIdMiddleware:
    """Binds X-Request-ID (or a fresh one) for the audit log and echoes it back."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        supplied = request.headers.get("X-Request-ID", "")
        token = bind_request_id(supplied if _SAFE_ID.match(supplied) else None)
        try:
            request.request_id = current_request_id()
            response = self.get_response(request)
            response["X-Request-ID"] = request.request_id
            return response
        finally:
            unbind_request_id(token)


class RequestSizeMiddleware:
    """Refuse a body larger than any upload Warden accepts (the largest of an artifact and a
    report, plus room for the form) by its Content-Length, before Django reads and spools it to
    disk: a 400 MB multipart post costs the server nothing. 413, in the API's JSON shape under
    ``/api/``. (A chunked body has no Content-Length; the upload limits of each form refuse it.)"""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        limit = settings.WARDEN_MAX_REQUEST_BYTES
        if length > limit:
            detail = f"The request body is {length} bytes; Warden accepts at most {limit}."
            if request.path.startswith("/api/"):
                return JsonResponse({"code": "request_too_large", "detail": detail, "errors": []}, status=413)
            return HttpResponse(detail, status=413, content_type="text/plain")
        return self.get_response(request)


class RefusalLogFilter(logging.Filter):
    """On ``django.request``: a refused request (4xx) is one line, without the traceback that
    Django attaches when a view raised PermissionDenied; server errors keep theirs."""

    def filter(self, record: logging.LogRecord) -> bool:
        if 400 <= getattr(record, "status_code", 500) < 500:
            record.exc_info = record.exc_text = None
        return True


class ContentionMiddleware:
    """A page the database was too busy to serve (governance/contention.py): 503 with
    ``Retry-After``, JSON under ``/api/``, never a 500. The API's views answer it in DRF's
    exception handler (governance/api.py); this answers it for Django's views (the admin's)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not is_contention(exception):
            return None
        if request.path.startswith("/api/"):
            response: HttpResponse = JsonResponse(busy_body(), status=503)
        else:
            response = HttpResponse(DETAIL, status=503, content_type="text/plain; charset=utf-8")
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response

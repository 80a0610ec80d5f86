import logging
import re

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


class RefusalLogFilter(logging.Filter):
    """On ``django.request``: a refused request (4xx) is one line, without the traceback that
    Django attaches when a view raised PermissionDenied; server errors keep theirs."""

    def filter(self, record: logging.LogRecord) -> bool:
        if 400 <= getattr(record, "status_code", 500) < 500:
            record.exc_info = record.exc_text = None
        return True

"""The TUF repository over HTTP (docs/hosts.md "Updating through TUF"), read with the feed's
permission (``decisions.read_feed``: a feed reader's token, or a session):

- ``/tuf/<n>.root.json``: every root version (a host walks them one by one from the root it trusts);
- ``/tuf/timestamp.json``: the newest timestamp, never cached;
- ``/tuf/<n>.snapshot.json``, ``/tuf/<n>.targets.json``, ``/tuf/<n>.bins-<xx>.json``: exactly that
  version (consistent snapshots), immutable;
- ``/tuf/targets/<dirs>/<sha256>.<file>``: the artifact, while hosts may run it.
"""

import logging
import math
import re

from django.contrib.auth.models import AnonymousUser
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.views.decorators.http import require_GET
from rest_framework.exceptions import AuthenticationFailed, PermissionDenied

from governance.lockout import TOKEN_CREDENTIALS, LockedOut, lockout_response
from submissions.tokens import token_authenticate, token_rate_wait

from . import tuf_repo, tuf_targets

JSON = "application/json"
logger = logging.getLogger(__name__)
IMMUTABLE = "private, max-age=31536000, immutable"
TARGET_FILE = re.compile(r"^(?:(?P<dirs>.+)/)?(?P<sha256>[0-9a-f]{64})\.(?P<name>[^/]+)$")


def _refusal(request: HttpRequest) -> HttpResponse | None:
    """401 without credentials, 404 (not 403: nothing to see here) without the feed permission,
    429 with Retry-After beyond the token's rate (each read counts, as on the feed) or while the
    address is locked out for bad keys."""
    user = request.user
    if not user.is_authenticated:
        try:
            found = token_authenticate(request, needed=("feed",))
        except AuthenticationFailed:
            found = None
        except LockedOut:
            return lockout_response(request, None, TOKEN_CREDENTIALS)
        except PermissionDenied:  # a token without the feed scope: nothing to see here either
            raise Http404 from None
        user = found[0] if found else AnonymousUser()
        if found and (wait := token_rate_wait(prefix=found[1].prefix, per_minute=found[1].rate_per_minute)):
            response = HttpResponse("Too many requests with this token: try again later.", status=429)
            response["Retry-After"] = str(math.ceil(wait))
            return response
    if not user.is_authenticated:
        response = HttpResponse("Authentication required: a feed reader's token.", status=401)
        response["WWW-Authenticate"] = "Token"
        return response
    if not user.has_perm("decisions.read_feed"):
        raise Http404
    return None


def _metadata(request: HttpRequest, role: str, version: int | None) -> HttpResponse:
    if refusal := _refusal(request):
        return refusal
    data = tuf_repo.metadata_bytes(role=role, version=version)
    if data is None:
        raise Http404
    response = HttpResponse(data, content_type=JSON)
    response["Cache-Control"] = "no-cache" if version is None else IMMUTABLE
    return response


@require_GET
def root(request: HttpRequest, version: int) -> HttpResponse:
    return _metadata(request, "root", version)


@require_GET
def timestamp(request: HttpRequest) -> HttpResponse:
    return _metadata(request, "timestamp", None)


@require_GET
def metadata(request: HttpRequest, version: str, role: str) -> HttpResponse:
    return _metadata(request, role, int(version))


@require_GET
def target(request: HttpRequest, path: str) -> HttpResponseBase:
    """Stream the artifact a target names; a version hosts may no longer run is gone (404)."""
    if refusal := _refusal(request):
        return refusal
    match = TARGET_FILE.match(path)
    if match is None:
        raise Http404
    dirs, sha256, name = match["dirs"], match["sha256"], match["name"]
    version = tuf_targets.allowed_version(path=f"{dirs}/{name}" if dirs else name, sha256=sha256)
    if version is None:
        raise Http404
    try:
        stream = version.artifact.open("rb")
    except FileNotFoundError:  # the metadata lists it but the storage lost it: say so, never a 500
        logger.error("The artifact of %s (%s) is missing from storage", version, version.artifact.name)
        return HttpResponse(
            "The artifact is listed but missing from Warden's storage; this was logged for the operators.\n",
            status=503,
            content_type="text/plain",
        )
    response = FileResponse(stream, content_type="application/octet-stream")
    response["Content-Length"] = str(version.size)
    response["Cache-Control"] = IMMUTABLE
    return response

"""The lockout of repeated failed sign-ins (django-axes; docs/runbook.md, "Sign-in lockout").

A password that fails ``AXES_FAILURE_LIMIT`` times for one username from one address locks that
pair out for ``AXES_COOLOFF_TIME``: the right password is refused too until it passes, or until
a platform admin deletes the *access attempt* in the admin. Integration tokens count the same
way: every bad key from one address is a failure of one pseudo-user, ``(integration token)``,
so guessing keys from one address stops after the limit (a key names its own prefix, so a
username per key would never add up). A locked-out request is a 429 with ``Retry-After``: an
admin page in the admin, the API's JSON error everywhere else.
"""

import ipaddress
import math
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_cool_off, get_failure_limit
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib import admin
from django.contrib.auth.signals import user_login_failed
from django.db.models import Max, Subquery, Sum
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from rest_framework.exceptions import AuthenticationFailed, Throttled

TOKEN_CREDENTIALS = {"username": "(integration token)"}
T = TypeVar("T")


class LockedOut(Throttled):
    """Too many failed sign-ins from this address: a 429 with ``Retry-After``."""

    default_code = "locked_out"

    def __init__(self) -> None:
        super().__init__(wait=cool_off_seconds(), detail=lockout_message())


def cool_off_seconds() -> int:
    cool_off = get_cool_off()
    return math.ceil(cool_off.total_seconds()) if cool_off else 0


def lockout_message() -> str:
    return (
        f"Too many failed sign-ins from this address: try again in {math.ceil(cool_off_seconds() / 60)} minutes, "
        "or ask a platform admin to unlock it."
    )


def token_guarded(request: HttpRequest, check: Callable[[], T], *, locked_out_possible: bool = True) -> T:
    """``check()``, which reads an integration token's key, under the lockout: refused at once
    (LockedOut) while this address is locked out; an AuthenticationFailed it raises counts as a
    failed sign-in. A refused scope (PermissionDenied) does not: the key was right. A caller
    that has read already that the address cannot be locked out (``maybe_locked_out``) says so
    with ``locked_out_possible=False``, and the lockout is not read again."""
    if locked_out_possible and token_locked_out(request):
        raise LockedOut()
    try:
        return check()
    except AuthenticationFailed:
        user_login_failed.send(sender=__name__, credentials=TOKEN_CREDENTIALS, request=request)
        raise


def token_locked_out(request: HttpRequest) -> bool:
    return AxesProxyHandler.is_locked(request, TOKEN_CREDENTIALS)


def token_failure_columns(ip: Any) -> dict[str, Subquery]:
    """The bad keys counted against address ``ip`` and the time of the last, as columns of
    another query: the feed's one-query poll reads them, and ``maybe_locked_out`` decides."""
    attempts = AccessAttempt.objects.filter(username=TOKEN_CREDENTIALS["username"], ip_address=ip).order_by()
    attempts = attempts.values("username")
    return {
        "key_failures": Subquery(attempts.annotate(total=Sum("failures_since_start")).values("total")),
        "key_failed_at": Subquery(attempts.annotate(last=Max("attempt_time")).values("last")),
    }


def maybe_locked_out(request: HttpRequest, failures: int | None, failed_at: datetime | None) -> bool:
    """From ``token_failure_columns``: True whenever ``token_locked_out`` would be, and sometimes
    when it would not (it counts, within the cool-off, each user agent's failures; this counts
    them all once the last is within it). A caller that hears True asks ``token_locked_out``."""
    cool_off = get_cool_off(request)
    return bool(
        failures
        and failed_at
        and failures >= get_failure_limit(request, TOKEN_CREDENTIALS)
        and (cool_off is None or failed_at >= timezone.now() - cool_off)
    )


def lockout_response(request: HttpRequest, original_response: Any, credentials: dict | None) -> HttpResponse:
    """``AXES_LOCKOUT_CALLABLE``: the admin's page for the admin's sign-in form, the API's error
    shape for anything else (a token's request)."""
    if request.path.startswith(reverse("admin:index")) and credentials != TOKEN_CREDENTIALS:
        context = {
            **admin.site.each_context(request),
            "title": "Too many failed sign-ins",
            "message": lockout_message(),
        }
        response: HttpResponse = render(request, "admin/locked_out.html", context, status=429)
    else:
        response = JsonResponse({"code": "locked_out", "detail": lockout_message(), "errors": []}, status=429)
    response["Retry-After"] = str(cool_off_seconds())
    return response


def client_ip(request: HttpRequest) -> str | None:
    """``AXES_CLIENT_IP_CALLABLE``: the peer's address, or, behind ``WARDEN_TRUSTED_PROXIES``
    reverse proxies, the address the outermost of them saw (``X-Forwarded-For`` is the client's
    to write, except for the entries the proxies appended)."""
    proxies = settings.WARDEN_TRUSTED_PROXIES
    if proxies:
        forwarded = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
        outermost = _address(forwarded[-proxies]) if len(forwarded) >= proxies else None
        if outermost:
            return outermost
    return _address(request.META.get("REMOTE_ADDR", ""))


def _address(text: str) -> str | None:
    """An IP address as text, or None: what the lockout stores must be one (an inet column)."""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None

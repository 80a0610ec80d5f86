"""Integration tokens (README, "REST API"; docs/runbook.md, "Integration tokens"): how
external tools authenticate to the API.

A token is created in the admin by a platform admin (for any organisation, or none) or by an
author (for their own organisation only), shown once, and stored as its prefix and a hash.
Each request with it is checked here, in this order: the key (401 when unknown, revoked or
expired, or its owner is inactive; each counts towards the sign-in lockout, and a locked-out
address is a 429), the scope the endpoint names for the method (403), the
rate (429 with Retry-After). The owner's own permissions still apply, and a token bound to an
organisation sees only that organisation's plugins (``bound_organisation`` in
submissions/selectors.py). Writes made with a token name it in the audit log.
"""

import time
from datetime import timedelta
from typing import Any

from django.contrib.auth.models import User
from django.core.cache import cache
from django.db import OperationalError, transaction
from django.http import HttpRequest
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed, PermissionDenied
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from governance.audit import audit_record
from governance.contention import is_contention
from governance.errors import PermissionRefused, ValidationFailed
from governance.lockout import token_guarded
from governance.request_context import bind_token_label

from .models import IntegrationToken, Organisation, TokenScope
from .selectors import organisations_of

KEYWORD = "Token"
# last_used_at is written at most this often a token: a host polling every second must not
# cost a write a poll.
LAST_USED_GRANULARITY = timedelta(minutes=1)
RATE_WINDOW_SECONDS = 60


def token_create(
    *,
    actor: User,
    name: str,
    scopes: list[str],
    owner: User | None = None,
    organisation: Organisation | None = None,
    expires_at=None,
    rate_per_minute: int = 120,
) -> tuple[IntegrationToken, str]:
    """A new token and its key (shown once: only its hash is kept). A platform admin may give
    it any owner and organisation; anyone else owns their tokens and binds them to one of
    their own organisations."""
    owner = owner or actor
    errors = []
    unknown = sorted(set(scopes) - set(TokenScope.values))
    if not scopes or unknown:
        errors.append({"field": "scopes", "message": f"Choose at least one of {', '.join(TokenScope.values)}."})
    if not actor.has_perm("submissions.add_integrationtoken"):
        raise PermissionRefused("You may not create integration tokens.")
    if not actor.has_perm("submissions.manage_any_integrationtoken"):
        if owner != actor:
            errors.append({"field": "owner", "message": "Your tokens are your own."})
        if organisation is None or not organisations_of(user=actor).filter(pk=organisation.pk).exists():
            errors.append({"field": "organisation", "message": "Bind the token to one of your organisations."})
    if expires_at is not None and expires_at <= timezone.now():
        errors.append({"field": "expiry_date", "message": "The expiry must be in the future."})
    if rate_per_minute < 1:
        errors.append({"field": "rate_per_minute", "message": "At least 1 request a minute."})
    if errors:
        raise ValidationFailed("The token cannot be created.", errors=errors)
    # not durable: the admin's add form calls it inside the transaction Django opens
    with transaction.atomic():
        key, prefix, hashed_key = IntegrationToken.key_generator.generate()
        token = IntegrationToken.objects.create(
            prefix=prefix,
            hashed_key=hashed_key,
            name=name[:80],
            owner=owner,
            organisation=organisation,
            scopes=sorted(set(scopes)),
            expiry_date=expires_at,
            rate_per_minute=rate_per_minute,
            created_by=actor,
        )
        audit_record(
            actor=actor,
            action="token.created",
            target=token,
            data={
                "prefix": token.prefix,
                "owner": owner.get_username(),
                "organisation": organisation.slug if organisation else None,
                "scopes": token.scopes,
                "expires_at": expires_at.isoformat() if expires_at else None,
            },
        )
    return token, key


def token_revoke(*, token: IntegrationToken, actor: User, reason: str = "") -> IntegrationToken:
    """Revoked for good: the next request with it is a 401."""
    if not tokens_manageable_by(user=actor).filter(pk=token.pk).exists():
        raise PermissionRefused("You may not revoke this token.")
    # not durable: the admin's action calls it inside the transaction Django opens
    with transaction.atomic():
        token = IntegrationToken.objects.select_for_update().get(pk=token.pk)
        if token.revoked:
            return token
        token.revoked, token.revoked_at, token.revoked_by = True, timezone.now(), actor
        token.save(update_fields=["revoked", "revoked_at", "revoked_by"])
        audit_record(actor=actor, action="token.revoked", target=token, reason=reason, data={"prefix": token.prefix})
    return token


def tokens_manageable_by(*, user: User):
    """Every token for platform admins; otherwise the user's own tokens and those bound to
    the user's organisations (an organisation's authors see its CI tokens)."""
    if user.has_perm("submissions.manage_any_integrationtoken"):
        return IntegrationToken.objects.all()
    if not user.has_perm("submissions.view_integrationtoken"):
        return IntegrationToken.objects.none()
    return IntegrationToken.objects.filter(owner=user) | IntegrationToken.objects.filter(
        organisation__in=organisations_of(user=user)
    )


def token_of_key(key: str) -> IntegrationToken | None:
    """The usable token the key names (its owner with it), None when unknown, revoked or expired."""
    prefix, dot, _ = key.partition(".")
    if not dot or not prefix:
        return None
    token = IntegrationToken.objects.select_related("owner").filter(prefix=prefix, revoked=False).first()
    if token is None or token.has_expired or not token.matches(key):
        return None
    return token


def token_used(*, token_id: int | str, last_used_at) -> None:
    """Note the use, at most once a minute a token (one UPDATE, no history, no audit)."""
    now = timezone.now()
    if last_used_at is None or now - last_used_at >= LAST_USED_GRANULARITY:
        try:
            IntegrationToken.objects.filter(pk=token_id).update(last_used_at=now)
        except OperationalError as busy:
            if not is_contention(busy):
                raise  # the next request notes it: a busy database does not refuse this one


def token_rate_wait(*, prefix: str, per_minute: int) -> float | None:
    """Count this request against the token's rate: None when it may go on, else the seconds
    until it may. A counter per token and clock minute in Django's cache (one ``add`` or
    ``incr``, whatever the rate; atomic in Redis, shared between processes when the cache is,
    per process with the default local-memory cache). A burst across a minute's edge may reach
    twice the rate for a moment: the limit is a guard against runaway tools, not an exact quota."""
    now = time.time()
    key = f"warden:token-rate:{prefix}:{int(now // RATE_WINDOW_SECONDS)}"
    if cache.add(key, 1, RATE_WINDOW_SECONDS * 2):
        count = 1
    else:
        try:
            count = cache.incr(key)
        except ValueError:  # expired between the two calls
            cache.set(key, 1, RATE_WINDOW_SECONDS * 2)
            count = 1
    if count > per_minute:
        return max(RATE_WINDOW_SECONDS - now % RATE_WINDOW_SECONDS, 1.0)
    return None


def required_scopes(view: Any, method: str) -> tuple[str, ...]:
    """The scopes the view accepts for the method (``token_scopes``: a scope or a tuple of
    them by method; HEAD and OPTIONS as GET). None named: no token may use it."""
    named = (getattr(view, "token_scopes", None) or {}).get("GET" if method in ("HEAD", "OPTIONS") else method)
    return (named,) if isinstance(named, str) else tuple(named or ())


def check_scope(*, scopes: list[str], needed: tuple[str, ...]) -> None:
    if not needed:
        raise PermissionDenied("Integration tokens cannot be used on this endpoint.")
    if not set(needed) & set(scopes):
        raise PermissionDenied(
            f"This token's scopes ({', '.join(scopes)}) do not include {' or '.join(map(repr, needed))}."
        )


def token_authenticate(request: HttpRequest, *, needed: tuple[str, ...]) -> tuple[User, IntegrationToken] | None:
    """The owner (narrowed to the token) and the token of the request's ``Authorization``
    header; None when the header is not a token's. AuthenticationFailed (401) for a bad key, an
    inactive owner, each counted by the sign-in lockout (governance/lockout.py), LockedOut (429)
    while the address is locked out; PermissionDenied (403) when the token's scopes are not
    among ``needed``."""
    words = get_authorization_header(request).split()
    if not words or words[0].lower() != KEYWORD.lower().encode():
        return None
    token = token_guarded(request, lambda: _token_of_header(words))
    check_scope(scopes=token.scopes, needed=needed)
    token_used(token_id=token.pk, last_used_at=token.last_used_at)
    return act_as(owner=token.owner, token=token), token


def _token_of_header(words: list[bytes]) -> IntegrationToken:
    if len(words) != 2:
        raise AuthenticationFailed("Invalid token header: send `Token <key>`.")
    try:
        key = words[1].decode("ascii")
    except UnicodeDecodeError:
        raise AuthenticationFailed("Invalid token.") from None
    token = token_of_key(key)
    if token is None:
        raise AuthenticationFailed("Invalid token.")
    if not token.owner.is_active:
        raise AuthenticationFailed("User inactive or deleted.")
    return token


def token_allows(request: Request, scope: str) -> bool:
    """Whether the request may use ``scope``: a session always, a token when it holds it."""
    token = request.auth
    return not isinstance(token, IntegrationToken) or scope in token.scopes


def act_as(*, owner: User, token: IntegrationToken) -> User:
    """The owner, narrowed to the token's organisation, and the token named in the audit log."""
    owner.token_organisation_id = token.organisation_id  # type: ignore[attr-defined]
    bind_token_label(f"{token.prefix} ({token.name})")
    return owner


class IntegrationTokenAuthentication(BaseAuthentication):
    """``Authorization: Token <prefix>.<secret>`` for the scopes the view names. A request
    without the header goes to the next authentication (the browser's session); a bad key is
    a 401 with ``WWW-Authenticate: Token``."""

    def authenticate(self, request: Request) -> tuple[User, IntegrationToken] | None:
        view = request.parser_context.get("view")
        return token_authenticate(request._request, needed=required_scopes(view, request.method))

    def authenticate_header(self, request: Request) -> str:
        return KEYWORD


class TokenScheme(OpenApiAuthenticationExtension):
    """The schema's name for integration tokens: ``Authorization: Token <prefix>.<secret>``."""

    target_class = IntegrationTokenAuthentication
    name = "tokenAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return build_bearer_security_scheme_object(header_name="Authorization", token_prefix=KEYWORD)


class TokenRateThrottle(BaseThrottle):
    """Each token's ``rate_per_minute``; sessions are not throttled here."""

    def allow_request(self, request: Request, view: Any) -> bool:
        token = request.auth  # an IntegrationToken, or the feed's FeedPoll
        if getattr(token, "rate_per_minute", None) is None:
            return True
        self._wait = token_rate_wait(prefix=token.prefix, per_minute=token.rate_per_minute)
        return self._wait is None

    def wait(self) -> float | None:
        return self._wait

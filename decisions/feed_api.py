"""``GET /api/v1/feed/``: what host platforms poll (docs/hosts.md, "Polling the feed").

A poll that changes nothing is the common case, so it is answered first and cheaply, by a
middleware (``FeedPollMiddleware``) in one query (the token's user, whether the user may read
the feed, the feed's last ``seq``), and 304 when the ETag the host sent still names the
answer. Only a changed answer reads entries, and their stored JSON goes out as the text it was
stored as, not decoded and encoded again; the full listing, the same for every reader, is
built once each time the feed grows.
bench/bench_feed.py measures both against a trivial view (docs/benchmarks.md).
"""

import functools
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, NamedTuple

from django.contrib.auth.models import Permission, User
from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import BooleanField, Exists, ExpressionWrapper, OuterRef
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseNotModified, QueryDict
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.http import parse_etags
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed, PermissionDenied
from rest_framework.permissions import BasePermission
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from governance.errors import ValidationFailed
from governance.ids import MAX_ID
from governance.lockout import client_ip, maybe_locked_out, token_failure_columns, token_guarded
from submissions.models import IntegrationToken, TokenScope
from submissions.tokens import KEYWORD, IntegrationTokenAuthentication, check_scope, token_rate_wait, token_used

from .feed import FeedPage, feed_entry_stamp, feed_last_seq, feed_last_seq_expression, feed_page

READ_FEED = "decisions.read_feed"
DEFAULT_LIMIT = 1_000
MAX_LIMIT = 10_000


SINCE = OpenApiParameter(
    "since",
    int,
    description="Only the entries after this sequence number, in order. Without it: every version's latest entry.",
)
LIMIT = OpenApiParameter(
    "limit",
    int,
    description=f"At most this many entries (1 to {MAX_LIMIT:,}, {DEFAULT_LIMIT:,} if absent); when more follow, "
    "`next` says the `since` to ask with.",
)


def feed_question(query: QueryDict) -> tuple[int | None, int]:
    """``since`` (None: the full listing) and ``limit`` from the query string."""
    if not query:
        return None, DEFAULT_LIMIT
    since = query_number(query, "since", maximum=MAX_ID)
    return since, query_number(query, "limit", minimum=1, maximum=MAX_LIMIT) or DEFAULT_LIMIT


def query_number(query: QueryDict, name: str, *, maximum: int, minimum: int = 0) -> int | None:
    """A whole number from the query string, None when absent. Read by hand, not by a DRF
    serializer: every poll reads it, and a serializer costs as much as the rest of a 304.
    ``?since=`` is refused, not read as absent, so a host that lost its cursor hears it."""
    raw = query.get(name)
    if raw is None:
        return None
    if len(raw) <= len(str(maximum)) and raw.isascii() and raw.isdecimal() and minimum <= int(raw) <= maximum:
        return int(raw)
    raise ValidationFailed(
        "The request is invalid.",
        errors=[{"field": name, "code": "invalid", "message": f"A whole number from {minimum} to {maximum}."}],
    )


FeedOut = inline_serializer(
    name="FeedOut",
    fields={
        "seq": serializers.IntegerField(help_text="The feed's latest sequence number when it answered."),
        "since": serializers.IntegerField(
            allow_null=True, help_text="The `since` asked, or null for the full listing."
        ),
        "next": serializers.IntegerField(
            allow_null=True,
            help_text="More entries follow: ask again with `?since=<next>`. Null: this answer is complete up to `seq`.",
        ),
        "entries": serializers.ListField(
            child=serializers.DictField(),
            help_text="In `seq` order: `seq`, `event` (approved, deployed, superseded, reinstated, rolled_back, "
            "revoked), `recorded_at` and `state`: version, plugin, organisation, number, status, allowed, artifact "
            "(name, sha256, size), environments, attestation (url, sha256, or null).",
        ),
    },
)


class FeedPoll(NamedTuple):
    """What one query reads of a token's request to the feed (``request.auth`` of the view)."""

    token: int
    prefix: str
    hashed_key: str
    scopes: list[str]
    expiry_date: datetime | None
    last_used_at: datetime | None
    rate_per_minute: int
    user: int
    username: str
    is_active: bool
    is_superuser: bool
    reads_feed: bool  # holds decisions.read_feed, directly or through a group, or is a superuser
    seq: int  # the feed's last seq
    key_failures: int  # bad keys from the poll's address (governance/lockout.py)
    key_failed_at: datetime | None

    def usable_with(self, key: str) -> bool:
        """The key is this token's, and the token has not expired (revoked ones are not read)."""
        expired = self.expiry_date is not None and self.expiry_date <= timezone.now()
        return not expired and IntegrationToken.key_generator.verify(key, self.hashed_key)

    def maybe_locked_out(self, request: HttpRequest) -> bool:
        """Whether the address may be locked out for bad keys (governance/lockout.py)."""
        return maybe_locked_out(request, self.key_failures, self.key_failed_at)


class FeedTokenAuthentication(IntegrationTokenAuthentication):
    """Integration-token authentication that reads, in the same query as the token and its
    owner, whether the owner holds ``decisions.read_feed`` and the feed's last ``seq``
    (``poll_of``). The owner comes back with the fields authentication and permissions read;
    any other is loaded when first read (a deferred field)."""

    def authenticate(self, request: Request) -> tuple[User, Any] | None:
        words = get_authorization_header(request).split()
        if len(words) != 2 or words[0].lower() != b"token":
            return super().authenticate(request)  # no token (the session's turn), or a malformed header
        key = words[1].decode("ascii", errors="replace")
        read = poll_of(key, client_ip(request._request))
        poll = token_guarded(
            request._request,
            lambda: poll_checked(read, key),
            locked_out_possible=read is None or read.maybe_locked_out(request._request),
        )
        token_used(token_id=poll.token, last_used_at=poll.last_used_at)
        user = User.from_db(DEFAULT_DB_ALIAS, _USER_FIELDS, [poll.user, poll.username, True, poll.is_superuser])
        return user, poll


def poll_checked(poll: FeedPoll | None, key: str) -> FeedPoll:
    """The poll ``poll_of`` read for a key, when the key names a usable token of an active owner
    with the feed scope (``token_authenticate``'s checks): AuthenticationFailed (401) or
    PermissionDenied (403) otherwise."""
    if poll is None or not poll.usable_with(key):
        raise AuthenticationFailed("Invalid token.")
    if not poll.is_active:
        raise AuthenticationFailed("User inactive or deleted.")
    check_scope(scopes=poll.scopes, needed=(TokenScope.FEED,))
    return poll


def poll_of(key: str, ip: str | None) -> FeedPoll | None:
    """The usable token of the key's prefix and its owner, whether the owner may read the feed
    (as Django's ModelBackend grants a permission that is not an object's: the user's own or a
    group's, or a superuser's), the feed's last seq and the bad keys counted against address
    ``ip`` (governance/lockout.py): one query, the whole of a host's unchanged poll. The key
    itself is checked by the caller (``FeedPoll.usable_with``)."""
    prefix, dot, _ = key.partition(".")
    if not dot or not prefix or len(prefix) > 8:
        return None
    sql, params = _poll_query()
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        address = connections[DEFAULT_DB_ALIAS].ops.adapt_ipaddressfield_value(ip)
        cursor.execute(sql, {**params, _KEY: prefix, _IP: address})
        row = cursor.fetchone()
    if row is None:
        return None
    token, prefix, hashed_key, scopes, expiry, last_used, rate, user, username, active, superuser, reads, seq = row[:13]
    failures, failed_at = row[13:]
    if isinstance(failed_at, str):  # SQLite gives a subquery's time as its text
        failed_at = parse_datetime(failed_at)
    return FeedPoll(
        token,
        prefix,
        hashed_key,
        json.loads(scopes) if isinstance(scopes, str) else scopes,
        _aware(expiry),
        _aware(last_used),
        rate,
        user,
        username,
        bool(active),
        bool(superuser),
        bool(reads or superuser),
        seq,
        failures or 0,
        _aware(failed_at),
    )


def _aware(moment: datetime | None) -> datetime | None:
    """A time column as a raw cursor gives it: aware from PostgreSQL, naive UTC from SQLite."""
    if moment is not None and timezone.is_naive(moment):
        moment = moment.replace(tzinfo=UTC)
    return moment


_KEY = "token_prefix"
_IP = "client_ip"
_IP_SENTINEL = "192.0.2.255"  # a documentation address (RFC 5737): the column takes only addresses
_USER_FIELDS = ["id", "username", "is_active", "is_superuser"]


@functools.cache
def _poll_query() -> tuple[str, dict[str, Any]]:
    """Written by the ORM once per process; each poll runs it as it stands. Building and
    compiling it (two ``Exists`` and their joins) took 20 times as long as running it, and so
    did SQLite's rewriting of positional placeholders at each run: they are named here."""
    readers = Permission.objects.filter(content_type__app_label="decisions", codename="read_feed")
    reads_feed = Exists(readers.filter(user=OuterRef("owner"))) | Exists(readers.filter(group__user=OuterRef("owner")))
    tokens = (
        IntegrationToken.objects.using(DEFAULT_DB_ALIAS)
        .filter(prefix=_KEY, revoked=False)
        .annotate(
            reads_feed=ExpressionWrapper(reads_feed, output_field=BooleanField()),
            seq=feed_last_seq_expression(),
            **token_failure_columns(_IP_SENTINEL),
        )
        .values_list(
            "id",
            "prefix",
            "hashed_key",
            "scopes",
            "expiry_date",
            "last_used_at",
            "rate_per_minute",
            *(f"owner__{field}" for field in _USER_FIELDS),
            "reads_feed",
            "seq",
            "key_failures",
            "key_failed_at",
        )
    )
    sql, params = tokens.query.sql_with_params()
    names = [
        _KEY if param == _KEY else _IP if str(param) == _IP_SENTINEL else f"p{index}"
        for index, param in enumerate(params)
    ]
    if "%%" in sql or names.count(_KEY) != 1 or names.count(_IP) != 2:
        raise ImproperlyConfigured(f"Unexpected feed poll query: {sql}")
    named = {name: param for name, param in zip(names, params, strict=True) if name not in (_KEY, _IP)}
    return sql % tuple(f"%({name})s" for name in names), named


class FeedTokenScheme(OpenApiAuthenticationExtension):
    """The schema's name for the feed's token authentication: the same ``Token <key>`` header
    as everywhere in the API, under a name of its own (one class a name, or drf-spectacular warns)."""

    target_class = FeedTokenAuthentication
    name = "feedTokenAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return build_bearer_security_scheme_object(header_name="Authorization", token_prefix=KEYWORD)


class ReadsFeed(BasePermission):
    """``decisions.read_feed``: platform admins and the *Host platforms* group hold it."""

    message = "You may not read the feed."

    def has_permission(self, request: Request, view: APIView) -> bool:
        if not request.user.is_authenticated:
            return False
        if isinstance(request.auth, FeedPoll):
            return request.auth.reads_feed
        return request.user.has_perm(READ_FEED)


class Feed(APIView):
    """``GET /api/v1/feed/``: without ``since``, every approved, deployed, superseded,
    rolled-back and revoked version's latest state; with ``?since=N``, exactly the entries
    after N, in order. A strong ETag names the answer; ``If-None-Match`` with it gets 304."""

    authentication_classes = [FeedTokenAuthentication, SessionAuthentication]
    permission_classes = [ReadsFeed]
    renderer_classes = [JSONRenderer]
    parser_classes: list = []  # a GET: nothing to parse
    token_scopes = {"GET": TokenScope.FEED}

    @extend_schema(
        parameters=[SINCE, LIMIT],
        responses={200: FeedOut, 304: OpenApiResponse(description="Unchanged since the ETag sent in If-None-Match.")},
    )
    def get(self, request: Request) -> HttpResponseBase:
        since, limit = feed_question(request.query_params)
        seq = request.auth.seq if isinstance(request.auth, FeedPoll) else feed_last_seq()
        etag = feed_etag(seq=seq, since=since, limit=limit)
        if etag_matches(request.headers.get("If-None-Match", ""), etag):
            return with_validators(HttpResponseNotModified(), etag)
        return with_validators(
            HttpResponse(feed_body(since=since, limit=limit, upto=seq), content_type="application/json"), etag
        )


class FeedPollMiddleware:
    """A host's poll that changes nothing, answered before the middleware below it (sessions,
    CSRF, authentication, messages, history) and URL resolution, none of which a token's
    conditional GET needs: they took more than the poll's own query. It sits after the
    security, request-id and request-size middleware, so the 304 carries their headers, and
    the Host header is checked against ALLOWED_HOSTS as CommonMiddleware would. Anything else
    (no token, a refused one, a bad question, a changed answer, another path) goes the whole
    way and gets the view's answer."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]):
        self.get_response = get_response
        self.path = reverse("feed")

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if request.path_info == self.path and request.method in ("GET", "HEAD"):
            unchanged = unchanged_poll(request)
            if unchanged is not None:
                return unchanged
        return self.get_response(request)


def unchanged_poll(request: HttpRequest) -> HttpResponseBase | None:
    """304 for a feed reader's token whose If-None-Match still names the answer, else None."""
    if "HTTP_IF_NONE_MATCH" not in request.META:
        return None
    request.get_host()  # DisallowedHost (400) for a host not in ALLOWED_HOSTS, as for any request
    words = request.META.get("HTTP_AUTHORIZATION", "").split()
    if len(words) != 2 or words[0].lower() != "token":
        return None
    try:
        since, limit = feed_question(request.GET)
    except ValidationFailed:
        return None  # the view answers with the error
    try:
        poll = poll_checked(poll_of(words[1], client_ip(request)), words[1])
    except (AuthenticationFailed, PermissionDenied):
        return None  # the view refuses it (401, 403)
    etag = feed_etag(seq=poll.seq, since=since, limit=limit)
    if not poll.reads_feed or not etag_matches(request.META["HTTP_IF_NONE_MATCH"], etag):
        return None  # the view refuses it (403) or answers it (200)
    if poll.maybe_locked_out(request):
        return None  # the view refuses it (429): a 304 here would tell a guesser its key is right
    if token_rate_wait(prefix=poll.prefix, per_minute=poll.rate_per_minute) is not None:
        return None  # the view's throttle answers 429 with Retry-After
    token_used(token_id=poll.token, last_used_at=poll.last_used_at)
    return with_validators(HttpResponseNotModified(), etag)


def feed_etag(*, seq: int, since: int | None, limit: int) -> str:
    """Entries are only ever appended, so the last ``seq`` and the question name the answer's
    bytes: a strong ETag."""
    return f'"feed-{seq}-{"all" if since is None else since}-{limit}"'


def etag_matches(header: str, etag: str) -> bool:
    """If-None-Match compares weakly (RFC 9110, 13.1.2): ``W/"x"`` matches ``"x"``."""
    if header == etag:  # what a host sends back, parsed no further
        return True
    tags = parse_etags(header) if header else []
    return "*" in tags or any(tag.removeprefix("W/") == etag for tag in tags)


def with_validators(response: HttpResponseBase, etag: str) -> HttpResponseBase:
    response["ETag"] = etag
    response["Cache-Control"] = "private, no-cache"  # revalidate each time; never shared between readers
    return response


# The last full listing this process sent: (limit, upto, the stamp of entry upto), and its JSON.
_full_listing: tuple[tuple[int, int, datetime | None], str] | None = None


def feed_body(*, since: int | None, limit: int, upto: int) -> str:
    """The answer's JSON. The full listing is the same for every reader until the feed grows
    (entries are only appended, and ``upto`` is read first), so the last one is kept and sent
    again while entry ``upto`` is the one it was built from: a host that comes up, or one
    that lost its cursor, costs one key lookup, not the whole feed's query. Deltas are read
    each time (each host asks its own)."""
    global _full_listing
    if since is not None:
        return feed_json(feed_page(since=since, limit=limit, upto=upto))
    key = (limit, upto, feed_entry_stamp(upto))
    cached = _full_listing
    if cached is not None and cached[0] == key:
        return cached[1]
    body = feed_json(feed_page(since=None, limit=limit, upto=upto))
    _full_listing = (key, body)
    return body


def feed_json(page: FeedPage) -> str:
    """The answer's JSON, each entry's stored state spliced in as the text it was stored as."""
    entries = ",".join(
        f'{{"seq":{row.seq},"event":{json.dumps(row.event)},"recorded_at":"{_iso(row.created_at)}",'
        f'"state":{row.state}}}'
        for row in page.rows
    )
    head = json.dumps({"seq": page.seq, "since": page.since, "next": page.next}, separators=(",", ":"))
    return f'{head[:-1]},"entries":[{entries}]}}'


def _iso(moment: datetime) -> str:
    """As DRF writes a UTC time: ISO 8601 with ``Z``."""
    text = moment.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text

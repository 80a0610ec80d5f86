"""Every API endpoint, by every method, with every token scope, generated from the URL registry, so
that a new endpoint is covered without anyone remembering it: each method names the scopes it
takes (``token_scopes``), a token with another scope is refused with 403 before anything is
read, and a token with a named scope gets past the scope check. Tokens here are a superuser's,
so only the scope decides; tests/submissions/test_tokens.py covers owners and organisations."""

import re

import pytest
from django.urls import get_resolver
from django.urls.resolvers import URLPattern, URLResolver

from submissions.models import TokenScope
from submissions.tokens import required_scopes
from tests.conftest import token_client

pytestmark = pytest.mark.django_db

# Served to anyone, with no token needed: the schema and its two readers.
OPEN = {"api/schema/", "api/docs/", "api/redoc/"}
METHODS = ("get", "post", "put", "patch", "delete")
ID = re.compile(r"<(?:int|id):(\w+)>|\(\?P<(\w+)>[^)]*\)")  # an id in a route; its name is group 1 or 2


def api_routes() -> list[tuple[str, str, type]]:
    """(route, such as ``api/v1/versions/<id:version>/gate/``, method, view class) for every
    route under /api/ but the open ones."""

    def walk(patterns, prefix=""):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern):
                yield prefix + str(pattern.pattern), pattern.callback

    found = []
    for route, callback in walk(get_resolver().url_patterns):
        if not route.startswith("api/") or route in OPEN:
            continue
        view = callback.cls
        actions = getattr(callback, "actions", None)
        # DRF adds "head" to a viewset's actions at its first request: the methods it was given
        methods = [m for m in actions if m in METHODS] if actions else [m for m in METHODS if hasattr(view, m)]
        found.extend((route.replace("^", "").replace("$", ""), method, view) for method in methods)
    return found


def api_endpoints() -> list[tuple[str, str, type]]:
    """(url with ids that exist nowhere, method, view class) for every route under /api/."""
    return [("/" + ID.sub("999999", route), method, view) for route, method, view in api_routes()]


ENDPOINTS = api_endpoints()


def test_the_registry_walk_finds_every_endpoint():
    urls = {url for url, _, _ in ENDPOINTS}
    assert {"/api/v1/feed/", "/api/v1/findings/999999/triage/", "/api/v1/versions/999999/reports/"} <= urls
    assert len(ENDPOINTS) >= 14


@pytest.mark.parametrize(("url", "method", "view"), ENDPOINTS, ids=[f"{m.upper()} {u}" for u, m, _ in ENDPOINTS])
def test_each_method_names_its_scopes_and_refuses_every_other(url, method, view, django_user_model):
    named = required_scopes(view, method.upper())
    assert named, f"{view.__name__} names no token scope for {method.upper()}: set token_scopes"
    assert set(named) <= set(TokenScope.values)
    root = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    unexpected = []
    for scope in TokenScope.values:
        answer = getattr(token_client(root, scope), method)(url)
        scope_refusal = answer.status_code == 403 and "do not include" in answer.json()["detail"]
        if scope in named and scope_refusal:
            unexpected.append(f"{scope}: refused although named")
        if scope not in named and not scope_refusal:
            unexpected.append(f"{scope}: {answer.status_code}, an unexpected allow")
        assert answer.status_code < 500, (scope, answer.status_code)
    assert unexpected == []

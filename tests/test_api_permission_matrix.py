"""The permission matrix of the API: every role (each vendor's author, each reviewer group, the
board, a platform admin, anonymous) x every route under /api/, generated from the URL registry
(tests/test_token_scope_matrix.py, ``api_routes``), x its own object, another's, and an id that
exists nowhere, so a new endpoint is covered without anyone remembering it.

- Anonymous: every route is a 401.
- An object the role may not see answers exactly as an id that exists nowhere (a 404, or a 403
  where the role may not use the route for any object): no existence oracle, and a POST about
  it changes nothing.
- What each role gets from each route without an object, and by GET from the objects it may
  see (the best answer of the first dozen: a draft has no attestation), is written down in
  tests/fixtures/api_permission_matrix.json. A 2xx the table does not hold is an
  **unexpected allow** and fails the test; any other change of answer fails too, so the
  table stays true. After a deliberate change, write it again with ``WARDEN_RECORD_MATRIX=1``
  and read its diff before committing it. POSTs about the role's own objects act (submit,
  withdraw, triage) and are tested where each action is.

The roles act with full power (a session's, through ``force_authenticate``); what a token's
scopes narrow is tests/test_token_scope_matrix.py.
"""

import json
import os
from pathlib import Path

import pytest
from django.contrib import admin
from rest_framework.test import APIClient

from decisions import deployment
from governance.models import AuditEvent, WebhookEndpoint
from reviews.models import CheckRun, RunOrigin
from submissions.models import Plugin, PluginVersion
from submissions.selectors import plugins_visible_to, versions_visible_to
from tests.conftest import make_environment
from tests.test_admin_visibility import as_request, world  # noqa: F401 - the two vendors' world, its fixture
from tests.test_token_scope_matrix import ID, api_routes

pytestmark = pytest.mark.django_db
TABLE = Path(__file__).resolve().parent / "fixtures" / "api_permission_matrix.json"
MISSING = 999_999_999
LIST = {"page_size": 500}
OWN = 12  # of the objects a role may see, how many each GET asks about
SELECTORS = {"version": (PluginVersion, versions_visible_to), "plugin": (Plugin, plugins_visible_to)}


def names(route: str) -> list[str]:
    return [match[1] or match[2] for match in ID.finditer(route)]


def visible(name: str, view: type, user):
    """(model, what ``user`` may see of it) for the id named ``name`` in a route of ``view``:
    what the model's admin lists for ``user`` where it has one (so the API is held to what
    the admin shows, not to itself)."""
    if name == "pk":
        model_admin = admin.site._registry.get(view.model)
        if model_admin is not None:
            return view.model, model_admin.get_queryset(as_request(user))
        return view.model, view.visible(view(), user)
    if name == "run":
        runs = CheckRun.objects.filter(origin=RunOrigin.EXTERNAL)
        return CheckRun, runs.filter(version__in=versions_visible_to(user=user))
    model, selector = SELECTORS[name]
    return model, selector(user=user)


def url(route: str, obj=None) -> str:
    """The route with its ids filled from ``obj`` (a report's run names its version too), or
    with ids that exist nowhere."""
    ids = names(route)
    values = dict.fromkeys(ids, MISSING)
    if obj is not None:
        values[ids[-1]] = obj.pk
        if ids[-1] == "run":
            values["version"] = obj.version_id
    return "/" + ID.sub(lambda match: str(values[match[1] or match[2]]), route)


def ask(client: APIClient, method: str, path: str) -> int:
    return getattr(client, method)(path, {}, format="json").status_code


@pytest.fixture
def deployed(world):  # noqa: F811
    """acme's approved version running in production, and a webhook endpoint (the world has
    neither)."""
    admin = world["platform admin"]
    WebhookEndpoint.objects.create(name="Tickets", url="https://tickets.example.com/", secret="x", events=["*"])
    approved = PluginVersion.objects.get(plugin__organisation__slug="acme", status="approved")
    return deployment.version_deploy(version=approved, environment=make_environment(admin, "production"), actor=admin)


def test_every_role_on_every_api_route_and_object(world, deployed):  # noqa: F811 - the fixture imported above
    client = APIClient()
    routes = api_routes()
    assert len(routes) >= 24
    answers, wrong = {}, []
    for role, user in {"anonymous": None, **world}.items():
        client.force_authenticate(user)
        for route, method, view in routes:
            key = f"{role} | {method.upper()} /{route}"
            missing = ask(client, method, url(route))
            if user is None:
                if missing != 401:
                    wrong.append(f"{key}: {missing}, not 401")
                continue
            if not names(route):
                answers[key] = missing
                if method == "get" and missing == 200 and "results" in (page := client.get(url(route), LIST)).json():
                    answers[f"{key} rows"] = len(page.json()["results"])  # wider visibility changes the table
                continue
            if missing not in (403, 404):
                wrong.append(f"{key} of an id that exists nowhere: {missing}")
            model, seen = visible(names(route)[-1], view, user)
            other = model._default_manager.exclude(pk__in=seen.values("pk")).order_by("pk").first()
            if other is not None:
                events = AuditEvent.objects.count()
                if (status := ask(client, method, url(route, other))) != missing:
                    wrong.append(f"{key} of another's {model._meta.label} {other.pk}: {status}, not {missing}")
                if AuditEvent.objects.count() != events:
                    wrong.append(f"{key} of another's {model._meta.label} {other.pk} changed something")
            if method == "get" and (own := list(seen.order_by("pk")[:OWN])):
                # the best answer for any of them: a draft has no attestation, an approval has
                answers[f"{key}:own"] = min(ask(client, method, url(route, obj)) for obj in own)
    assert not [a for a in answers.values() if a >= 500], answers
    assert not wrong, f"{len(wrong)} wrong answers:\n" + "\n".join(wrong)

    if os.environ.get("WARDEN_RECORD_MATRIX"):
        TABLE.write_text(json.dumps(answers, indent=1, sort_keys=True) + "\n")
    expected = json.loads(TABLE.read_text())
    unexpected = sorted(k for k, v in answers.items() if v < 300 and expected.get(k, 500) >= 300)
    assert not unexpected, f"{len(unexpected)} unexpected allows:\n" + "\n".join(
        f"{k}: {answers[k]}, the table says {expected.get(k)}" for k in unexpected
    )
    changed = sorted(
        f"{k}: {answers.get(k)}, the table says {expected.get(k)}"
        for k in answers.keys() | expected.keys()
        if answers.get(k) != expected.get(k)
    )
    assert not changed, f"{len(changed)} answers differ from the table:\n" + "\n".join(changed)

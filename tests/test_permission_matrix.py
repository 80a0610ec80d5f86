"""The permission matrix of the admin: every role, every admin view, its own and another's
object, generated from the admin registry (``admin.site._registry`` and each admin's URLs), so
a new admin or a new view of one is covered without anyone remembering it.

- Anonymous: every view sends to the sign-in page.
- An object the role may not see (outside the admin's queryset for it) is a 404 on every page
  of it, exactly as an id that exists nowhere (no existence oracle); a 403 only where the role
  may not open that page for any object.
- What a role may open (200) is written down in tests/fixtures/permission_matrix.json. A page
  that opens and is not in it is an **unexpected allow** and fails the test; one in it that no
  longer opens fails too, so the table stays true. After a deliberate change, write the table
  again with ``WARDEN_RECORD_MATRIX=1`` and read its diff before committing it.
"""

import json
import os
from pathlib import Path

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import URLPattern, reverse

from tests.test_admin_visibility import as_request, world  # noqa: F401 - the two vendors' world, its fixture

pytestmark = pytest.mark.django_db
TABLE = Path(__file__).resolve().parent / "fixtures" / "permission_matrix.json"
MISSING = 999_999_999


def admin_views(model, model_admin) -> list[tuple[str, bool]]:
    """(url name, takes an object) of the admin's GET pages: its own views and the ones Django
    and simple-history add. Pages that need more than an object's id (a service action's
    name, a file's path, an old version) are reached from the object's pages and tested there."""
    views = []
    for pattern in model_admin.get_urls():
        if not isinstance(pattern, URLPattern) or not pattern.name:
            continue
        regex = pattern.pattern.regex
        if regex.groups == 0:
            views.append((pattern.name, False))
        elif regex.groups == 1 and "object_id" in regex.groupindex:
            views.append((pattern.name, True))
    return sorted(set(views))


def pages():
    for model, model_admin in admin.site._registry.items():
        for name, per_object in admin_views(model, model_admin):
            yield model, model_admin, name, per_object


def test_the_registry_walk_finds_the_admins_and_their_own_views():
    names = {name for _, _, name, _ in pages()}
    assert {
        "submissions_pluginversion_changelist",
        "submissions_pluginversion_change",
        "submissions_pluginversion_history",
        "submissions_pluginversion_dossier",
        "submissions_pluginversion_diff",
        "submissions_integrationtoken_add",
        "axes_accessattempt_changelist",
    } <= names
    assert len(names) > 150


def answer(client, url: str) -> int:
    """The page's status; a view that takes only POST (405 to a GET) is asked by POST, with an
    empty form, which no view accepts."""
    status = client.get(url).status_code
    return client.post(url).status_code if status == 405 else status


def test_every_role_on_every_admin_view_and_object(world):  # noqa: F811 - the fixture imported above
    client = Client(raise_request_exception=False)
    opened, wrong = set(), []
    roles = {"anonymous": None, **world}
    for role, user in roles.items():
        if user is None:
            client.logout()
        else:
            client.force_login(user)
        for model, model_admin, name, per_object in pages():
            if not per_object:
                status = client.get(reverse(f"admin:{name}")).status_code
                if user is None and status != 302:
                    wrong.append(f"{role}: {name} answered {status}, not the sign-in page")
                elif status >= 500:
                    wrong.append(f"{role}: {name} answered {status}")
                elif status == 200 and user is not None:
                    opened.add(f"{role} | {name}")
                continue
            visible = model_admin.get_queryset(as_request(user)) if user else model._default_manager.none()
            own = visible.order_by("pk").values_list("pk", flat=True).first()
            other = model._default_manager.exclude(pk__in=visible.values("pk")).values_list("pk", flat=True).first()
            missing = answer(client, reverse(f"admin:{name}", args=[MISSING]))
            # An object the role may not see answers as one that exists nowhere: 404, or 403
            # when the role may not open this page for any object.
            refusal = 302 if user is None else (403 if missing == 403 else 404)
            if missing != refusal:
                wrong.append(f"{role}: {name} of an id that exists nowhere answered {missing}, not {refusal}")
            if other is not None and (status := answer(client, reverse(f"admin:{name}", args=[other]))) != refusal:
                wrong.append(f"{role}: {name} of {model._meta.label} {other}, which it may not see, answered {status}")
            if own is not None:
                status = client.get(reverse(f"admin:{name}", args=[own])).status_code
                if status >= 500:
                    wrong.append(f"{role}: {name} of its own {model._meta.label} {own} answered {status}")
                elif status == 200:
                    opened.add(f"{role} | {name}:own")
    assert not wrong, f"{len(wrong)} wrong answers:\n" + "\n".join(wrong)

    if os.environ.get("WARDEN_RECORD_MATRIX"):
        TABLE.write_text(json.dumps(sorted(opened), indent=1) + "\n")
    expected = set(json.loads(TABLE.read_text()))
    unexpected, lost = sorted(opened - expected), sorted(expected - opened)
    assert not unexpected, f"{len(unexpected)} unexpected allows:\n" + "\n".join(unexpected)
    assert not lost, f"{len(lost)} pages the table opens no longer open:\n" + "\n".join(lost)

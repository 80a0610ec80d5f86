"""Host platforms are configured through ``host_platform_save``: every admin save (the change
form and the changelist's "is default" boxes) leaves an audit event, making one platform the
default moves the default in one transaction, and nobody else may configure them."""

import pytest
from django.urls import reverse

from governance.errors import PermissionRefused
from governance.models import AuditEvent, HostPlatform
from governance.services import host_platform_save
from tests.admin_forms import browser_post
from tests.conftest import last_audit

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:governance_hostplatform_changelist")


@pytest.fixture
def hosts(db):
    return (
        HostPlatform.objects.create(name="Acme Cloud", api_version="2.4", is_default=True),
        HostPlatform.objects.create(name="Edge", api_version="2.5"),
    )


def defaults() -> list[str]:
    return list(HostPlatform.objects.filter(is_default=True).values_list("name", flat=True))


def test_a_platform_admin_registers_a_host_platform(client, platform_admin):
    client.force_login(platform_admin)
    form = {"name": "On premises", "api_version": "2.3", "resource_limits": '{"memory_mb": 512}'}

    response = client.post(reverse("admin:governance_hostplatform_add"), {**form, "initial-resource_limits": "{}"})

    assert response.status_code == 302
    host = HostPlatform.objects.get(name="On premises")
    event = last_audit(host)
    assert (event.action, event.actor, event.data["is_default"]) == ("host_platform.create", platform_admin, False)
    assert host.history.get().history_user == platform_admin


def test_making_a_platform_the_default_on_its_page_moves_the_default(client, hosts, platform_admin):
    acme, edge = hosts
    client.force_login(platform_admin)
    change = reverse("admin:governance_hostplatform_change", args=[edge.pk])

    response = client.post(change, browser_post(client.get(change), is_default="on"))

    assert response.status_code == 302
    assert defaults() == ["Edge"]
    moved_from, moved_to = last_audit(acme), last_audit(edge)
    assert (moved_from.action, moved_from.actor, moved_from.data) == (
        "host_platform.change",
        platform_admin,
        {"changed": ["is_default"], "default_moved_to": "Edge"},
    )
    assert (moved_to.action, moved_to.data) == ("host_platform.change", {"changed": ["is_default"], "is_default": True})


def test_the_changelists_default_boxes_go_through_the_service(client, hosts, platform_admin):
    acme, edge = hosts
    client.force_login(platform_admin)
    page = client.get(CHANGELIST)
    rows = [form.instance for form in page.context["cl"].formset.forms]
    ticks = {f"form-{rows.index(acme)}-is_default": None, f"form-{rows.index(edge)}-is_default": "on"}

    response = client.post(CHANGELIST, browser_post(page, _save="Save", **ticks))

    assert response.status_code == 302
    assert defaults() == ["Edge"]
    assert {last_audit(acme).actor, last_audit(edge).actor} == {platform_admin}
    assert last_audit(edge).data["is_default"] is True


def test_two_defaults_in_the_changelist_are_a_form_error(client, hosts, platform_admin):
    _acme, edge = hosts
    client.force_login(platform_admin)
    page = client.get(CHANGELIST)
    rows = [form.instance for form in page.context["cl"].formset.forms]

    response = client.post(
        CHANGELIST, browser_post(page, _save="Save", **{f"form-{rows.index(edge)}-is_default": "on"})
    )

    assert response.status_code == 200
    assert "Only one host platform can be the default." in response.content.decode()
    assert defaults() == ["Acme Cloud"]
    assert not AuditEvent.objects.filter(object_type="governance.hostplatform").exists()


def test_others_may_not_configure_host_platforms_and_nobody_deletes_one(client, hosts, security, platform_admin):
    acme, edge = hosts
    client.force_login(security)
    add = client.post(reverse("admin:governance_hostplatform_add"), {"name": "Rogue", "api_version": "9"})
    edge.is_default = True
    with pytest.raises(PermissionRefused):
        host_platform_save(host=edge, actor=security, changed=["is_default"])
    client.force_login(platform_admin)
    delete = client.post(reverse("admin:governance_hostplatform_delete", args=[acme.pk]), {"post": "yes"})

    assert (add.status_code, delete.status_code) == (403, 403)
    assert not HostPlatform.objects.filter(name="Rogue").exists()
    assert defaults() == ["Acme Cloud"] and HostPlatform.objects.count() == 2
    assert not AuditEvent.objects.filter(object_type="governance.hostplatform").exists()

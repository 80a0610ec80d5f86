"""The admin's writes on threats and threat-model rows, reviewer qualifications, training
records and performance budgets go through services: each leaves an audit event naming its
actor and action, a user without the permission is refused with nothing written, and a
threat's status moves only by its transitions."""

from datetime import date

import pytest
from django.urls import reverse

from governance import roles
from governance.errors import PermissionRefused, TransitionRefused, ValidationFailed
from governance.models import AuditEvent, HostPlatform
from reviews import threat_model as tm
from reviews.models import (
    PerformanceBudget,
    ReviewerQualification,
    Source,
    Stride,
    Threat,
    ThreatModelElement,
    ThreatStatus,
    TrainingRecord,
)
from reviews.services import stage_pass
from submissions import services as sub
from submissions.samples import MANIFEST_TEMPLATE, plugin_archive
from tests.admin_forms import browser_post
from tests.conftest import last_audit, make_user, open_review

pytestmark = pytest.mark.django_db

MANIFEST = MANIFEST_TEMPLATE.format(
    name="acme-exporter", version="1.4.0", module="acme_exporter", category="data-connector"
).replace("network = []", 'network = ["api.acme.example:443"]')


@pytest.fixture
def version(plugin, author, pipeline, platform_admin, django_capture_on_commit_callbacks):
    """A version in review whose security stage is open."""
    version = sub.version_create(
        plugin=plugin, artifact=plugin_archive(plugin.name, "1.4.0", manifest=MANIFEST), actor=author
    )
    with django_capture_on_commit_callbacks(execute=True):
        sub.version_submit(version=version, actor=author)
    with django_capture_on_commit_callbacks(execute=True):
        stage_pass(review=open_review(version, "eligibility"), actor=platform_admin)
    version.refresh_from_db()
    return version


@pytest.fixture
def model(version, author):
    return tm.threat_model_prefill(version=version, actor=author)


def disclosure(model) -> Threat:
    """A prefilled threat that already says how it is mitigated (TLS)."""
    return model.threats.get(stride=Stride.INFORMATION_DISCLOSURE)


def act(client, obj, action: str, reason: str = ""):
    url = reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_act", args=[obj.pk, action])
    return client.post(url, {"reason": reason})


def audits() -> int:
    return AuditEvent.objects.count()


# -- threats: a protected state machine ------------------------------------------------------


def test_a_threats_status_is_not_assigned_directly(client, model, author):
    threat = disclosure(model)
    with pytest.raises(AttributeError, match="Direct status modification is not allowed"):
        threat.status = ThreatStatus.MITIGATED

    client.force_login(author)
    url = reverse("admin:reviews_threatmodel_change", args=[model.pk])
    page = client.get(url)
    assert page.status_code == 200
    assert 'name="threats-0-status"' not in page.content.decode()
    response = client.post(url, browser_post(page, **{"threats-0-status": ThreatStatus.ACCEPTED}))

    assert response.status_code == 302
    assert set(model.threats.values_list("status", flat=True)) == {ThreatStatus.OPEN}


def test_each_transition_of_a_threat_is_audited(client, model, author):
    threat = disclosure(model)
    client.force_login(author)

    response = act(client, threat, "mitigate")  # keeps the mitigation it says (TLS)

    assert response.status_code == 302
    threat.refresh_from_db()
    assert threat.status == ThreatStatus.MITIGATED
    event = last_audit(threat)
    assert (event.action, event.actor, event.from_state, event.to_state) == (
        "threat.mitigate",
        author,
        "open",
        "mitigated",
    )
    assert event.reason == "TLS" and event.data == {"threat_model": model.pk}
    assert threat.history.first().history_user == author

    steps = [
        (tm.threat_reopen, "", "open"),
        (tm.threat_accept_risk, "Only hourly counters cross the boundary.", "accepted"),
        (tm.threat_reopen, "", "open"),
        (tm.threat_transfer, "The host platform terminates TLS.", "transferred"),
    ]
    for service, reason, status in steps:
        service(threat=threat, actor=author, reason=reason)
        threat.refresh_from_db()
        event = last_audit(threat)
        assert threat.status == status
        assert (event.action, event.actor, event.to_state, event.reason) == (
            f"threat.{service.__name__.removeprefix('threat_')}",
            author,
            status,
            reason,
        )
    assert threat.history.count() == 1 + 1 + len(steps)  # created, mitigated, then each step


def test_wrong_state_and_hostile_transitions_are_refused_and_change_nothing(
    client, model, author, other_author, outsider
):
    threat = disclosure(model)
    unmitigated = model.threats.get(stride=Stride.DENIAL_OF_SERVICE)  # says no mitigation yet
    tm.threat_mitigate(threat=threat, actor=author)
    before = audits()

    with pytest.raises(TransitionRefused, match=r"Cannot mitigate .*: it is mitigated\."):
        tm.threat_mitigate(threat=threat, actor=author, mitigation="Again")
    with pytest.raises(TransitionRefused, match=r"Cannot reopen .*: it is open\."):
        tm.threat_reopen(threat=unmitigated, actor=author)
    with pytest.raises(ValidationFailed, match="Say how"):
        tm.threat_mitigate(threat=unmitigated, actor=author)
    with pytest.raises(ValidationFailed, match="A reason is required"):
        tm.threat_accept_risk(threat=unmitigated, actor=author, reason="  ")
    for stranger in (other_author, outsider):
        with pytest.raises(PermissionRefused):
            tm.threat_accept_risk(threat=unmitigated, actor=stranger, reason="Not mine to accept.")

    client.force_login(other_author)  # another organisation's threat is not even found
    assert act(client, unmitigated, "accept_risk", "x").status_code == 404
    client.force_login(author)
    assert act(client, unmitigated, "delete").status_code == 404  # no such action
    page = client.post(
        reverse("admin:reviews_threat_act", args=[threat.pk, "mitigate"]), {"reason": "Again"}, follow=True
    )
    assert "Mark mitigated refused for" in page.content.decode() and "it is mitigated" in page.content.decode()
    assert audits() == before

    tm.threat_model_submit(threat_model=model, actor=author)
    before = audits()
    with pytest.raises(TransitionRefused, match="submitted for review; it is not edited"):
        tm.threat_transfer(threat=unmitigated, actor=author, reason="The host does it.")

    threat.refresh_from_db()
    unmitigated.refresh_from_db()
    assert (threat.status, unmitigated.status) == (ThreatStatus.MITIGATED, ThreatStatus.OPEN)
    assert threat.mitigation == "TLS"
    assert audits() == before


def test_the_security_reviewer_reopens_a_threat_under_review_saying_why(model, author, security):
    threat = disclosure(model)
    tm.threat_mitigate(threat=threat, actor=author)
    with pytest.raises(PermissionRefused):  # not while the author is still writing it
        tm.threat_reopen(threat=threat, actor=security, reason="TLS alone is not enough.")
    tm.threat_model_submit(threat_model=model, actor=author)

    with pytest.raises(ValidationFailed):
        tm.threat_reopen(threat=threat, actor=security)
    tm.threat_reopen(threat=threat, actor=security, reason="Pin the certificate as well.")

    threat.refresh_from_db()
    event = last_audit(threat)
    assert threat.status == ThreatStatus.OPEN
    assert (event.action, event.actor, event.reason) == ("threat.reopen", security, "Pin the certificate as well.")


# -- threat-model rows in the admin -------------------------------------------------------------


def test_rows_added_and_edited_in_the_admin_are_audited(client, model, author):
    element = model.elements.get(name="usage data")
    client.force_login(author)
    url = reverse("admin:reviews_threatmodel_change", args=[model.pk])
    page = client.get(url)
    form = browser_post(page)
    row = f"elements-{[f.instance for f in page.context['inline_admin_formsets'][0].formset.forms].index(element)}"
    new = f"threats-{form['threats-TOTAL_FORMS']}"
    form.update(
        {
            f"{row}-description": "Hourly usage counters, no identifiers.",
            "threats-TOTAL_FORMS": form["threats-TOTAL_FORMS"] + 1,
            f"{new}-title": "Counters replayed to inflate usage",
            f"{new}-stride": Stride.TAMPERING,
            f"{new}-likelihood": "low",
            f"{new}-impact": "medium",
            f"{new}-threat_model": model.pk,
        }
    )

    response = client.post(url, form)

    assert response.status_code == 302
    element.refresh_from_db()
    added = model.threats.get(title="Counters replayed to inflate usage")
    assert element.description == "Hourly usage counters, no identifiers."
    assert (added.source, added.status) == (Source.AUTHOR, ThreatStatus.OPEN)
    edited, created = last_audit(element), last_audit(added)
    assert (edited.action, edited.actor, edited.data["changed"]) == ("threatmodelelement.edit", author, ["description"])
    assert (created.action, created.actor) == ("threat.add", author)
    assert added.history.get().history_user == author


def test_prefilled_threats_stay_and_the_authors_own_are_deleted_with_an_audit_event(client, model, author):
    own = tm.threat_model_row_save(
        row=Threat(threat_model=model, title="Mine", stride=Stride.SPOOFING), actor=author, changed=["title"]
    )
    client.force_login(author)
    url = reverse("admin:reviews_threatmodel_change", args=[model.pk])
    page = client.get(url)
    rows = [f.instance for f in page.context["inline_admin_formsets"][1].formset.forms]
    prefilled = rows.index(disclosure(model))
    before = audits()

    refused = client.post(url, browser_post(page, **{f"threats-{prefilled}-DELETE": "on"}))

    assert refused.status_code == 200
    assert "mitigate, accept or transfer it instead" in refused.content.decode()
    assert Threat.objects.filter(pk=rows[prefilled].pk).exists() and audits() == before

    deleted = client.post(url, browser_post(page, **{f"threats-{rows.index(own)}-DELETE": "on"}))

    assert deleted.status_code == 302
    assert not Threat.objects.filter(pk=own.pk).exists()
    event = AuditEvent.objects.get(action="threat.delete")
    assert (event.actor, event.object_id, event.data) == (author, str(own.pk), {"threat_model": model.pk})
    with pytest.raises(TransitionRefused, match="it stays"):  # the manifest's elements too
        tm.threat_model_row_delete(row=model.elements.filter(source=Source.MANIFEST).first(), actor=author)


def test_others_cannot_write_rows_of_a_threat_model(client, model, author, other_author):
    client.force_login(author)
    url = reverse("admin:reviews_threatmodel_change", args=[model.pk])
    form = browser_post(client.get(url), **{"elements-0-description": "Changed by a stranger"})
    rows, before = ThreatModelElement.objects.count(), audits()

    client.force_login(other_author)
    response = client.post(url, form)

    assert response.status_code == 404  # an object it may not see, as one that exists nowhere
    assert "Changed by a stranger" not in set(model.elements.values_list("description", flat=True))
    assert (ThreatModelElement.objects.count(), audits()) == (rows, before)
    with pytest.raises(PermissionRefused):
        tm.threat_model_row_save(
            row=Threat(threat_model=model, title="Planted", stride=Stride.SPOOFING), actor=other_author, changed=[]
        )
    assert not Threat.objects.filter(title="Planted").exists()


# -- reviewer qualifications and training records -------------------------------------------------


@pytest.fixture
def newcomer(django_user_model):
    return make_user(django_user_model, "newcomer", roles.SECURITY_REVIEWERS, qualified=False)


def test_a_platform_admin_grants_and_changes_a_qualification_in_the_admin(client, platform_admin, newcomer):
    client.force_login(platform_admin)
    add = reverse("admin:reviews_reviewerqualification_add")
    form = {"reviewer": newcomer.pk, "stage_kind": "security", "earned_on": "2026-03-01"}

    assert client.post(add, {**form, "granted_by": newcomer.pk}).status_code == 302

    qualification = ReviewerQualification.objects.get(reviewer=newcomer)
    assert qualification.granted_by == platform_admin  # whoever grants it, whatever the form said
    event = last_audit(qualification)
    assert (event.action, event.actor, event.data["stage_kind"]) == ("qualification.grant", platform_admin, "security")
    assert qualification.history.get().history_user == platform_admin

    change = reverse("admin:reviews_reviewerqualification_change", args=[qualification.pk])
    response = client.post(change, browser_post(client.get(change), expires_on="2026-06-30"))

    assert response.status_code == 302
    qualification.refresh_from_db()
    event = last_audit(qualification)
    assert qualification.expires_on == date(2026, 6, 30)
    assert (event.action, event.actor, event.data["changed"]) == (
        "qualification.change",
        platform_admin,
        ["expires_on"],
    )


def test_qualifications_are_refused_to_others_and_never_deleted(client, platform_admin, security, newcomer):
    training = TrainingRecord.objects.create(user=security, course="Secure code review", completed_on=date(2026, 1, 5))
    form = {"reviewer": newcomer.pk, "stage_kind": "security", "earned_on": "2026-03-01"}
    add = reverse("admin:reviews_reviewerqualification_add")
    before = audits()

    client.force_login(security)  # a reviewer may not qualify anyone
    assert client.post(add, form).status_code == 403
    client.force_login(platform_admin)
    mismatched = client.post(add, {**form, "training": training.pk})
    backwards = client.post(add, {**form, "expires_on": "2026-02-01"})

    assert mismatched.status_code == backwards.status_code == 200
    assert "is another reviewer&#x27;s training" in mismatched.content.decode()
    assert "cannot expire before it was earned" in backwards.content.decode()
    assert not ReviewerQualification.objects.filter(reviewer=newcomer).exists() and audits() == before

    qualification = ReviewerQualification.objects.get(reviewer=security)
    delete = reverse("admin:reviews_reviewerqualification_delete", args=[qualification.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    assert ReviewerQualification.objects.filter(pk=qualification.pk).exists()


def test_training_records_are_audited_refused_to_others_and_never_deleted(client, platform_admin, security, newcomer):
    add = reverse("admin:reviews_trainingrecord_add")
    form = {"user": newcomer.pk, "course": "Threat modelling", "completed_on": "2026-02-10"}
    client.force_login(security)
    assert client.post(add, form).status_code == 403
    assert not TrainingRecord.objects.exists()

    client.force_login(platform_admin)
    assert client.post(add, form).status_code == 302
    record = TrainingRecord.objects.get()
    change = reverse("admin:reviews_trainingrecord_change", args=[record.pk])
    assert client.post(change, browser_post(client.get(change), course="Threat modelling II")).status_code == 302

    record.refresh_from_db()
    trail = AuditEvent.objects.filter(object_type="reviews.trainingrecord").order_by("seq")
    actions = list(trail.values_list("action", "actor"))
    assert record.course == "Threat modelling II"
    assert actions == [("training.record", platform_admin.pk), ("training.change", platform_admin.pk)]
    delete = reverse("admin:reviews_trainingrecord_delete", args=[record.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    assert TrainingRecord.objects.filter(pk=record.pk).exists()


# -- performance budgets ---------------------------------------------------------------------------


@pytest.fixture
def host(db):
    return HostPlatform.objects.create(name="Acme Cloud", api_version="2.4", is_default=True)


BUDGET = {"category": "data-connector", "startup_ms": "250", "regression_percent": "15", "typical_threads": "4",
          "peak_threads": "16"}  # fmt: skip


def test_budgets_are_created_changed_and_deleted_with_audit_events(client, host, platform_admin):
    client.force_login(platform_admin)
    assert (
        client.post(reverse("admin:reviews_performancebudget_add"), {**BUDGET, "host_platform": host.pk}).status_code
        == 302
    )
    budget = PerformanceBudget.objects.get()
    change = reverse("admin:reviews_performancebudget_change", args=[budget.pk])
    assert client.post(change, browser_post(client.get(change), startup_ms="300")).status_code == 302

    delete = reverse("admin:reviews_performancebudget_delete", args=[budget.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 302

    assert not PerformanceBudget.objects.exists()
    events = list(AuditEvent.objects.filter(object_type="reviews.performancebudget").order_by("seq"))
    assert [(e.action, e.actor) for e in events] == [
        ("performance_budget.create", platform_admin),
        ("performance_budget.change", platform_admin),
        ("performance_budget.delete", platform_admin),
    ]
    assert events[1].data["changed"] == ["startup_ms"]
    assert (events[2].data["startup_ms"], events[2].data["host_platform"]) == (
        "300.0",
        "Acme Cloud",
    )  # what was deleted
    assert budget.history.filter(history_type="-").get().history_user == platform_admin


def test_deleting_selected_budgets_audits_each(client, host, platform_admin):
    budgets = [
        PerformanceBudget.objects.create(host_platform=host, category=category) for category in ("", "data-connector")
    ]
    client.force_login(platform_admin)
    changelist = reverse("admin:reviews_performancebudget_changelist")
    selected = {"action": "delete_selected", "_selected_action": [b.pk for b in budgets]}

    assert client.post(changelist, {**selected, "post": "yes"}).status_code == 302

    assert not PerformanceBudget.objects.exists()
    deleted = AuditEvent.objects.filter(action="performance_budget.delete", actor=platform_admin)
    assert sorted(deleted.values_list("object_id", flat=True)) == sorted(str(b.pk) for b in budgets)


def test_budgets_are_refused_to_reviewers_and_nonsense_is_a_form_error(client, host, platform_admin, performance):
    budget = PerformanceBudget.objects.create(host_platform=host, category="")
    add = reverse("admin:reviews_performancebudget_add")
    client.force_login(performance)  # may see budgets, not set them
    assert client.post(add, {**BUDGET, "host_platform": host.pk}).status_code == 403
    delete = reverse("admin:reviews_performancebudget_delete", args=[budget.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403

    client.force_login(platform_admin)
    response = client.post(add, {**BUDGET, "host_platform": host.pk, "typical_threads": "32"})

    assert response.status_code == 200
    assert "Peak concurrency cannot be below typical concurrency." in response.content.decode()
    assert list(PerformanceBudget.objects.all()) == [budget]
    assert not AuditEvent.objects.filter(object_type="reviews.performancebudget").exists()

"""The admin home of each role (config/admin_site.py): what waits on it, every version row linking
to its dossier, each user seeing the sections of each of their roles, in a constant number of
queries."""

import html
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
import yaml
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.template.defaultfilters import floatformat
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from compliance.evidence import evidence_decide, evidence_upload
from compliance.models import Checklist, Control, ControlAssessment
from compliance.services import framework_import
from decisions.selectors import latest_rating
from decisions.services import version_reassess
from governance import roles
from reviews import services as review
from reviews.collaboration import annotation_add
from reviews.models import CheckRun, Finding, SlaBreach
from reviews.sla import sla_sweep
from submissions import services as sub
from submissions.samples import plugin_archive
from tests.conftest import current_review, make_user, open_review

pytestmark = pytest.mark.django_db
DEFAULT_FRAMEWORK = Path(__file__).resolve().parents[2] / "compliance" / "frameworks" / "default.yaml"


def dossier(version, review=None) -> str:
    url = reverse("admin:submissions_pluginversion_dossier", args=[version.pk])
    return f"{url}#stage-{review.pk}" if review else url


def home(client, user):
    client.force_login(user)
    response = client.get(reverse("admin:index"))
    assert response.status_code == 200
    return response


def reach_security(plugin, author, platform_admin, number: str, capture):
    """A new version of ``plugin`` past eligibility: its security, performance and compliance reviews started."""
    version = sub.version_create(plugin=plugin, artifact=plugin_archive(plugin.name, number), actor=author)
    with capture(execute=True):
        sub.version_submit(version=version, actor=author)
    review.stage_pass(review=open_review(version, "eligibility"), actor=platform_admin)
    return open_review(version, "security")


def linked(body: str, url: str) -> bool:
    return f'href="{html.escape(url)}"' in body


# -- reviewers ---------------------------------------------------------------------------


def test_a_reviewers_home_lists_its_open_reviews_overdue_first_and_counts_what_waits_unassigned(
    client, plugin, author, pipeline, platform_admin, security, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    with time_machine.travel(timezone.now() - timedelta(days=30)):
        overdue = reach_security(plugin, author, platform_admin, "1.0.0", capture)
    fresh = reach_security(plugin, author, platform_admin, "1.1.0", capture)
    released = reach_security(plugin, author, platform_admin, "1.2.0", capture)
    review.stage_release(review=released, actor=security)
    assert overdue.assignee == fresh.assignee == security

    page = home(client, security)
    assert page.context["my_reviews"] == [overdue, fresh]
    assert [r.overdue for r in page.context["my_reviews"]] == [True, False]
    body = page.content.decode()
    assert linked(body, dossier(overdue.version, overdue)) and linked(body, dossier(fresh.version, fresh))
    assert body.count("(overdue)") == 1
    assert body.index(dossier(overdue.version, overdue)) < body.index(dossier(fresh.version, fresh))
    # only the security reviews count: the performance and compliance ones (nobody to take
    # them here) wait in other groups
    [waiting] = page.context["unassigned_in_my_groups"]
    assert (waiting["stage__name"], waiting["count"]) == ("Security review", 1)
    queue = reverse("admin:reviews_stagereview_changelist")
    queue += f"?stage__id__exact={released.stage_id}&state=in_progress&assigned=none"
    assert linked(body, queue) and "1 Security review</a>" in body
    assert list(client.get(queue).context["cl"].result_list) == [released]


def test_the_home_links_to_the_full_list_when_a_list_is_cut(
    client, plugin, author, pipeline, platform_admin, security, django_capture_on_commit_callbacks, monkeypatch
):
    for number in ("1.0.0", "1.1.0"):
        reach_security(plugin, author, platform_admin, number, django_capture_on_commit_callbacks)
    see_all = f'href="{reverse("admin:reviews_stagereview_changelist")}?assigned=me">See all your open reviews'
    assert see_all not in home(client, security).content.decode()
    monkeypatch.setattr("config.admin_site.HOME_ROWS", 1)
    page = home(client, security)
    assert len(page.context["my_reviews"]) == 1 and see_all in page.content.decode()


# -- the board ---------------------------------------------------------------------------


def test_the_boards_home_shows_each_versions_latest_rating_band_and_how_long_it_waits(
    client, make_awaiting, board, security, outsider
):
    version = make_awaiting("1.0.0")
    first = latest_rating(version=version)
    run = current_review(version, "security").check_runs.create(
        version=version, check_key="security.bandit", status="failed", revision=version.revision
    )
    Finding.objects.bulk_create(
        Finding(
            check_run=run,
            version=version,
            kind="security",
            severity="critical",
            rule_id=f"B6{i:02}",
            title=f"finding {i}",
            fingerprint=f"{i:064x}",
        )
        for i in range(8)
    )
    version_reassess(version=version, actor=board)
    rating = latest_rating(version=version)
    assert rating.pk != first.pk and rating.band != first.band

    with time_machine.travel(timezone.now() + timedelta(hours=3)):
        page = home(client, board)
    [row] = page.context["awaiting_decision"]
    assert row == version and row.rating_band == rating.band
    body = page.content.decode()
    assert linked(body, dossier(version))
    assert f'class="band-{rating.band}"' in body
    assert f"{rating.get_band_display()} ({floatformat(rating.total, 0)})" in body
    assert "waiting 3\xa0hours" in body

    board.groups.add(Group.objects.get(name=roles.SECURITY_REVIEWERS))  # in two roles: both sections
    body = home(client, board).content.decode()
    assert 'id="awaiting-decision"' in body and 'id="my-reviews"' in body
    for who in (security, outsider):
        body = home(client, who).content.decode()
        assert 'id="awaiting-decision"' not in body and dossier(version) not in body


# -- authors -----------------------------------------------------------------------------


def test_an_authors_home_lists_what_waits_on_it_and_only_for_its_own_organisation(
    client,
    plugin,
    author,
    other_author,
    globex,
    pipeline,
    platform_admin,
    security,
    compliance,
    django_capture_on_commit_callbacks,
):
    framework, _created = framework_import(document=yaml.safe_load(DEFAULT_FRAMEWORK.read_text()))
    Checklist.objects.create(name="Every plugin").frameworks.add(framework)
    capture = django_capture_on_commit_callbacks
    changes = reach_security(plugin, author, platform_admin, "1.0.0", capture)
    review.stage_request_changes(review=changes, actor=security, reason="Pin your dependencies.")
    asked = reach_security(plugin, author, platform_admin, "1.1.0", capture).version
    annotation_add(version=asked, actor=security, body="Why does it need the network?", to_author=True)
    annotation_add(version=asked, actor=security, body="Internal note.")  # not addressed to the authors
    evidence = evidence_upload(
        version=asked,
        controls=list(Control.objects.filter(key="audit-logging")),
        kind="policy",
        file=SimpleUploadedFile("audit.pdf", b"%PDF-1.7 audit log policy"),
        actor=author,
    )
    evidence_decide(evidence=evidence, actor=compliance, accept=False, reason="This is last year's policy.")
    to_do = ControlAssessment.objects.filter(
        stage_review=current_review(asked, "compliance"), status="todo", automatic=False
    ).count()
    assert to_do > 0
    widget = sub.plugin_create(organisation=globex, name="globex-widget", category="data-connector", actor=other_author)
    theirs = sub.version_create(plugin=widget, artifact=plugin_archive("globex-widget", "1.0.0"), actor=other_author)
    with capture(execute=True):
        sub.version_submit(version=theirs, actor=other_author)
    review.stage_pass(review=open_review(theirs, "eligibility"), actor=platform_admin)
    review.stage_request_changes(review=open_review(theirs, "security"), actor=security, reason="Sign it.")

    page = home(client, author)
    rows = page.context["waiting_on_me"]
    assert rows == [changes.version, asked]
    assert (rows[0].status, rows[0].open_threads, rows[0].evidence_requested) == ("changes_requested", 0, 0)
    assert (rows[1].open_threads, rows[1].evidence_requested, rows[1].evidence_rejected) == (1, to_do, 1)
    body = page.content.decode()
    assert linked(body, dossier(changes.version) + "#status") and "changes requested" in body
    assert linked(body, dossier(asked) + "#threads") and "1 open thread</a>" in body
    assert f"evidence requested for {to_do} controls" in body and "1 evidence rejected" in body
    assert dossier(theirs) not in body  # another organisation's changes-requested version

    page = home(client, other_author)
    assert page.context["waiting_on_me"] == [theirs]
    assert dossier(changes.version) not in page.content.decode()
    assert 'id="waiting-on-me"' not in home(client, security).content.decode()  # no organisation: no section


# -- platform admins ---------------------------------------------------------------------


def test_a_platform_admins_home_shows_unassigned_reviews_errored_checks_and_breached_slas(
    client, plugin, author, pipeline, platform_admin, security, django_capture_on_commit_callbacks
):
    security_review = reach_security(plugin, author, platform_admin, "1.0.0", django_capture_on_commit_callbacks)
    version = security_review.version
    waiting = [current_review(version, "performance"), current_review(version, "compliance")]  # nobody to take them
    errored = CheckRun.objects.create(
        version=version,
        stage_review=security_review,
        check_key="security.behaviour",
        status="errored",
        error="bwrap is not installed",
        revision=version.revision,
    )
    CheckRun.objects.create(  # a run of a review already decided holds nothing up
        version=version,
        stage_review=current_review(version, "eligibility"),
        check_key="eligibility.manifest",
        status="errored",
        revision=version.revision,
    )
    later = security_review.due_at + timedelta(hours=1)
    with time_machine.travel(later):
        sla_sweep(now=later)
        page = home(client, platform_admin)
    breach = SlaBreach.objects.get(review=security_review)

    assert page.context["unassigned_reviews"] == waiting and page.context["unassigned_total"] == 2
    assert page.context["errored_runs"] == [errored]
    assert security_review in page.context["overdue_reviews"]
    body = page.content.decode()
    for stage_review in (*waiting, security_review):
        assert linked(body, dossier(version, stage_review))
    assert "bwrap is not installed" in body and "security.behaviour: " in body
    assert f"escalated {timezone.localtime(breach.detected_at):%Y-%m-%d %H:%M}" in body  # the sweep's record
    ids = page.context["unassigned_stage_ids"]
    queue = f"{reverse('admin:reviews_stagereview_changelist')}?state=in_progress&assigned=none&stage__id__in={ids}"
    assert linked(body, queue)
    assert list(client.get(queue).context["cl"].result_list) == waiting
    for section in ("stuck-unassigned", "stuck-errored", "stuck-breached"):
        assert f'id="{section}"' not in home(client, security).content.decode()


# -- a constant number of queries -----------------------------------------------------------


def queries_of_home(client) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(reverse("admin:index"))
    assert response.status_code == 200
    return len(captured)


@pytest.fixture
def everyone(django_user_model, globex, platform_admin):
    """One user in every role: a security reviewer, on the board, a platform admin and an
    author of Globex (so it may review and decide Acme's versions)."""
    user = make_user(django_user_model, "everyone", roles.SECURITY_REVIEWERS)
    user.groups.add(*Group.objects.filter(name__in=[roles.APPROVAL_BOARD, roles.PLATFORM_ADMINS]))
    sub.organisation_add_member(organisation=globex, user=user, actor=platform_admin)
    return user


def test_the_home_takes_the_same_number_of_queries_at_2_and_10_rows_in_every_section(
    client,
    plugin,
    author,
    globex,
    make_awaiting,
    everyone,
    platform_admin,
    security,
    performance,
    django_capture_on_commit_callbacks,
):
    widget = sub.plugin_create(organisation=globex, name="globex-widget", category="data-connector", actor=everyone)
    capture = django_capture_on_commit_callbacks

    def add_rows(first: int, count: int) -> None:
        """Per row: an Acme version awaiting decision; one in review whose security review
        ``everyone`` holds, with an errored check, and whose performance review waits
        unassigned; a Globex version with a thread addressed to its authors."""
        for i in range(first, first + count):
            acme = sub.version_create(plugin=plugin, artifact=plugin_archive(plugin.name, f"2.{i}.0"), actor=author)
            with capture(execute=True):
                sub.version_submit(version=acme, actor=author)
            held = open_review(acme, "security")
            if held.assignee != everyone:
                held = review.stage_assign(review=held, actor=platform_admin, to=everyone)
            CheckRun.objects.create(
                version=acme, stage_review=held, check_key="security.behaviour", status="errored", revision=1
            )
            review.stage_release(review=open_review(acme, "performance"), actor=performance)
            make_awaiting(f"1.{i}.0")  # after: its security review goes to the less loaded ``security``
            theirs = sub.version_create(plugin=widget, artifact=plugin_archive(widget.name, f"1.{i}.0"), actor=everyone)
            with capture(execute=True):
                sub.version_submit(version=theirs, actor=everyone)
            annotation_add(version=theirs, actor=security, body=f"Question {i}?", to_author=True)

    def measured() -> tuple[int, dict]:
        later = timezone.now() + timedelta(days=30)  # every open review is past due
        with time_machine.travel(later):
            sla_sweep(now=later)
            client.force_login(everyone)
            client.get(reverse("admin:index"))  # warm per-process caches (content types, permissions)
            count = queries_of_home(client)
            context = client.get(reverse("admin:index")).context
        return count, {key: len(context[key]) for key in SECTIONS}

    add_rows(0, 2)
    at_2, rows_at_2 = measured()
    add_rows(2, 8)
    at_10, rows_at_10 = measured()
    assert rows_at_2 == dict.fromkeys(SECTIONS, 2) | {"overdue_reviews": rows_at_2["overdue_reviews"]}
    assert rows_at_10 == dict.fromkeys(SECTIONS, 10) | {"overdue_reviews": 20}  # breached: cut at 20
    assert at_2 == at_10, f"{at_2} queries at 2 rows, {at_10} at 10"


SECTIONS = ("my_reviews", "awaiting_decision", "waiting_on_me", "unassigned_reviews", "errored_runs", "overdue_reviews")

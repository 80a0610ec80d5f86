"""Smaller defects found on the way (issue 11, item 7): one test per defect."""

import logging
import logging.config
from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from compliance.evidence import evidence_upload
from compliance.models import Checklist, ControlAssessment, ReReview
from compliance.rereviews import re_review_schedule, re_reviews_open_due
from decisions import deployment
from decisions.admin import rubric_yaml
from decisions.models import RiskRubric
from decisions.rubric_versions import rubric_current, rubric_document
from governance import roles
from governance.models import AuditEvent
from reviews import services as review
from reviews.admin import render_performance
from reviews.models import CheckRun, PerformanceMetric
from submissions.models import IntegrationToken
from tests.compliance.test_evidence import compliance_review  # noqa: F401  (a fixture)
from tests.conftest import last_audit, open_review
from tests.test_admin import stage_form

pytestmark = pytest.mark.django_db


@pytest.fixture
def reviewing(in_review, platform_admin):
    """Eligibility passed: the security, performance and compliance reviews are in progress."""
    review.stage_pass(review=open_review(in_review, "eligibility"), actor=platform_admin)
    return in_review


def downloaded(response) -> bytes:
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment")
    assert response["Content-Type"] == "application/octet-stream"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"] == "sandbox"
    return b"".join(response.streaming_content)


# 1 -----------------------------------------------------------------------------------


def test_check_run_report_and_evidence_file_links_download_for_who_may_see_them(
    client, in_review, author, security, compliance, other_author
):
    run = CheckRun.objects.create(version=in_review, check_key="security.bandit", origin="external")
    run.report.save("bandit.sarif", ContentFile(b'{"runs": []}'))
    evidence = evidence_upload(
        version=in_review, controls=[], kind="other", file=SimpleUploadedFile("flow.pdf", b"%PDF-1.7 x"), actor=author
    )
    report_url = reverse("admin:reviews_checkrun_report", args=[run.pk])
    file_url = reverse("admin:compliance_evidence_download", args=[evidence.pk])

    client.force_login(security)
    page = client.get(reverse("admin:reviews_checkrun_change", args=[run.pk])).content.decode()
    assert report_url in page and "/media/" not in page
    assert downloaded(client.get(report_url)) == b'{"runs": []}'

    client.force_login(compliance)
    page = client.get(reverse("admin:compliance_evidence_change", args=[evidence.pk])).content.decode()
    assert file_url in page and "/media/" not in page  # the only "File" link is the download
    assert downloaded(client.get(file_url)) == b"%PDF-1.7 x"

    client.force_login(other_author)
    assert client.get(report_url).status_code == 404
    assert client.get(file_url).status_code == 404


# 2 -----------------------------------------------------------------------------------


def test_view_site_leads_to_a_real_page(client, security):
    client.force_login(security)
    site_url = client.get(reverse("admin:index")).context["site_url"]
    assert client.get(site_url).status_code == 200


# 3 -----------------------------------------------------------------------------------


def test_reviewers_open_their_own_user_from_the_links_of_their_name(client, reviewing, security, author):
    claimed = review.stage_claim(review=open_review(reviewing, "security"), actor=security)
    own = reverse("admin:auth_user_change", args=[security.pk])
    client.force_login(security)
    page = client.get(reverse("admin:reviews_stagereview_change", args=[claimed.pk])).content.decode()
    assert own in page  # "assignee: security" links here
    response = client.get(own)
    assert response.status_code == 200 and "security@example.com" in response.content.decode()
    assert reverse("admin:auth_user_password_change", args=[security.pk]) not in response.content.decode()
    assert client.post(own, {"username": "renamed"}).status_code == 403
    security.refresh_from_db()
    assert security.username == "security"
    assert client.get(reverse("admin:auth_user_change", args=[author.pk])).status_code == 403
    assert client.get(reverse("admin:auth_user_changelist")).status_code == 403


# 4 -----------------------------------------------------------------------------------


def test_re_reviews_are_only_for_deployed_versions(make_approved, platform_admin, board, environment):
    Checklist.objects.create(name="Connectors", categories=["data-connector"], re_review_days=90)
    v1, v2 = make_approved("1.0.0"), make_approved("1.1.0")
    deployment.version_deploy(version=v1, environment=environment, actor=platform_admin)
    deployment.version_deploy(version=v2, environment=environment, actor=platform_admin)  # v1 superseded
    (closed,) = ReReview.objects.filter(version=v1)
    assert closed.status == "done" and closed.completed_by is None
    assert "no longer deployed (superseded by" in closed.outcome
    assert closed.history.first().status == "done"  # saved with history, not QuerySet.update()
    assert last_audit(closed).action == "compliance.re_review_closed"

    deployment.version_roll_back(
        version=v2, environment=environment, actor=platform_admin, reason="Incident 42"
    )  # v1 runs again
    assert ReReview.objects.get(version=v2).status == "done"
    assert ReReview.objects.filter(version=v1, status="scheduled").count() == 1
    assert re_review_schedule(version=v2) is None  # rolled back: nothing to schedule

    deployment.version_revoke(version=v1, actor=board, reason="Licence withdrawn")
    assert not ReReview.objects.filter(status__in=["scheduled", "open"]).exists()
    with time_machine.travel(timezone.now() + timedelta(days=91)):
        assert re_reviews_open_due() == 0


def test_a_due_re_review_of_a_version_no_longer_deployed_is_closed_not_opened(
    make_approved, platform_admin, environment
):
    version = make_approved("1.0.0")
    deployment.version_deploy(version=version, environment=environment, actor=platform_admin)
    deployment.version_roll_back(version=version, environment=environment, actor=platform_admin, reason="Incident 7")
    stale = ReReview.objects.create(version=version, due_on=timezone.localdate(), reason="Periodic re-review")
    assert re_reviews_open_due() == 0
    stale.refresh_from_db()
    assert stale.status == "done" and "no longer deployed (rolled back)" in stale.outcome


# 5 -----------------------------------------------------------------------------------


def test_a_throughput_drop_reads_as_a_drop_and_as_worse(in_review):
    run = CheckRun.objects.create(version=in_review, check_key="performance.harness")
    for kpi, value, baseline, worse, unit in [
        ("throughput_rps", 56.8, 100.0, 43.2, "calls/s"),
        ("latency_p95_ms", 14.3, 10.0, 43.0, "ms"),
    ]:
        PerformanceMetric.objects.create(
            check_run=run,
            version=in_review,
            kpi=kpi,
            concurrency=16,
            value=value,
            unit=unit,
            baseline_value=baseline,
            change_percent=worse,
            regressed=True,
        )
    html = render_performance(run)
    assert "\u221243.2 % (43.2 % worse)" in html  # the value fell, and that is worse
    assert "+43 % (43 % worse)" in html  # latency rose, and that is worse
    assert "+43.2" not in html


# 6 -----------------------------------------------------------------------------------


def test_an_assessment_message_says_what_happened(client, compliance_review, compliance):  # noqa: F811
    assessment = ControlAssessment.objects.filter(stage_review=compliance_review).exclude(status="done").first()
    client.force_login(compliance)
    url = reverse("admin:compliance_controlassessment_act", args=[assessment.pk, "met"])
    response = client.post(url, {"reason": "Checked."}, follow=True)
    (message,) = [str(m) for m in response.context["messages"]]
    assert message == f"Assessed {assessment.control} as met in {compliance_review}."
    assessment.refresh_from_db()
    assert assessment.result == "met"


# 7 -----------------------------------------------------------------------------------


def test_a_rubric_edit_needs_a_reason_and_the_audit_row_keeps_it(client, platform_admin):
    rubric = rubric_current()
    url = reverse("admin:decisions_riskrubric_change", args=[rubric.pk])
    document = rubric_yaml(rubric_document(rubric)).replace("weight: 10", "weight: 11", 1)
    form = {"name": "Default rubric", "description": "", "document": document}
    client.force_login(platform_admin)
    refused = client.post(url, {**form, "reason": ""})
    assert refused.status_code == 200 and "reason" in refused.context["adminform"].form.errors
    assert not AuditEvent.objects.filter(action="rubric.edit").exists()
    assert client.post(url, {**form, "reason": "Calibrated on Q3 incidents"}).status_code == 302
    edited = RiskRubric.objects.get(pk=rubric.pk)
    assert last_audit(edited).action == "rubric.edit"
    assert last_audit(edited).reason == "Calibrated on Q3 incidents"


# 8 -----------------------------------------------------------------------------------


def test_stage_names_are_not_followed_by_review(reviewing):
    assert str(open_review(reviewing, "security")) == "Security review of acme-exporter 1.4.0"
    assert "review review" not in str(open_review(reviewing, "performance"))


# 9 -----------------------------------------------------------------------------------


def test_the_review_queue_shows_open_reviews_and_marks_only_the_overdue(client, reviewing, platform_admin):
    queue = reverse("admin:reviews_stagereview_changelist")
    late = open_review(reviewing, "security")
    late.due_at = timezone.now() - timedelta(hours=1)
    late.save()
    client.force_login(platform_admin)
    response = client.get(queue)
    listed = {r.stage.key: r for r in response.context["cl"].result_list}
    assert "eligibility" not in listed and {"security", "performance", "compliance"} <= set(listed)
    html = response.content.decode()
    assert html.count("<strong>overdue</strong>") == 1 and "icon-no.svg" not in html
    everything = client.get(queue, {"state": "all"}).context["cl"].result_list
    assert "eligibility" in {r.stage.key for r in everything}


# 10 ----------------------------------------------------------------------------------


def test_only_role_groups_own_or_escalate_a_stage(client, pipeline, acme, platform_admin):
    stage = pipeline["security"]
    org_group = Group.objects.get(name="org:acme")
    url = reverse("admin:governance_stage_change", args=[stage.pk])
    client.force_login(platform_admin)
    offered = client.get(url).context["adminform"].form.fields["owner_group"].queryset
    assert org_group not in offered and Group.objects.get(name=roles.SECURITY_REVIEWERS) in offered
    for field in ("owner_group", "escalation_group"):
        response = client.post(url, stage_form(stage, **{field: org_group.pk}))
        assert response.status_code == 200 and field in response.context["adminform"].form.errors
    stage.refresh_from_db()
    assert stage.owner_group.name == roles.SECURITY_REVIEWERS
    stage.escalation_group = org_group
    with pytest.raises(ValidationError):
        stage.clean()


# 11 ----------------------------------------------------------------------------------


def test_platform_admins_create_api_tokens_in_the_admin(client, platform_admin, author, outsider):
    """Now integration tokens (tests/submissions/test_tokens.py has the rest)."""
    add = reverse("admin:submissions_integrationtoken_add")
    client.force_login(outsider)
    assert client.get(add).status_code == 403
    client.force_login(platform_admin)
    assert client.get(add).status_code == 200
    answer = client.post(add, {"name": "acme CI", "owner": author.pk, "scopes": ["submit"], "rate_per_minute": 60})
    assert answer.status_code == 200 and IntegrationToken.objects.filter(owner=author).exists()
    assert client.get(reverse("admin:submissions_integrationtoken_changelist")).status_code == 200


# 12 ----------------------------------------------------------------------------------


@pytest.fixture
def warden_logging(settings):
    """The logging configuration of config/settings/base.py (the test settings log nothing),
    with DEBUG on as in development; put back afterwards."""
    from config.settings import base

    settings.DEBUG = True
    names = ["", "django", "django.request", "django-q", "celpy"]
    saved = {name: logging.getLogger(name) for name in names}
    state = {n: (lg.handlers[:], lg.filters[:], lg.level, lg.propagate) for n, lg in saved.items()}
    logging.config.dictConfig(base.LOGGING)
    yield
    for name, (handlers, filters, level, propagate) in state.items():
        logger = saved[name]
        logger.handlers[:], logger.filters[:], logger.propagate = handlers, filters, propagate
        logger.setLevel(level)


def printed(record: logging.LogRecord) -> int:
    """How many console handlers print ``record`` on its way up to the root logger."""
    count, logger = 0, logging.getLogger(record.name)
    while logger is not None:
        count += sum(
            type(h) is logging.StreamHandler and record.levelno >= h.level and bool(h.filter(record))
            for h in logger.handlers
        )
        logger = logger.parent if logger.propagate else None
    return count


def test_a_refused_request_logs_one_line_without_a_traceback(client, in_review, security, warden_logging, caplog):
    not_theirs = open_review(in_review, "eligibility")
    client.force_login(security)
    with caplog.at_level(logging.WARNING):
        response = client.post(reverse("admin:reviews_stagereview_act", args=[not_theirs.pk, "pass"]))
    assert response.status_code == 404  # a review it may not see: as one that exists nowhere
    (record,) = [r for r in caplog.records if r.name == "django.request"]
    assert record.levelno == logging.WARNING and record.exc_info is None
    assert "Traceback" not in caplog.text
    assert printed(record) == 1


@pytest.mark.parametrize("bad", ["²", "٣", str(2**70), "0"])
def test_ids_that_are_not_ids_are_refused_never_a_500(client, platform_admin, bad):
    """``str.isdigit`` takes '²' and Arabic-Indic digits, which int() and the database refuse."""
    from governance.ids import is_id

    assert not is_id(bad)
    client.force_login(platform_admin)
    assert client.get(f"/admin/submissions/pluginversion/{bad}/history/").status_code == 404
    for url in (f"/admin/governance/notification/{bad}/change/", f"/admin/submissions/pluginversion/{bad}/change/"):
        assert client.get(url).status_code == 404, url


def test_a_long_reason_is_kept_whole_in_the_audit_row_and_cut_only_in_the_history_row(in_review, platform_admin):
    # PostgreSQL refuses a history change reason over 100 characters where SQLite stores it
    from governance.transitions import HISTORY_REASON_CHARS, history_reason
    from reviews import services as review_services
    from tests.conftest import open_review

    reason = "The plugin reads every file under the home directory; " * 10
    eligibility = open_review(in_review, "eligibility")
    review_services.stage_fail(review=eligibility, actor=platform_admin, reason=reason)
    event = AuditEvent.objects.filter(action="stage.fail").latest("seq")
    assert event.reason == reason.strip()
    history = eligibility.history.latest("history_date")
    assert len(history.history_change_reason) == HISTORY_REASON_CHARS
    assert history.history_change_reason == history_reason("stage.fail", reason.strip())

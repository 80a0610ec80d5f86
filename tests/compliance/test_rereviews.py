"""Ongoing conformity: scheduled re-reviews of deployed versions (time-machine)."""

from datetime import timedelta

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from compliance.evidence import evidence_upload
from compliance.models import Checklist, ReReview
from compliance.rereviews import re_review_complete, re_reviews_open_due
from decisions import deployment
from governance.errors import PermissionRefused
from governance.models import Notification

pytestmark = pytest.mark.django_db


@pytest.fixture
def deployed(make_approved, platform_admin, environment):
    Checklist.objects.create(name="Connectors", categories=["data-connector"], re_review_days=90)
    version = make_approved("1.0.0")
    deployment.version_deploy(version=version, environment=environment, actor=platform_admin)
    return version


def test_a_deployed_version_is_re_reviewed_on_schedule(deployed, compliance, client):
    scheduled = ReReview.objects.get(version=deployed)
    assert (scheduled.status, scheduled.due_on) == ("scheduled", timezone.localdate() + timedelta(days=90))
    with time_machine.travel(timezone.now() + timedelta(days=89)):
        assert re_reviews_open_due() == 0
    with time_machine.travel(timezone.now() + timedelta(days=90)):
        assert re_reviews_open_due() == 1
        assert re_reviews_open_due() == 0  # opened once
    scheduled.refresh_from_db()
    assert scheduled.status == "open"
    assert Notification.objects.get(event="compliance.re_review").recipient == compliance

    with time_machine.travel(timezone.now() + timedelta(days=95)):
        client.force_login(compliance)  # a session from 95 days ago would have expired
        page = client.get(reverse("admin:index"))
        assert page.context["overdue_re_reviews"] == [scheduled]
        done = re_review_complete(re_review=scheduled, actor=compliance, outcome="Nothing changed.")
        assert done.status == "done"
        following = ReReview.objects.get(version=deployed, status="scheduled")
        assert following.due_on == timezone.localdate() + timedelta(days=90)


def test_expired_evidence_opens_a_re_review_early(deployed, author, compliance):
    evidence = evidence_upload(
        version=deployed,
        controls=[],
        kind="certificate",
        actor=author,
        file=SimpleUploadedFile("iso.pdf", b"%PDF-1.7 certificate"),
        expires_on=timezone.localdate() + timedelta(days=10),
    )
    evidence.accept()  # accepted during the (here skipped) compliance review
    evidence.save()
    with time_machine.travel(timezone.now() + timedelta(days=11)):
        assert re_reviews_open_due() == 1
        early = ReReview.objects.get(version=deployed, status="open")
        assert early.reason.startswith("Evidence expired on")
        assert re_reviews_open_due() == 0


def test_only_compliance_officers_complete_re_reviews(deployed, security):
    scheduled = ReReview.objects.get(version=deployed)
    with time_machine.travel(timezone.now() + timedelta(days=90)):
        re_reviews_open_due()
    with pytest.raises(PermissionRefused):
        re_review_complete(re_review=scheduled, actor=security, outcome="Looks fine.")

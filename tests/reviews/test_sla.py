"""SLA clocks in working hours (time-machine): due times, reminders, escalations, pauses."""

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import pytest
import time_machine

from governance.models import Holiday, Notification, ReviewerProfile, WorkingCalendar
from reviews import services as review
from reviews.models import SlaBreach, SlaSignal
from reviews.sla import sla_sweep
from submissions import services as sub
from tests.conftest import make_user, open_review

pytestmark = pytest.mark.django_db
BERLIN = ZoneInfo("Europe/Berlin")


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """A moment in December 2026, Berlin time (Friday the 4th, Monday the 7th is a holiday)."""
    return datetime(2026, 12, day, hour, minute, tzinfo=BERLIN)


@pytest.fixture
def office_hours(pipeline):
    calendar = WorkingCalendar.objects.create(
        name="Berlin office",
        time_zone="Europe/Berlin",
        working_days=[1, 2, 3, 4, 5],
        day_start=time(9),
        day_end=time(17),
        is_default=True,
    )
    Holiday.objects.create(calendar=calendar, date=date(2026, 12, 7), name="Company day")
    for key in ("security", "compliance"):
        stage = pipeline[key]
        stage.sla_hours, stage.reminder_fractions, stage.escalation_repeat_hours = 16, [0.5, 0.9], 8
        stage.save()
    return calendar


@pytest.fixture
def started_friday(in_review, office_hours, platform_admin, security):
    """Eligibility passes on Friday 4 December at 15:00: the order-2 stages start then."""
    with time_machine.travel(at(4, 15), tick=False):
        review.stage_pass(review=open_review(in_review, "eligibility"), actor=platform_admin)
        review.stage_claim(review=open_review(in_review, "security"), actor=security)
    return in_review


def sweep(when: datetime) -> dict:
    with time_machine.travel(when, tick=False):
        return sla_sweep()


def test_due_time_skips_the_weekend_and_the_holiday(started_friday):
    security_review = open_review(started_friday, "security")
    # 16 working hours from Friday 15:00: Friday 2 h, (weekend, Monday holiday), Tuesday 8 h, Wednesday 6 h
    assert security_review.due_at == at(9, 15)
    assert security_review.window_hours == 16


def test_reminders_fire_once_each_at_their_thresholds(started_friday, security):
    assert sweep(at(8, 14, 59))["reminders"] == 0  # 7.98 of 16 working hours used
    assert sweep(at(8, 15, 1))["reminders"] == 2  # 50%: security and compliance each get one
    assert sweep(at(8, 16))["reminders"] == 0
    assert sweep(at(9, 13, 30))["reminders"] == 2  # 90% (14.4 h) was at 13:24
    assert sweep(at(9, 14))["reminders"] == 0
    security_review = open_review(started_friday, "security")
    assert sorted(s.key for s in SlaSignal.objects.filter(review=security_review)) == ["0.5", "0.9"]
    assert Notification.objects.filter(recipient=security, event="sla.reminder").count() == 2


def test_escalation_fires_at_breach_and_repeats(started_friday, security, platform_admin, django_user_model):
    lead = make_user(django_user_model, "security-lead")
    ReviewerProfile.objects.create(user=security, lead=lead)
    assert sweep(at(9, 14, 59))["escalations"] == 0
    first = sweep(at(9, 15, 1))
    assert (first["breaches"], first["escalations"]) == (2, 2)
    assert sweep(at(9, 16))["escalations"] == 0  # same escalation: not again
    told = set(Notification.objects.filter(event="sla.escalation").values_list("recipient__username", flat=True))
    assert {"security", "security-lead", "platform"} <= told
    assert sweep(at(10, 15, 1))["escalations"] == 2  # 8 working hours later (Wed 15-17, Thu 9-15): escalation 2
    security_review = open_review(started_friday, "security")
    assert sorted(
        SlaSignal.objects.filter(review=security_review, kind="escalation").values_list("key", flat=True)
    ) == ["1", "2"]
    breach = SlaBreach.objects.get(review=security_review)
    assert breach.planned_due == at(9, 15) and breach.resolved_at is None

    with time_machine.travel(at(10, 16), tick=False):
        review.stage_pass(review=security_review, actor=security)
    assert sweep(at(10, 16, 5))["resolved"] == 1
    breach.refresh_from_db()
    assert (breach.resolved_at, breach.hours_over) == (at(10, 16), 9.0)  # Wed 15-17 + Thu 9-16


def test_the_clock_pauses_while_the_author_has_the_version(
    started_friday, author, compliance, platform_admin, django_capture_on_commit_callbacks
):
    with time_machine.travel(at(8, 10), tick=False):  # compliance used Fri 15-17 and Tue 9-10: 3 h
        review.stage_request_changes(
            review=open_review(started_friday, "compliance"), actor=compliance, reason="Add the data-flow diagram."
        )
    assert sweep(at(15, 10))["escalations"] == 0  # a week with the author: nothing runs, nothing breaches
    with time_machine.travel(at(15, 9), tick=False):
        with django_capture_on_commit_callbacks(execute=True):
            sub.version_resubmit(version=started_friday, actor=author, reason="Diagram added.")
        review.stage_pass(review=open_review(started_friday, "eligibility"), actor=platform_admin)
    resumed = open_review(started_friday, "compliance")
    assert resumed.round == 2 and resumed.window_hours == 13  # 16 - 3
    assert resumed.due_at == at(16, 14)  # Tuesday 15th 9-17 (8 h) + Wednesday 9-14 (5 h)
    assert open_review(started_friday, "security").window_hours == 13  # cancelled at the same moment: 3 h used

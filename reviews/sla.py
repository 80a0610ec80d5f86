"""SLA clocks in working hours: due times, reminders, escalations and breaches.

1. When a review starts it gets a window: the stage's SLA, less the working hours a review
   of the same stage used in the previous round if that one did not finish (the clock was
   paused while the version waited for its author and resumes now). Its due time is that
   window counted in the stage's working calendar.
2. ``sla_sweep`` (scheduled every few minutes) sends each reminder once when its fraction
   of the window has passed, records a breach at the due time and escalates to the stage's
   escalation group and the reviewer's lead, again every ``escalation_repeat_hours``
   working hours while the review stays open, and closes the breach record (with the
   working hours over) once the review is decided.
"""

from datetime import datetime

from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from governance import calendar as workdays
from governance.models import ReviewerProfile, Stage, WorkingCalendar
from governance.notifications import notify

from .assignment import candidates
from .models import ReviewStatus, SlaBreach, SlaSignal, StageReview

MIN_WINDOW_HOURS = 1.0  # a resumed clock always leaves the reviewer at least this much
UNFINISHED = (ReviewStatus.CANCELLED, ReviewStatus.CHANGES_REQUESTED)


def calendar_for(stage: Stage) -> workdays.WorkingCalendar:
    row = stage.calendar or WorkingCalendar.objects.filter(is_default=True).first()
    if row is None:
        return workdays.WorkingCalendar.always()
    return workdays.WorkingCalendar(
        time_zone=row.time_zone,
        working_days=frozenset(row.working_days),
        day_start=row.day_start,
        day_end=row.day_end,
        holidays=frozenset(row.holidays.values_list("date", flat=True)),
    )


def schedule(*, review: StageReview, now: datetime) -> dict:
    """The window and due time of a review starting ``now`` (fields to set on it)."""
    calendar = calendar_for(review.stage)
    window = float(review.stage.sla_hours)
    previous = (
        StageReview.objects.filter(
            version_id=review.version_id, stage_id=review.stage_id, round__lt=review.round, started_at__isnull=False
        )
        .order_by("-round")
        .first()
    )
    if previous and previous.status in UNFINISHED and previous.started_at and previous.decided_at:
        used = workdays.working_hours_between(previous.started_at, previous.decided_at, calendar)
        window = max((previous.window_hours or window) - used, MIN_WINDOW_HOURS)
    return {"started_at": now, "window_hours": window, "due_at": workdays.add_working_hours(now, window, calendar)}


def sla_sweep(*, now: datetime | None = None) -> dict[str, int]:
    now = now or timezone.now()
    counts = {"reminders": 0, "escalations": 0, "breaches": 0, "resolved": 0}
    calendars: dict[int, workdays.WorkingCalendar] = {}
    open_reviews = StageReview.objects.filter(status=ReviewStatus.IN_PROGRESS, due_at__isnull=False).select_related(
        "stage__calendar", "stage__owner_group", "stage__escalation_group", "assignee", "version__plugin"
    )
    for review in open_reviews:
        due, started = review.due_at, review.started_at
        if due is None or started is None:
            continue
        calendar = calendars.setdefault(review.stage_id, calendar_for(review.stage))
        _remind(review, started, due, now, calendar, counts)
        if now >= due:
            _escalate(review, due, now, calendar, counts)
    for breach in (
        SlaBreach.objects.filter(resolved_at__isnull=True)
        .exclude(review__status__in=[ReviewStatus.IN_PROGRESS, ReviewStatus.PENDING])
        .select_related("review__stage__calendar")
    ):
        resolved = breach.review.decided_at or now
        calendar = calendars.setdefault(breach.stage_id, calendar_for(breach.review.stage))
        breach.resolved_at = resolved
        breach.hours_over = round(workdays.working_hours_between(breach.planned_due, resolved, calendar), 2)
        breach.save(update_fields=["resolved_at", "hours_over"])
        counts["resolved"] += 1
    return counts


def _remind(review: StageReview, started: datetime, due: datetime, now: datetime, calendar, counts: dict) -> None:
    window = review.window_hours or float(review.stage.sla_hours)
    elapsed = workdays.working_hours_between(started, now, calendar)
    fractions = [f for f in review.stage.reminder_fractions or [] if isinstance(f, int | float) and 0 < f < 1]
    for fraction in sorted(fractions):
        if elapsed >= fraction * window and now < due:
            recipients = [review.assignee] if review.assignee else candidates(review)
            subject = f"Reminder: {review} is {fraction:.0%} through its SLA (due {_when(due)})"
            counts["reminders"] += _signal(review, "reminder", f"{fraction:g}", recipients, "sla.reminder", subject)


def _escalate(review: StageReview, due: datetime, now: datetime, calendar, counts: dict) -> None:
    with transaction.atomic():
        _breach, created = SlaBreach.objects.get_or_create(
            review=review, defaults={"stage_id": review.stage_id, "planned_due": due}
        )
    counts["breaches"] += created
    over = workdays.working_hours_between(due, now, calendar)
    number = 1 + int(over // max(review.stage.escalation_repeat_hours, 1))
    recipients = [review.assignee, _lead_of(review.assignee)]
    if review.stage.escalation_group:
        recipients += list(review.stage.escalation_group.user_set.all())
    subject = f"Escalation {number}: {review} is past its SLA (due {_when(due)})"
    counts["escalations"] += _signal(review, "escalation", str(number), recipients, "sla.escalation", subject)


def _signal(review: StageReview, kind: str, key: str, recipients, event: str, subject: str) -> int:
    """Send once: the signal row and the notifications commit together or not at all."""
    with transaction.atomic():
        _signal_row, created = SlaSignal.objects.get_or_create(review=review, kind=kind, key=key)
        if created:
            url = reverse("admin:reviews_stagereview_change", args=[review.pk])
            notify(recipients=recipients, event=event, subject=subject, body=subject, url=url)
    return int(created)


def _lead_of(user):
    if user is None:
        return None
    profile = ReviewerProfile.objects.filter(user=user).select_related("lead").first()
    return profile.lead if profile else None


def _when(moment: datetime) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M %Z")

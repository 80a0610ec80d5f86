"""The notification outbox: ``notify`` writes rows inside the caller's transaction;
``notifications_send`` (a scheduled task) claims and e-mails them.

A row is claimed with a conditional UPDATE, so two senders never take the same one; a
failed send is retried with exponential backoff; a sent row is never sent again. If the
process dies between handing a mail to the backend and marking it sent, that one mail may
go out twice when the claim expires: at least once, never silently lost.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from . import roles
from .errors import PermissionRefused
from .models import Notification, NotificationPreference
from .selectors import notifications_of

logger = logging.getLogger(__name__)
# Every event a user may be told about, with what it means (users choose per event).
EVENTS = {
    "sla.reminder": "A review assigned to you (or your group) is part-way through its SLA",
    "sla.escalation": "A review you lead or escalate for is past its SLA",
    "stage.unassigned": "A review started and no qualified reviewer could be assigned",
    "stage.assigned": "A review was assigned or handed over to you",
    "webhook.disabled": "A webhook endpoint failed too often and was disabled",
    "annotation.mention": "Someone mentioned you in a comment",
    "annotation.to_author": "The reviewers wrote to your organisation",
    "feedback.requested": "A decision was made: rate the review process",
    "compliance.re_review": "A deployed version is due for a compliance re-review",
    "exemption.requested": "Someone asks the approval board for an exemption",
    "exemption.decided": "The approval board decided an exemption you asked for",
    "exemption.expiring": "An exemption of your plugin expires soon",
    "exemption.expired": "An exemption of your plugin expired or was revoked: what it covered counts again",
    "version.changes_requested": "A reviewer asks for changes to your version, with the reasons",
    "version.awaiting_decision": "A version passed its stages and awaits the board's decision",
    "version.approved": "A version you submitted or reviewed was approved",
    "version.rejected": "A version you submitted or reviewed was rejected",
    "version.rolled_back": "A version you submitted or reviewed was rolled back",
    "version.revoked": "A version you submitted or reviewed had its approval revoked",
    "check.errored": "An automated check of a review you hold (or your group holds) errored",
    "retro_hunt.flagged": "An approved version now violates a blocking policy (found after approval)",
    "retro_hunt.revocation_proposed": "A policy proposes revoking an approved version it now finds",
    "retro_hunt.overdue": "A violation found after approval is past its due date",
    "tuf.publication_failed": "The TUF repository could not be updated after a revocation or roll back",
    "tuf.root_expiring": "The TUF root expires within 30 days: renew it",
}
CLAIM = timedelta(minutes=5)
MAX_BACKOFF = timedelta(hours=6)
BATCH = 100


def notify(*, recipients, event: str, subject: str, body: str = "", url: str = "") -> list[Notification]:
    """Queue one notification per recipient (deduplicated), honouring their preferences."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("notify() must run inside the transaction of the event it tells about.")
    people = {user.pk: user for user in recipients if user is not None and user.is_active}
    prefs = {p.user_id: p for p in NotificationPreference.objects.filter(user_id__in=people, event=event)}
    now = timezone.now()
    rows = []
    for user_id, user in people.items():
        pref = prefs.get(user_id)
        in_admin, email = (pref.in_admin, pref.email) if pref else (True, True)
        if not (in_admin or email):
            continue
        if email and not user.email:
            in_admin = True  # nowhere to mail it: show it in the admin rather than drop it
        rows.append(
            Notification(
                recipient=user,
                event=event,
                subject=subject[:200],
                body=body,
                url=url,
                email=email and bool(user.email),
                sent_at=None if email and user.email else now,
                read_at=None if in_admin else now,
                next_attempt_at=now,
            )
        )
    return Notification.objects.bulk_create(rows)


def notify_platform_admins(*, event: str, subject: str, body: str = "", url: str = "") -> None:
    admins = get_user_model().objects.filter(groups__name=roles.PLATFORM_ADMINS, is_active=True)
    notify(recipients=list(admins), event=event, subject=subject, body=body, url=url)


def unread_for(*, user) -> QuerySet[Notification]:
    """What ``user`` has not read yet in the admin, newest first."""
    if user is None or not user.is_authenticated:
        return Notification.objects.none()
    return notifications_of(user=user).filter(read_at__isnull=True).order_by("-created_at", "-pk")


def notification_read(*, notification: Notification, user) -> Notification:
    """``user`` opened their notification; another's is refused (as if it did not exist)."""
    if notification.recipient_id != user.pk:
        raise PermissionRefused("This notification is someone else's.")
    if notification.read_at is None:  # no history on the outbox: a conditional update is the write
        Notification.objects.filter(pk=notification.pk, read_at__isnull=True).update(read_at=timezone.now())
        notification.refresh_from_db(fields=["read_at"])
    return notification


def unclaimed(now) -> Q:
    """Rows nobody is working on: never claimed, or the claim expired (its worker died)."""
    return Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)


def notifications_send() -> int:
    """Send what is due; return how many went out."""
    sent = 0
    due = Notification.objects.filter(
        unclaimed(timezone.now()), sent_at__isnull=True, next_attempt_at__lte=timezone.now()
    )
    for notification_id in list(due.order_by("next_attempt_at").values_list("pk", flat=True)[:BATCH]):
        sent += _send_one(notification_id)
    return sent


def _send_one(notification_id: int) -> int:
    now = timezone.now()
    token = now + CLAIM  # the claim's expiry doubles as its token: only its holder may finish the row
    claimed = Notification.objects.filter(unclaimed(now), pk=notification_id, sent_at__isnull=True).update(
        claimed_until=token
    )
    if not claimed:
        return 0  # another sender has it, or it went out meanwhile
    notification = Notification.objects.select_related("recipient").get(pk=notification_id)
    try:
        send_mail(
            notification.subject,
            _text(notification),
            settings.DEFAULT_FROM_EMAIL,
            [notification.recipient.email],
            fail_silently=False,
        )
    except Exception as exc:  # the backend failed: keep the row, try again later
        attempts = notification.attempts + 1
        backoff = min(timedelta(minutes=2**attempts), MAX_BACKOFF)
        Notification.objects.filter(pk=notification_id, claimed_until=token).update(
            attempts=attempts, next_attempt_at=now + backoff, claimed_until=None, last_error=str(exc)[:2000]
        )
        logger.warning("Notification %s not sent (attempt %s): %s", notification_id, attempts, exc)
        return 0
    Notification.objects.filter(pk=notification_id, claimed_until=token).update(
        sent_at=timezone.now(), claimed_until=None, attempts=notification.attempts + 1
    )
    return 1


def _text(notification: Notification) -> str:
    link = f"\n\n{settings.WARDEN_BASE_URL}{notification.url}" if notification.url else ""
    return f"{notification.body}{link}\n"

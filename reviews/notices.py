"""Who is told about a version's lifecycle events that ask someone to act.

One place decides the recipients (docs/workflow.md, "Notifications", has the table). Each
function runs inside the transaction of the transition it tells about, called in one line by
the service that makes it, and writes through the outbox (``governance.notifications.notify``),
which honours each person's preferences. Nobody is told about their own action.
"""

from django.contrib.auth import get_user_model
from django.urls import reverse

from governance import roles
from governance.notifications import notify, notify_platform_admins
from submissions.models import PluginVersion

from .models import CheckRun, StageReview

DECIDED = {
    "approved": "version.approved",
    "rejected": "version.rejected",
    "rolled_back": "version.rolled_back",
    "revoked": "version.revoked",
}


def notify_changes_requested(*, version: PluginVersion, reason: str, actor) -> None:
    """The authors must answer: a new artifact or new answers, then resubmit."""
    tell(
        authors_of(version),
        actor=actor,
        event="version.changes_requested",
        subject=f"Changes requested on {version}",
        body=f"{actor} asks for changes:\n\n{reason}\n\nResubmit the version when they are made.",
        version=version,
    )


def notify_awaiting_decision(*, version: PluginVersion) -> None:
    """The board must decide. Members of the submitting organisation may not, so they are left out."""
    authors = {user.pk for user in authors_of(version)}
    tell(
        [user for user in board_members() if user.pk not in authors],
        actor=None,
        event="version.awaiting_decision",
        subject=f"{version} awaits the board's decision",
        body="Every blocking stage has passed. Approve or reject it from its page.",
        version=version,
    )


def notify_decided(*, version: PluginVersion, action: str, reason: str, actor) -> None:
    """``action`` is approved or rejected: the authors and every reviewer who worked the version
    (any round) are told, with the reason. The rollback and revocation notice is
    decisions/deployment.py's, through ``tell``."""
    event = DECIDED[action]
    said = action.replace("_", " ")
    by = f" by {actor}" if actor is not None else ""
    tell(
        [*authors_of(version), *reviewers_of(version)],
        actor=actor,
        event=event,
        subject=f"{version} was {said}",
        body=f"{version} was {said}{by}.\n\n{reason}".rstrip(),
        version=version,
    )


def notify_check_errored(*, run: CheckRun) -> None:
    """The stage's reviewers may re-run it: its assignee, or while nobody holds the review, the
    members of the stage's group. A check of a closed review tells nobody (nothing to do); one
    that belongs to no stage (an advisory re-match) tells the platform admins."""
    run = CheckRun.objects.select_related("version__plugin", "stage_review__stage__owner_group").get(pk=run.pk)
    review, version = run.stage_review, run.version
    subject = f"Check {run.check_key} errored on {version}"
    url = _url(version)
    if review is None:
        body = f"{run.error}\n\nIt belongs to no stage review: see the worker's log."
        notify_platform_admins(event="check.errored", subject=subject, body=body, url=url)
        return
    body = f"{run.error}\n\nRe-run it from the {review.stage.name} review once the cause is fixed."
    if not review.is_open:
        return
    if review.assignee_id:
        people = [review.assignee]
    else:
        people = list(get_user_model().objects.filter(groups=review.stage.owner_group, is_active=True))
    notify(recipients=people, event="check.errored", subject=subject, body=body, url=url)


# -- recipients ------------------------------------------------------------------------


def authors_of(version: PluginVersion) -> list:
    """The active members of the version's organisation."""
    return list(get_user_model().objects.filter(groups__organisation__plugins=version.plugin_id, is_active=True))


def reviewers_of(version: PluginVersion) -> list:
    """Everyone who held or decided a stage review of the version, in any round."""
    worked = StageReview.objects.filter(version=version)
    ids = {pk for pair in worked.values_list("assignee_id", "decided_by_id") for pk in pair if pk is not None}
    return list(get_user_model().objects.filter(pk__in=ids, is_active=True))


def board_members() -> list:
    return list(get_user_model().objects.filter(groups__name=roles.APPROVAL_BOARD, is_active=True))


def tell(people, *, actor, event: str, subject: str, body: str, version: PluginVersion) -> None:
    """Notify ``people`` (each once, never the actor) about ``version``, linking to its page."""
    actor_id = actor.pk if actor is not None else None
    notify(
        recipients=[user for user in {u.pk: u for u in people}.values() if user.pk != actor_id],
        event=event,
        subject=subject,
        body=body,
        url=_url(version),
    )


def _url(version: PluginVersion) -> str:
    return reverse("admin:submissions_pluginversion_change", args=[version.pk])

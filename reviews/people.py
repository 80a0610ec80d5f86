"""Writes on reviewers' qualifications and training records (platform admins, in the admin).

Neither is ever deleted: assignments and sign-offs were checked against the qualifications a
reviewer held at the time, and qualifications rest on training records. A qualification is
withdrawn by giving it an expiry date; a mistaken record is corrected, both with audit rows.
"""

from datetime import date

from django.contrib.auth.models import User
from django.db import transaction

from governance.errors import ValidationFailed
from governance.permissions import require_perm
from governance.transitions import save_with_audit

from .models import ReviewerQualification, TrainingRecord


def qualification_check(
    *, reviewer: User | None, training: TrainingRecord | None, earned_on: date | None, expires_on: date | None
) -> None:
    """Raise ValidationFailed if the qualification would not make sense (the admin form asks first)."""
    if training is not None and reviewer is not None and training.user_id != reviewer.pk:
        raise _invalid("training", f"{training} is another reviewer's training.")
    _check_dates(earned_on, expires_on, done="earned")


def qualification_save(
    *, qualification: ReviewerQualification, actor: User, changed: list[str]
) -> ReviewerQualification:
    """Grant a qualification (the actor is who grants it) or change one, e.g. give it an expiry date."""
    adding = qualification._state.adding
    require_perm(
        actor,
        "reviews.add_reviewerqualification" if adding else "reviews.change_reviewerqualification",
        detail=f"{actor} may not grant or change reviewer qualifications.",
    )
    qualification_check(
        reviewer=qualification.reviewer,
        training=qualification.training,
        earned_on=qualification.earned_on,
        expires_on=qualification.expires_on,
    )
    if adding:
        qualification.granted_by = actor
    with transaction.atomic():
        save_with_audit(
            qualification,
            actor=actor,
            action="qualification.grant" if adding else "qualification.change",
            data={
                "reviewer": qualification.reviewer.get_username(),
                "stage_kind": qualification.stage_kind,
                "expires_on": qualification.expires_on,
                "changed": sorted(changed),
            },
        )
    return qualification


def training_record_check(
    *, record_pk: int | None, user: User | None, completed_on: date | None, expires_on: date | None
) -> None:
    """Raise ValidationFailed if the record would not make sense (the admin form asks first)."""
    _check_dates(completed_on, expires_on, done="completed")
    if record_pk is not None and user is not None:
        resting = ReviewerQualification.objects.filter(training_id=record_pk).exclude(reviewer_id=user.pk)
        if resting.exists():
            raise _invalid("user", "Another reviewer's qualifications rest on this training; it stays theirs.")


def training_record_save(*, record: TrainingRecord, actor: User, changed: list[str]) -> TrainingRecord:
    adding = record._state.adding
    require_perm(
        actor,
        "reviews.add_trainingrecord" if adding else "reviews.change_trainingrecord",
        detail=f"{actor} may not record training.",
    )
    training_record_check(
        record_pk=record.pk, user=record.user, completed_on=record.completed_on, expires_on=record.expires_on
    )
    with transaction.atomic():
        save_with_audit(
            record,
            actor=actor,
            action="training.record" if adding else "training.change",
            data={"user": record.user.get_username(), "course": record.course, "changed": sorted(changed)},
        )
    return record


def _check_dates(begins: date | None, expires: date | None, *, done: str) -> None:
    if begins is not None and expires is not None and expires < begins:
        raise _invalid("expires_on", f"It cannot expire before it was {done}.")


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, code="invalid", errors=[{"field": field, "code": "invalid", "message": message}])

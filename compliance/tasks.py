"""django-q2 tasks of compliance: thin wrappers the schedules call."""

from .rereviews import re_reviews_open_due


def open_re_reviews() -> int:
    return re_reviews_open_due()

"""A database too busy to answer now (a lock held by a long write, a deadlock, a serialization
failure): the request may simply be sent again, so it is a 503 with ``Retry-After``, never a
500 (governance/api.py for the API, ``ContentionMiddleware`` for the pages)."""

from django.db import OperationalError

RETRY_AFTER_SECONDS = 2
DETAIL = "The database is busy with other work: send the request again in a moment."
# PostgreSQL: serialization_failure, deadlock_detected, lock_not_available, query_canceled
# (statement or lock timeout). SQLite says it in words.
CONTENDED_SQLSTATES = {"40001", "40P01", "55P03", "57014"}
SQLITE_BUSY = ("database is locked", "database table is locked")


def busy_body() -> dict:
    """The API's error for it."""
    return {"code": "busy", "detail": DETAIL, "errors": []}


def is_contention(exc: BaseException) -> bool:
    if not isinstance(exc, OperationalError):
        return False
    cause = exc.__cause__
    if getattr(cause, "sqlstate", None) in CONTENDED_SQLSTATES:
        return True
    return any(words in str(exc) for words in SQLITE_BUSY)

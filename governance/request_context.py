"""The id of the request (or task) on whose behalf code runs, for the audit log."""

import contextvars
import uuid

_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("warden_request_id", default="")


def current_request_id() -> str:
    return _request_id.get()


def bind_request_id(value: str | None = None) -> contextvars.Token[str]:
    return _request_id.set(value or uuid.uuid4().hex)


def unbind_request_id(token: contextvars.Token[str]) -> None:
    _request_id.reset(token)

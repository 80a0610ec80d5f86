"""On whose behalf code runs, for the audit log: the id of the request (or task) and, for a
request made with an integration token, that token."""

import contextvars
import uuid
from dataclasses import dataclass


@dataclass
class RequestContext:
    request_id: str
    token: str = ""  # "<prefix> (<name>)" of the integration token the request authenticated with


_context: contextvars.ContextVar[RequestContext | None] = contextvars.ContextVar("warden_request", default=None)


def current_request_id() -> str:
    context = _context.get()
    return context.request_id if context else ""


def current_token_label() -> str:
    context = _context.get()
    return context.token if context else ""


def bind_request_id(value: str | None = None) -> contextvars.Token:
    return _context.set(RequestContext(request_id=value or uuid.uuid4().hex))


def bind_token_label(label: str) -> None:
    """Name the token in this request's context (RequestIdMiddleware opens it and closes it
    with the request, so the label never outlives it)."""
    context = _context.get()
    if context is not None:
        context.token = label


def unbind_request_id(token: contextvars.Token) -> None:
    _context.reset(token)

"""Errors that services raise; the admin and the API turn them into messages and JSON."""

from .text import encodable, encodable_errors


class WardenError(Exception):
    """A refused request: nothing was changed. ``code`` is stable for API clients."""

    code = "error"
    status = 400

    def __init__(self, detail: str, *, code: str | None = None, errors: list[dict] | None = None):
        detail = encodable(detail)  # a refusal may name what the outside sent: it must encode
        super().__init__(detail)
        self.detail = detail
        if code:
            self.code = code
        self.errors = encodable_errors(errors or [])

    def as_dict(self) -> dict:
        return {"code": self.code, "detail": self.detail, "errors": self.errors}


class PermissionRefused(WardenError):
    code = "permission_denied"
    status = 403


class NotFound(WardenError):
    code = "not_found"
    status = 404


class TransitionRefused(WardenError):
    """The object is not in a state that allows the action (often: someone else acted first)."""

    code = "invalid_transition"
    status = 409


class ValidationFailed(WardenError):
    code = "invalid"
    status = 400


class PolicyBlocked(WardenError):
    """An enforce-mode policy is violated and no exemption covers it."""

    code = "policy_violation"
    status = 409


class FactsChanged(WardenError):
    """A decision named a rating and policy evaluation that no longer describe the version:
    the decision was refused, and the new rating and evaluation were recorded for the board
    to see (the one write a refusal makes, so the next attempt can name them)."""

    code = "facts_changed"
    status = 409

    def __init__(self, detail: str, *, shown_rating_id: int, rating_id: int, evaluation_id: int):
        super().__init__(
            detail,
            errors=[
                {"field": "rating", "code": "facts_changed", "message": f"Now rating #{rating_id}."},
                {"field": "evaluation", "code": "facts_changed", "message": f"Now evaluation #{evaluation_id}."},
            ],
        )
        self.shown_rating_id, self.rating_id, self.evaluation_id = shown_rating_id, rating_id, evaluation_id

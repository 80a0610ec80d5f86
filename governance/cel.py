"""The CEL environment: one compiler for policies (decisions/policies.py) and the automatic
evaluation of compliance controls (compliance/services.py)."""

from functools import cache

import celpy

from .errors import ValidationFailed


@cache
def _environment() -> celpy.Environment:
    return celpy.Environment()


def compile_expression(expression: str):
    """A runnable CEL program, or ValidationFailed with the compiler's message."""
    try:
        return _environment().program(_environment().compile(expression))
    except Exception as exc:  # celpy raises its own parse and type errors
        raise ValidationFailed(f"CEL: {exc}", code="invalid_expression") from None

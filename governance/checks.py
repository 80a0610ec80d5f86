"""The registry of automated checks: which check keys exist, so a stage can be validated
against them here, at the base. The checks themselves (reviews/checks/) register into it."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class CheckSpec:
    key: str
    title: str
    tool: str
    run: Callable[[Any], Any]  # CheckContext -> CheckOutcome (reviews/checks/__init__.py)


REGISTRY: dict[str, CheckSpec] = {}


def register(key: str, *, title: str, tool: str = "warden"):
    """Decorator: make ``run`` available to stages under ``key``."""

    def decorate(run: Callable[[Any], Any]) -> Callable[[Any], Any]:
        if key in REGISTRY:
            raise ValueError(f"Check {key!r} is registered twice.")
        REGISTRY[key] = CheckSpec(key=key, title=title, tool=tool, run=run)
        return run

    return decorate

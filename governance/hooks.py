"""Hooks: how a lower layer lets an upper one react without importing it.

The layers import downwards only (docs/architecture.md). Where a lower layer reaches a point
an upper one must act on (a version awaits its decision, a stage starts, an author answers
threads, a version is withdrawn), it calls ``fire(name, ...)`` here; the upper app connects
its receiver in its ``AppConfig.ready()``. Receivers run in the caller's transaction and in
the order they were connected; an exception from one refuses the whole change.
"""

from collections.abc import Callable
from typing import Any

VERSION_AWAITING_DECISION = "version_awaiting_decision"  # (version): rate and evaluate for the board
STAGE_STARTED = "stage_started"  # (review): a stage review has just started
VERSION_ANSWERED = "version_answered"  # (version, actor, replies): an author's answers to open threads
VERSION_WITHDRAWN = "version_withdrawn"  # (version): the author withdrew it; the round ends
VERSIONS_VISIBLE = "versions_visible"  # (user) -> version ids the user may also see
POLICY_KEYS = "policy_keys"  # () -> the keys of the current policies (canned responses name them)
CHECK_FINISHED = "check_finished"  # (run): a check run finished (succeeded, failed or errored)

NAMES = frozenset(
    {
        VERSION_AWAITING_DECISION,
        STAGE_STARTED,
        VERSION_ANSWERED,
        VERSION_WITHDRAWN,
        VERSIONS_VISIBLE,
        POLICY_KEYS,
        CHECK_FINISHED,
    }
)

_receivers: dict[str, list[Callable[..., Any]]] = {name: [] for name in NAMES}


def connect(name: str, receiver: Callable[..., Any]) -> None:
    """Call ``receiver(**kwargs)`` whenever ``name`` fires. Connecting twice is a no-op."""
    if name not in NAMES:
        raise ValueError(f"Unknown hook {name!r}.")
    if receiver not in _receivers[name]:
        _receivers[name].append(receiver)


def fire(name: str, **kwargs: Any) -> list[Any]:
    """Run every receiver of ``name`` and return their results, in connection order."""
    return [receiver(**kwargs) for receiver in _receivers[name]]

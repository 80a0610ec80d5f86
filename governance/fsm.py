"""The state machines' model mixin: django-fsm-2's, with a refresh that threads can share.

django-fsm-2 lets ``refresh_from_db`` write a protected state field by switching the field's
protection off for the class, for every instance in the process, and on again afterwards. Two
threads refreshing at once (a threaded web worker answering two ``?wait=true`` polls) interleave
those switches: one turns the protection back on while the other is still writing, which then
fails with "Direct status modification is not allowed". Refreshes take one lock here (re-entrant:
loading a deferred field refreshes again inside a refresh), so the switches never interleave.
"""

import threading
from typing import Any

from django_fsm import FSMModelMixin

_REFRESHING = threading.RLock()


class StateMachineMixin(FSMModelMixin):
    """Use in place of ``django_fsm.FSMModelMixin`` on every model with a protected FSMField."""

    def refresh_from_db(self, *args: Any, **kwargs: Any) -> None:
        with _REFRESHING:
            super().refresh_from_db(*args, **kwargs)

"""Admin forms that ask a service's check before the save, so what the service would refuse
is a form error on the page instead of a failed request."""

from collections.abc import Iterator
from contextlib import contextmanager

from django import forms

from governance.errors import WardenError


@contextmanager
def refusal_as_form_error() -> Iterator[None]:
    try:
        yield
    except WardenError as exc:
        raise forms.ValidationError(exc.detail) from None

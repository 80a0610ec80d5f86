"""List filters shared by the API's viewsets (django-filter)."""

from datetime import UTC

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django_filters.fields import IsoDateTimeField

from .ids import MAX_ID


class IdFilter(django_filters.NumberFilter):
    """``?version=3``: a whole number within a primary key's range, else a 400 naming the field
    (a NumberFilter takes ``1.5`` and passes ``10**20`` on to the database: a 500 on SQLite)."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        super().__init__(*args, min_value=1, max_value=MAX_ID, **kwargs)


class UtcIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 time, in UTC: PostgreSQL refuses an offset beyond 15:59 (``+20:00`` is valid
    ISO 8601), and a time near year 1 or 9999 may not exist in UTC (a 500 either way)."""

    def to_python(self, value):
        moment = super().to_python(value)
        if moment is None:
            return None
        try:
            return moment.astimezone(UTC)
        except OverflowError:
            raise ValidationError("A time from year 1 to 9999 in UTC.", code="invalid") from None


class UtcDateTimeFilter(django_filters.IsoDateTimeFilter):
    """``?created_after=2026-01-01T00:00:00+02:00``, compared in UTC."""

    field_class = UtcIsoDateTimeField

"""The API's read-only viewsets, in a module of their own: governance/api.py holds what DRF's
settings name (parser, pagination, exception handler), and importing DRF's views from there
would import DRF's settings while they are being read."""

from django.db.models import Model, QuerySet
from rest_framework import viewsets


class VisibleViewSet(viewsets.ReadOnlyModelViewSet):
    """A list and a detail of what ``visible(user)`` returns (a selector: what the caller may
    see, so anything else is a 404); schema generation, which has no user, sees none."""

    model: type[Model]
    lookup_value_converter = "id"  # governance.ids.IdConverter: an id out of range is a 404

    def visible(self, user) -> QuerySet:
        raise NotImplementedError

    def get_queryset(self) -> QuerySet:
        if getattr(self, "swagger_fake_view", False):
            return self.model._default_manager.none()
        return self.visible(self.request.user)

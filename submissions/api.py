"""Plugins over REST: ``GET /api/v1/plugins/`` and ``GET /api/v1/plugins/{id}/``, so that a CI
job finds the id it uploads to (``?name=acme-exporter``) and a dashboard lists what it may
see. Versions are created under ``/api/v1/plugins/{id}/versions/`` (decisions/version_api.py)."""

import django_filters
from django.db.models import QuerySet
from rest_framework import serializers

from governance.viewsets import VisibleViewSet

from .models import Plugin
from .selectors import plugins_visible_to


class PluginFilter(django_filters.FilterSet):
    """``?name=acme-exporter&organisation=acme&category=data-connector``."""

    name = django_filters.CharFilter()
    organisation = django_filters.CharFilter(field_name="organisation__slug")
    category = django_filters.CharFilter()

    class Meta:
        model = Plugin
        fields: list[str] = []


class PluginOut(serializers.ModelSerializer):
    organisation = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = Plugin
        fields = ["id", "name", "organisation", "category", "description", "created_at"]


class PluginViewSet(VisibleViewSet):
    """The plugins the caller may see (a token bound to an organisation: that organisation's)."""

    model = Plugin
    serializer_class = PluginOut
    filterset_class = PluginFilter
    token_scopes = {"GET": ("read", "submit", "report")}

    def visible(self, user) -> QuerySet[Plugin]:
        return plugins_visible_to(user=user).select_related("organisation")

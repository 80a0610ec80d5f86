"""The decision panel, for the shared change form (admin/warden/change_form.html)."""

from typing import cast

from django import template
from django.db.models import Model
from django.template import Context
from django.utils.safestring import mark_safe

from decisions.decision_admin import decision_form_element as form_element
from decisions.decision_admin import decision_panel
from reviews.models import StageReview
from submissions.models import PluginVersion

register = template.Library()


def _decided_version(obj: Model) -> PluginVersion | None:
    """The version a page decides: a version's own page, or its decision-stage review."""
    model = getattr(getattr(obj, "_meta", None), "model_name", "")
    if model == "stagereview" and cast(StageReview, obj).stage.kind == "decision":
        return cast(StageReview, obj).version
    return cast(PluginVersion, obj) if model == "pluginversion" else None


@register.simple_tag(takes_context=True)
def decision_rating_panel(context: Context, obj: Model) -> str:
    """The rating the board is shown (bar chart and summary), the policy results, and the
    approve / reject fields for who may decide."""
    version = _decided_version(obj)
    if version is None:
        return ""
    return mark_safe(decision_panel(version=version, request=context["request"]))  # noqa: S308 - autoescaped template


@register.simple_tag(takes_context=True)
def decision_form_element(context: Context, obj: Model) -> str:
    """The form those fields post with; rendered after the change form, as forms cannot nest."""
    version = _decided_version(obj)
    if version is None:
        return ""
    return mark_safe(form_element(version=version, request=context["request"]))  # noqa: S308 - autoescaped template

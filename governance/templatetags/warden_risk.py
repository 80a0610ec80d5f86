"""The decision stage's rating panel, for the shared change form (admin/warden/change_form.html)."""

from django import template
from django.utils.safestring import mark_safe

register = template.Library()


@register.simple_tag
def decision_rating_panel(review):
    """On a decision-stage review: the version's rating (bar chart and summary) and its policy
    results; on any other page, nothing."""
    if getattr(getattr(review, "stage", None), "kind", "") != "decision":
        return ""
    from governance.risk.admin import rating_panel

    return mark_safe(rating_panel(review.version))  # noqa: S308 - rendered by a template with autoescape on

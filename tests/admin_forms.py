"""Posting an admin page's forms back as a browser would."""

from django import forms


def browser_post(response, **changes) -> dict:
    """What a browser posts from the page ``response`` rendered (its change form, inline
    formsets and changelist formset, as shown), with ``changes``; a change of None leaves
    the field out (an unticked box)."""
    context = response.context
    shown: list[forms.BaseForm] = [context["adminform"].form] if context.get("adminform") else []
    for inline in context.get("inline_admin_formsets") or []:
        shown += [inline.formset.management_form, *inline.formset.forms]
    changelist = context.get("cl")
    if changelist is not None and changelist.formset is not None:
        shown += [changelist.formset.management_form, *changelist.formset.forms]
    data: dict = {}
    for form in shown:
        for field in form:
            value = field.value()
            if isinstance(field.field, forms.BooleanField):
                value = "on" if value else None
            if value is not None:
                data[field.html_name] = value
                if field.field.show_hidden_initial:
                    data[field.html_initial_name] = value
    data.update(changes)
    return {name: value for name, value in data.items() if value is not None}

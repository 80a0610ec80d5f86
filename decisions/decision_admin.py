"""The board's decision in the admin: the rating and policies it is shown, and the form that
approves or rejects exactly those (by id), on the page that shows them.

The panel is on the version's page and on its decision-stage review. When the facts changed
since the rating was computed, the approval is refused, the new rating is stored, and the page
comes back with the two ratings and what changed side by side.
"""

from decimal import Decimal
from typing import cast

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.loader import render_to_string
from django.urls import reverse

from governance.admin_actions import per_request, safe_next
from governance.errors import FactsChanged, WardenError
from governance.ids import is_id
from submissions.models import PluginVersion

from .approval import version_approve, version_reject
from .models import PolicyEvaluation, RiskRating
from .services import DecisionBasis, decision_basis

DECIDE = "submissions.decide_pluginversion"
MAX_CHANGED_FACTS = 40


class DecisionForm(forms.Form):
    decision = forms.ChoiceField(choices=[("approve", "Approve"), ("reject", "Reject")])
    rating_id = forms.IntegerField(widget=forms.HiddenInput)
    evaluation_id = forms.IntegerField(widget=forms.HiddenInput)
    reason = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3, "cols": 60}))
    next = forms.CharField(required=False, widget=forms.HiddenInput)


def can_decide(*, version: PluginVersion, user: User, basis: DecisionBasis) -> bool:
    return version.status == "awaiting_decision" and user.has_perm(DECIDE) and basis.rating is not None


def decision_panel(*, version: PluginVersion, request: HttpRequest) -> str:
    """The rating with its breakdown and summary, the policy results, the decide form's fields
    for who may decide now, and (after a refused approval) the comparison with what was shown."""
    basis = shown_basis_of(version=version, request=request)
    context = {
        "rating": basis.rating,
        "bars": rating_bars(basis.rating) if basis.rating else [],
        "evaluation": basis.evaluation,
        # cast: the admin (AdminSite.admin_view) serves only signed-in staff, so request.user is a User
        "can_decide": can_decide(version=version, user=cast(User, request.user), basis=basis),
        "next": request.get_full_path(),
        "comparison": _comparison(version, request.GET.get("compare", ""), basis),
    }
    return render_to_string("admin/warden/risk_rating.html", context, request=request)


def decision_form_element(*, version: PluginVersion, request: HttpRequest) -> str:
    """The (empty) form the decision panel's fields post with, outside the admin's change form."""
    user = cast(User, request.user)
    if not can_decide(version=version, user=user, basis=shown_basis_of(version=version, request=request)):
        return ""
    return render_to_string(
        "admin/warden/decision_form.html",
        {"decide_url": reverse("admin:submissions_pluginversion_decide", args=[version.pk])},
        request=request,
    )


def shown_basis_of(*, version: PluginVersion, request: HttpRequest) -> DecisionBasis:
    """The page's panel and its form element read the same basis: one query per page."""
    return per_request(request, f"decision-basis:{version.pk}", lambda: decision_basis(version=version))


def rating_bars(rating: RiskRating) -> list[dict]:
    rows = [r for r in rating.breakdown if Decimal(r["contribution"]) != 0]
    rows.sort(key=lambda r: (-abs(Decimal(r["contribution"])), r["factor"]))
    return [
        {
            **row,
            "credit": Decimal(row["contribution"]) < 0,
            "width": min(abs(Decimal(row["contribution"])), Decimal(100)),
            "inputs_text": ", ".join(f"{k}: {v}" for k, v in sorted(row["inputs"].items())),
        }
        for row in rows
    ]


def _comparison(version: PluginVersion, compare: str, basis: DecisionBasis) -> dict | None:
    """``?compare=<rating id>.<evaluation id>``: what the board was shown, beside what holds now."""
    shown_rating_id, _, shown_evaluation_id = compare.partition(".")
    if not (is_id(shown_rating_id) and is_id(shown_evaluation_id)) or basis.rating is None:
        return None
    shown = RiskRating.objects.filter(pk=shown_rating_id, version=version).first()
    shown_evaluation = PolicyEvaluation.objects.filter(pk=shown_evaluation_id, version=version).first()
    if shown is None or shown_evaluation is None or basis.evaluation is None:
        return None
    now = basis.rating
    before = {r["factor"]: r for r in shown.breakdown}
    factors = [
        {
            "label": r["label"],
            "before": before.get(r["factor"], {}).get("contribution", "0"),
            "after": r["contribution"],
        }
        for r in now.breakdown
        if before.get(r["factor"], {}).get("contribution", "0") != r["contribution"]
    ]
    outcomes_before = {r["key"]: r["outcome"] for r in shown_evaluation.results}
    policies = [
        {"key": r["key"], "before": outcomes_before.get(r["key"], "—"), "after": r["outcome"]}
        for r in basis.evaluation.results
        if outcomes_before.get(r["key"]) != r["outcome"]
    ]
    return {
        "shown": shown,
        "now": now,
        "factors": factors,
        "policies": policies,
        "facts": changed_facts(shown.facts, now.facts)[:MAX_CHANGED_FACTS],
    }


def changed_facts(before: object, after: object, prefix: str = "") -> list[dict]:
    """Every leaf of two fact documents whose value differs, by dotted path."""
    if isinstance(before, dict) and isinstance(after, dict):
        rows = []
        for key in sorted(set(before) | set(after), key=str):
            path = f"{prefix}.{key}" if prefix else str(key)
            rows += changed_facts(before.get(key), after.get(key), path)
        return rows
    return [] if before == after else [{"path": prefix, "before": before, "after": after}]


def decide_view(modeladmin: "admin.ModelAdmin[PluginVersion]", request: HttpRequest, object_id: str) -> HttpResponse:
    """POST only: approve or reject the version with the rating and evaluation the form names."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    version = modeladmin.get_object(request, object_id)
    if version is None:
        raise PermissionDenied
    form = DecisionForm(request.POST)
    back = safe_next(request, reverse("admin:submissions_pluginversion_change", args=[version.pk]))
    if not form.is_valid():
        modeladmin.message_user(request, "The decision form was incomplete; nothing was done.", messages.ERROR)
        return HttpResponseRedirect(back)
    data = form.cleaned_data
    ids = {"rating_id": data["rating_id"], "evaluation_id": data["evaluation_id"]}
    try:
        if data["decision"] == "approve":
            version_approve(version=version, actor=cast(User, request.user), reason=data["reason"], **ids)
        else:
            version_reject(version=version, actor=cast(User, request.user), reason=data["reason"], **ids)
    except FactsChanged as exc:
        modeladmin.message_user(request, exc.detail, messages.ERROR)
        return HttpResponseRedirect(f"{back.split('?')[0]}?compare={exc.shown_rating_id}.{data['evaluation_id']}")
    except WardenError as exc:
        modeladmin.message_user(
            request, f"{data['decision'].title()} refused for {version}: {exc.detail}", messages.ERROR
        )
        return HttpResponseRedirect(back)
    verb = "approved" if data["decision"] == "approve" else "rejected"
    modeladmin.message_user(request, f"{version} was {verb}.", messages.SUCCESS)
    return HttpResponseRedirect(back.split("?")[0])

"""The dossier page and the forms it posts. Each form calls the service that owns the change
and comes back to the section it was posted from; a refusal is shown there and changes nothing."""

from collections.abc import Callable
from datetime import date
from typing import Any, cast

from django.contrib import admin, messages
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.dateparse import parse_date

from compliance.evidence import compliance_decide
from compliance.models import ControlAssessment, Evidence
from governance.errors import ValidationFailed, WardenError
from governance.ids import is_id
from governance.models import StageKind
from governance.permissions import is_org_member
from reviews.collaboration import annotation_add, annotation_resolve, annotations_visible_to
from reviews.models import CannedResponse, Finding, StageReview
from reviews.responses import response_evidence_by_review, responses_for
from reviews.selectors import current_runs
from reviews.services import finding_triage
from submissions.models import PluginVersion

from ..decision_admin import decision_form_element, decision_panel
from ..gate import gate_verdict
from . import sections


def dossier_url(version: PluginVersion | int) -> str:
    return reverse("admin:submissions_pluginversion_dossier", args=[getattr(version, "pk", version)])


def dossier_view(modeladmin: admin.ModelAdmin, request: HttpRequest, object_id: str) -> HttpResponse:
    version = _version(modeladmin, request, object_id)
    user = cast(User, request.user)  # the admin serves signed-in staff only
    stages = sections.stage_rows(version=version, user=user)
    groups = sections.findings(version=version, user=user)
    review, controls, evidence_in_review = sections.controls(version=version, user=user)
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": f"Dossier: {version}",
        "opts": modeladmin.opts,
        "original": version,
        "version": version,
        "stages": _stage_actions(modeladmin, stages, user),
        "version_actions": [  # submit, resubmit, withdraw, deploy...: each asks on its own page
            {"label": a.label, "url": reverse("admin:submissions_pluginversion_act", args=[version.pk, a.name])}
            for a in modeladmin.service_actions  # type: ignore[attr-defined]
            if a.is_available(version, user)
        ],
        "deployments": sections.deployments(version=version),
        "gate": gate_verdict(version=version),
        "decision_panel": decision_panel(version=version, request=request),
        "decision_form": decision_form_element(version=version, request=request),
        "changes": sections.changes(version=version, user=user, groups=groups),
        "capabilities": sections.capabilities(version=version),
        "code_url": reverse("admin:submissions_pluginversion_code", args=[version.pk]),
        "diff_url": reverse("admin:submissions_pluginversion_diff", args=[version.pk]),
        "finding_groups": groups,
        "triage_url": reverse("admin:submissions_pluginversion_dossier_triage", args=[version.pk]),
        "finding_total": sum(len(g.rows) for g in groups),
        "dependencies": sections.dependencies(groups),
        "performance": sections.performance(version=version),
        "compliance_review": review,
        "controls": controls,
        "evidence_in_review": evidence_in_review,
        "can_assess": review is not None and _may_assess(user, review),
        "threat_model": sections.threat_model(version=version, user=user),
        "threads": sections.threads(version=version, user=user),
        "can_start_thread": not is_org_member(user, version.plugin.organisation),
        "audit": sections.audit_trail(version=version, user=user),
        "triage_choices": sections.TRIAGE_CHOICES,
        "result_choices": sections.RESULT_CHOICES,
        "evidence_choices": sections.EVIDENCE_CHOICES,
        "here": dossier_url(version),
    }
    return TemplateResponse(request, "admin/decisions/dossier.html", context)


def triage_view(modeladmin: admin.ModelAdmin, request: HttpRequest, object_id: str) -> HttpResponse:
    """POST: one finding's triage, with its reason (and plan and due date when planned)."""

    def act(version: PluginVersion, user: User) -> str:
        current = Finding.objects.filter(version=version, check_run__in=[r.pk for r in current_runs(version=version)])
        finding = _one(current, request.POST.get("finding", ""), "finding")  # not one of an earlier revision
        plan_due = _date(request.POST.get("plan_due", ""))
        finding_triage(
            finding=finding,
            actor=user,
            to_state=request.POST.get("to_state", ""),
            reason=request.POST.get("reason", ""),
            plan=request.POST.get("plan", ""),
            plan_due=plan_due,
        )
        return f"Finding {finding.rule_id} at {finding.path or 'the version'}: {finding.get_triage_display().lower()}."

    return _post(modeladmin, request, object_id, "findings", act)


def assess_view(modeladmin: admin.ModelAdmin, request: HttpRequest, object_id: str) -> HttpResponse:
    """POST: every control given a result and every piece of evidence accepted or rejected on
    the page, in one go (all or none)."""

    def act(version: PluginVersion, user: User) -> str:
        assessments = ControlAssessment.objects.filter(stage_review__version=version).select_related("control")
        evidence = Evidence.objects.filter(version=version)
        chosen, judged = [], []
        for key in request.POST:
            value = request.POST.get(key, "")
            if key.startswith("result-") and value:
                assessment = _one(assessments, key.removeprefix("result-"), "control")
                chosen.append((assessment, value, request.POST.get(f"reason-{assessment.pk}", "")))
            elif key.startswith("evidence-") and not key.startswith("evidence-reason-") and value:
                item = _one(evidence, key.removeprefix("evidence-"), "evidence")
                if value not in ("accept", "reject"):
                    raise ValidationFailed(f"{value!r} is neither accept nor reject.", code="invalid_decision")
                judged.append((item, value == "accept", request.POST.get(f"evidence-reason-{item.pk}", "")))
        review = _open_compliance_review(version)
        compliance_decide(review=review, actor=user, assessments=chosen, evidence=judged)
        parts = [f"{len(chosen)} control{pluralize(len(chosen))} assessed"] if chosen else []
        parts += [f"{len(judged)} piece{pluralize(len(judged))} of evidence decided"] if judged else []
        return "; ".join(parts).capitalize() + "."

    return _post(modeladmin, request, object_id, "compliance", act)


def thread_view(modeladmin: admin.ModelAdmin, request: HttpRequest, object_id: str) -> HttpResponse:
    """POST: start a thread (reviewers), reply to one, or resolve one."""

    def act(version: PluginVersion, user: User) -> str:
        visible = annotations_visible_to(user=user, version=version).filter(parent__isnull=True)
        if "resolve" in request.POST:
            annotation_resolve(annotation=_one(visible, request.POST["resolve"], "thread"), actor=user)
            return "Thread resolved."
        body = request.POST.get("body", "")
        if request.POST.get("parent"):
            annotation_add(
                version=version, actor=user, body=body, parent=_one(visible, request.POST["parent"], "thread")
            )
            return "Reply posted."
        finding_id = request.POST.get("finding", "")
        finding = _one(Finding.objects.filter(version=version), finding_id, "finding") if finding_id else None
        annotation_add(
            version=version, actor=user, body=body, finding=finding, to_author=request.POST.get("to_author") == "on"
        )
        return "Thread started."

    return _post(modeladmin, request, object_id, "threads", act)


# -- helpers ---------------------------------------------------------------------------


def _version(modeladmin: admin.ModelAdmin, request: HttpRequest, object_id: str) -> PluginVersion:
    version = modeladmin.get_object(request, object_id)
    if version is None or not modeladmin.has_view_permission(request, version):
        raise Http404("No such version.")
    return cast(PluginVersion, version)


def _post(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    object_id: str,
    anchor: str,
    act: Callable[[PluginVersion, User], str],
) -> HttpResponse:
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    version = _version(modeladmin, request, object_id)
    try:
        done = act(version, cast(User, request.user))
    except WardenError as exc:
        modeladmin.message_user(request, f"Refused: {exc.detail}", messages.ERROR)
    else:
        modeladmin.message_user(request, done, messages.SUCCESS)
    return HttpResponseRedirect(f"{dossier_url(version)}#{anchor}")


def _one(queryset: Any, pk: str, what: str) -> Any:
    found = queryset.filter(pk=pk).first() if is_id(pk) else None
    if found is None:
        raise ValidationFailed(f"No such {what} on this version.", code=f"unknown_{what}")
    return found


def _date(text: str) -> date | None:
    if not text:
        return None
    try:
        parsed = parse_date(text)
    except ValueError:
        parsed = None
    if parsed is None:
        raise ValidationFailed(f"{text!r} is not a date (YYYY-MM-DD).", code="invalid_date")
    return parsed


def _stage_actions(modeladmin: admin.ModelAdmin, stages: list[StageReview], user: User) -> list[dict[str, Any]]:
    """Each stage review with the actions of its own admin page the reader may take now (pass,
    fail, request changes, sign off...), posted to that page's action URL and back here."""
    review_admin = modeladmin.admin_site._registry.get(StageReview)
    if review_admin is None:
        raise PermissionDenied
    used = response_evidence_by_review(version=stages[0].version) if stages else {}
    offered: dict[str, list[CannedResponse]] = {}  # by stage kind: one query per kind on the page
    rows = []
    for review in stages:
        actions = [
            {"action": action, "url": reverse("admin:reviews_stagereview_act", args=[review.pk, action.name])}
            for action in review_admin.service_actions  # type: ignore[attr-defined]
            if action.is_available(review, user)
        ]
        takes_responses = any("responses" in a["action"].posted for a in actions)
        if takes_responses and review.stage.kind not in offered:
            offered[review.stage.kind] = responses_for(review=review)
        rows.append(
            {
                "review": review,
                "actions": actions,
                "needs_reason": any(a["action"].reason != "none" for a in actions),
                "responses": offered.get(review.stage.kind, []) if takes_responses else [],
                "used": used.get(review.pk, []),
            }
        )
    return rows


def _open_compliance_review(version: PluginVersion) -> StageReview:
    review = StageReview.objects.filter(
        version=version, round=version.review_round, stage__kind=StageKind.COMPLIANCE
    ).first()
    if review is None:
        raise ValidationFailed(f"{version} has no compliance review in this round.", code="no_compliance_review")
    return review


def pluralize(n: int) -> str:
    return "" if n == 1 else "s"


def _may_assess(user: User, review: StageReview) -> bool:
    return (
        review.is_open
        and not is_org_member(user, review.version.plugin.organisation)
        and user.has_perm("reviews.review_stagereview", review)
    )


def dossier_urls(modeladmin: admin.ModelAdmin) -> list[URLPattern]:
    def bound(view: Callable[[admin.ModelAdmin, HttpRequest, str], HttpResponse]) -> Callable[..., HttpResponse]:
        return modeladmin.admin_site.admin_view(lambda request, object_id: view(modeladmin, request, object_id))

    return [
        path("<path:object_id>/dossier/", bound(dossier_view), name="submissions_pluginversion_dossier"),
        path("<path:object_id>/dossier/triage/", bound(triage_view), name="submissions_pluginversion_dossier_triage"),
        path("<path:object_id>/dossier/assess/", bound(assess_view), name="submissions_pluginversion_dossier_assess"),
        path("<path:object_id>/dossier/thread/", bound(thread_view), name="submissions_pluginversion_dossier_thread"),
    ]

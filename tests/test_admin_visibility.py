"""No admin page shows an object outside the user's visibility.

Every registered admin is walked (``admin.site._registry``, so a new one is covered without
editing this file) for each role: its add form, the change form of objects the role may see,
its changelist with the list filters rendered, and every autocomplete endpoint of its model's
relations. The world is built with the services; every object carries a marker string of its
organisation, and each role has the markers it must never be shown.
"""

import json
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from django.contrib import admin
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.forms import ModelChoiceField
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from compliance.evidence import assessment_decide, evidence_upload
from compliance.models import Checklist, Control, ControlAssessment
from compliance.services import framework_import
from decisions import approval
from decisions.exemptions import exemption_request
from decisions.selectors import latest_evaluation, latest_rating
from governance.models import AllowedLicence, HostPlatform, Stage
from governance.notifications import notify
from reviews import services as review
from reviews.collaboration import annotation_add
from reviews.reports import report_attach
from reviews.threat_model import threat_model_prefill
from submissions import services as sub
from submissions.samples import plugin_archive
from tests.conftest import open_review, sign_off

pytestmark = pytest.mark.django_db

FRAMEWORK = Path(__file__).resolve().parents[1] / "compliance" / "frameworks" / "default.yaml"
PERFORMANCE_REPORT = Path(__file__).resolve().parent / "fixtures" / "reports" / "performance.json"
CHANGE_PAGES_PER_ADMIN = 2  # the first and the last object the role sees


def org_markers(org: str) -> list[str]:
    """What only those who may see ``org``'s plugins may read (the internal note aside)."""
    return [
        f"{org}-secret-plugin",
        f"{org}-unsubmitted-plugin",
        f"{org}-finding-title",
        f"{org}_secret/leaky_module.py",
        f"{org}-question-for-author",
        f"{org}-internal-note",
        f"{org}-evidence-note",
        f"{org}-exemption-reason",
    ]


def sarif(org: str) -> bytes:
    result = {
        "ruleId": "B105",
        "level": "warning",
        "message": {"text": f"{org}-finding-title"},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": {"uri": f"{org}_secret/leaky_module.py"},
                    "region": {"startLine": 7},
                }
            }
        ],
    }
    return json.dumps(
        {"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "Bandit"}}, "results": [result]}]}
    ).encode()


def build_vendor(org, author, reviewers, capture) -> None:
    """One vendor's plugin: a draft-only plugin no reviewer sees, a version in review with a
    finding, threads, evidence, assessments, an exemption and a threat model, and a second
    version taken to approval (rating, policy evaluation, feedback)."""
    slug = org.slug
    hidden = sub.plugin_create(
        organisation=org, name=f"{slug}-unsubmitted-plugin", category="data-connector", actor=author
    )
    sub.version_create(plugin=hidden, artifact=plugin_archive(hidden.name, "0.1.0"), actor=author)
    plugin = sub.plugin_create(organisation=org, name=f"{slug}-secret-plugin", category="data-connector", actor=author)

    approved = sub.version_create(plugin=plugin, artifact=plugin_archive(plugin.name, "2.0.0"), actor=author)
    with capture(execute=True):
        sub.version_submit(version=approved, actor=author)
    for key in ("security", "performance"):
        review.stage_pass(review=open_review(approved, key), actor=reviewers[key], reason=f"{key}-stage-verdict")
    for assessment in ControlAssessment.objects.filter(stage_review=open_review(approved, "compliance")):
        if assessment.status != "done":
            assessment_decide(assessment=assessment, actor=reviewers["compliance"], result="met", reason="Seen.")
    with capture(execute=True):
        sign_off(approved, reviewers["compliance"])
    with capture(execute=True):
        approved.refresh_from_db()
        approval.version_approve(
            version=approved,
            actor=reviewers["board"],
            rating_id=latest_rating(version=approved).pk,
            evaluation_id=latest_evaluation(version=approved).pk,
        )

    version = sub.version_create(plugin=plugin, artifact=plugin_archive(plugin.name, "1.0.0"), actor=author)
    with capture(execute=True):
        sub.version_submit(version=version, actor=author)
    run = report_attach(version=version, format="sarif", content=sarif(slug), actor=author).run
    report_attach(version=version, format="performance", content=PERFORMANCE_REPORT.read_bytes(), actor=author)
    finding = run.findings.get()
    security = open_review(version, "security")
    review.stage_claim(review=security, actor=reviewers["security"])
    annotation_add(
        version=version,
        actor=reviewers["security"],
        body=f"{slug}-internal-note",
        stage_review=security,
        finding=finding,
    )
    question = annotation_add(
        version=version, actor=reviewers["security"], body=f"{slug}-question-for-author", to_author=True
    )
    annotation_add(version=version, actor=author, body=f"{slug} answers", parent=question)
    compliance = open_review(version, "compliance")
    assessment = ControlAssessment.objects.filter(stage_review=compliance).exclude(status="done").first()
    assessment_decide(assessment=assessment, actor=reviewers["compliance"], result="met", reason="Seen.")
    annotation_add(version=version, actor=reviewers["compliance"], body=f"{slug} on a control", assessment=assessment)
    evidence_upload(
        version=version,
        controls=list(Control.objects.filter(key="sub-processors")),
        kind="policy",
        actor=author,
        description=f"{slug}-evidence-note",
        file=SimpleUploadedFile("sub-processors.pdf", b"%PDF-1.7\n% evidence\n"),
    )
    exemption_request(
        actor=author,
        plugin=plugin,
        scope="version",
        version=version,
        finding=finding,
        justification=f"{slug}-exemption-reason",
        expires_at=timezone.now() + timedelta(days=30),
    )
    threat_model_prefill(version=version, actor=author)


@pytest.fixture
def world(
    acme,
    globex,
    author,
    other_author,
    pipeline,
    security,
    performance,
    compliance,
    board,
    platform_admin,
    django_capture_on_commit_callbacks,
):
    HostPlatform.objects.get_or_create(name="Test host", defaults={"api_version": "2.4", "is_default": True})
    AllowedLicence.objects.get_or_create(spdx_id="MIT")
    framework, _created = framework_import(document=yaml.safe_load(FRAMEWORK.read_text()))
    Checklist.objects.create(name="Every plugin").frameworks.add(framework)
    reviewers = {"security": security, "performance": performance, "compliance": compliance, "board": board}
    for org, who in ((acme, author), (globex, other_author)):
        build_vendor(org, who, reviewers, django_capture_on_commit_callbacks)
    roles = {
        "acme author": author,
        "globex author": other_author,
        "security reviewer": security,
        "performance reviewer": performance,
        "compliance officer": compliance,
        "board": board,
        "platform admin": platform_admin,
    }
    with transaction.atomic():  # a private note for each: nobody else may read it
        for user in roles.values():
            notify(recipients=[user], event="annotation.mention", subject=f"private-note-for-{user.username}")
    return roles


def forbidden_markers(role: str, user, everyone) -> list[str]:
    """The marker strings ``user`` must never be shown."""
    others = [f"private-note-for-{u.username}" for u in everyone if u != user]
    if role.endswith(" author"):
        own = role.split()[0]
        other = "globex" if own == "acme" else "acme"
        return [*others, *org_markers(other), f"{own}-internal-note"]
    if role in ("board", "platform admin"):
        return others  # they see every vendor's versions and every stage
    # a reviewer: no version nobody asked them to review, and nothing another stage decided (its
    # verdict). The names of a version's other stage reviews show on objects they may see (a
    # check run "of Eligibility of acme-exporter 1.0.0"): that a stage exists is not a secret.
    groups = set(user.groups.values_list("pk", flat=True))
    verdicts = [f"{s.key}-stage-verdict" for s in Stage.objects.exclude(owner_group__in=groups)]
    return [*others, "acme-unsubmitted-plugin", "globex-unsubmitted-plugin", *verdicts]


def admin_pages(model, model_admin, user) -> list[tuple[str, type | None]]:
    """The add form, the changelist, some change forms and the autocomplete endpoints (with
    the model an autocomplete answers with)."""
    info = model._meta.app_label, model._meta.model_name
    pages = []
    for name in ("add", "changelist"):
        pages.append((reverse(f"admin:{info[0]}_{info[1]}_{name}"), None))
    visible = model_admin.get_queryset(as_request(user)).order_by("pk").values_list("pk", flat=True)
    pks = list(visible[:1]) + list(visible.reverse()[:1]) if CHANGE_PAGES_PER_ADMIN else []
    for pk in dict.fromkeys(pks):
        pages.append((reverse(f"admin:{info[0]}_{info[1]}_change", args=[pk]), None))
    for field in model._meta.get_fields():
        related = field.many_to_one or field.many_to_many or field.one_to_one
        if related and field.concrete and field.related_model in admin.site._registry:
            query = f"app_label={info[0]}&model_name={info[1]}&field_name={field.name}&term="
            pages.append((f"{reverse('admin:autocomplete')}?{query}", field.related_model))
    return pages


def as_request(user):
    request = RequestFactory().get("/admin/")
    request.user = user
    return request


def row_scoped_models(users) -> set[type]:
    """The models whose admin list shows some role fewer rows than there are."""
    return {
        model
        for model, model_admin in admin.site._registry.items()
        if any(model_admin.get_queryset(as_request(u)).count() < model._default_manager.count() for u in users)
    }


def offered(response, autocompleted: type | None):
    """(model, ids) of every object the page offers to choose or lists inline: form fields,
    inline rows and their fields, related list filters, autocomplete results."""
    if autocompleted is not None:
        yield autocompleted, [int(r["id"]) for r in response.json()["results"]]
        return
    context = response.context or {}
    forms = [context["adminform"].form] if context.get("adminform") else []
    for inline in context.get("inline_admin_formsets") or []:
        yield inline.formset.model, [f.instance.pk for f in inline.formset.forms if f.instance.pk]
        forms += [*inline.formset.forms, inline.formset.empty_form]
    for form in forms:
        for field in form.fields.values():
            if isinstance(field, ModelChoiceField) and field.queryset is not None and not field.widget.is_hidden:
                yield field.queryset.model, list(field.queryset.values_list("pk", flat=True))
    if context.get("cl"):
        for spec in context["cl"].filter_specs:
            if isinstance(spec, admin.RelatedFieldListFilter):
                yield spec.field.related_model, [int(value) for value, _label in spec.lookup_choices]


def test_no_admin_page_shows_what_the_user_may_not_see(client, world):
    client.raise_request_exception = False
    everyone = list(world.values())
    scoped = row_scoped_models(everyone)
    assert len(scoped) >= 10  # versions, reviews, findings, threads, assessments, exemptions...
    leaks, errors, checked = [], [], 0
    for role, user in world.items():
        markers = forbidden_markers(role, user, everyone)
        may_see = {
            m: set(admin.site._registry[m].get_queryset(as_request(user)).values_list("pk", flat=True)) for m in scoped
        }
        client.force_login(user)
        for model, model_admin in admin.site._registry.items():
            for url, autocompleted in admin_pages(model, model_admin, user):
                response = client.get(url)
                if response.status_code >= 500:
                    errors.append(f"{role}: {url} answered {response.status_code}")
                    continue
                if response.status_code != 200:
                    continue  # refused or redirected: nothing shown
                checked += 1
                page = response.content.decode()
                for marker in markers:
                    if marker in page or escape(marker) in page:
                        leaks.append(f"{role}: {url} shows {marker!r}")
                for shown_model, ids in offered(response, autocompleted):
                    hidden = sorted(set(ids) - may_see[shown_model]) if shown_model in may_see else []
                    if hidden:
                        leaks.append(f"{role}: {url} offers {shown_model._meta.label} {hidden}")
    assert not errors, "\n".join(errors)
    assert not leaks, f"{len(leaks)} leaks:\n" + "\n".join(leaks)
    assert checked > 300  # the walk really rendered pages for every role

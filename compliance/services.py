"""Frameworks as YAML, and the automatic assessment of a version's controls."""

import re
from typing import Any

import celpy
from django.db import transaction

from governance.cel import compile_expression
from governance.errors import ValidationFailed
from governance.models import StageKind
from reviews.models import StageReview

from .models import Checklist, Control, ControlAssessment, Criticality, Framework, Result

CONTROL_FIELDS = ("key", "text", "criticality", "guidance", "typical_evidence", "applies_to_data", "expression")
FACT_REFERENCE = re.compile(r"\b(plugin|permissions|data|dependencies|docs|performance)\.([A-Za-z_]\w*)")


def framework_import(*, document: Any) -> tuple[Framework, bool]:
    """Store a framework document; a new version only when its content changed.
    Returns the framework and whether a version was created."""
    controls = _validated(document)
    latest = Framework.objects.filter(key=document["key"]).order_by("-version").first()
    if latest and framework_export(framework=latest) == _normalised(document, controls):
        return latest, False
    with transaction.atomic(durable=True):
        framework = Framework.objects.create(
            key=document["key"],
            name=document["name"],
            description=document.get("description", ""),
            version=(latest.version + 1) if latest else 1,
        )
        Control.objects.bulk_create(Control(framework=framework, **control) for control in controls)
    return framework, True


def framework_in_use(*, framework: Framework) -> bool:
    """A framework version some assessment used is frozen: changes go into a new version."""
    return ControlAssessment.objects.filter(control__framework=framework).exists()


def framework_new_version(*, framework: Framework) -> Framework:
    """Copy a framework into its next version, to be edited in the admin (or exported)."""
    document = framework_export(framework=framework)
    latest = Framework.objects.filter(key=framework.key).order_by("-version").first()
    with transaction.atomic(durable=True):
        copy = Framework.objects.create(
            key=framework.key,
            name=document["name"],
            description=document["description"],
            version=(latest.version if latest else framework.version) + 1,
        )
        Control.objects.bulk_create(Control(framework=copy, **control) for control in document["controls"])
    return copy


def framework_export(*, framework: Framework) -> dict:
    controls = [{field: getattr(c, field) for field in CONTROL_FIELDS} for c in framework.controls.order_by("key")]
    return {"key": framework.key, "name": framework.name, "description": framework.description, "controls": controls}


def _validated(document: Any) -> list[dict]:
    errors = []
    if not isinstance(document, dict) or not all(isinstance(document.get(k), str) for k in ("key", "name")):
        raise ValidationFailed("A framework needs a key, a name and controls.", code="invalid_framework")
    raw = document.get("controls")
    if not isinstance(raw, list) or not raw:
        raise ValidationFailed("A framework needs at least one control.", code="invalid_framework")
    controls = []
    for index, item in enumerate(raw):
        where = f"controls[{index}]"
        if not isinstance(item, dict) or not isinstance(item.get("key"), str) or not isinstance(item.get("text"), str):
            errors.append({"field": where, "code": "invalid_control", "message": "Needs a key and a text."})
            continue
        control = {field: item.get(field, [] if field == "applies_to_data" else "") for field in CONTROL_FIELDS}
        if control["criticality"] not in Criticality.values:
            control["criticality"] = control["criticality"] or Criticality.MEDIUM
            if control["criticality"] not in Criticality.values:
                errors.append(
                    {
                        "field": f"{where}.criticality",
                        "code": "invalid_control",
                        "message": f"One of {', '.join(Criticality.values)}.",
                    }
                )
        if control["expression"]:
            try:
                compile_expression(control["expression"])
            except ValidationFailed as exc:
                errors.append({"field": f"{where}.expression", "code": "invalid_expression", "message": exc.detail})
        controls.append(control)
    keys = [c["key"] for c in controls]
    if len(keys) != len(set(keys)):
        errors.append({"field": "controls", "code": "duplicate_key", "message": "Control keys must be unique."})
    if errors:
        raise ValidationFailed(
            f"The framework {document['key']!r} is invalid.", code="invalid_framework", errors=errors
        )
    return controls


def _normalised(document: dict, controls: list[dict]) -> dict:
    return {
        "key": document["key"],
        "name": document["name"],
        "description": document.get("description", ""),
        "controls": sorted(controls, key=lambda c: c["key"]),
    }


def assessments_open_for_stage(*, review: StageReview) -> list[ControlAssessment]:
    """The ``stage_started`` hook (compliance/apps.py): a compliance stage opens its assessments."""
    if review.stage.kind != StageKind.COMPLIANCE:
        return []
    return assessments_open(review=review)


def assessments_open(*, review: StageReview) -> list[ControlAssessment]:
    """Inside the transaction that starts a compliance review: one assessment per control
    that applies to this version, the automatic ones evaluated at once."""
    manifest = review.version.manifest
    category = manifest.get("plugin", {}).get("category", "")
    data_categories = set(manifest.get("data", {}).get("categories", []))
    frameworks = {
        f.pk: f
        for c in Checklist.objects.prefetch_related("frameworks")
        if not c.categories or category in c.categories
        for f in c.frameworks.all()
    }
    controls = Control.objects.filter(framework__in=frameworks).select_related("framework")
    rows = [
        _assessed(ControlAssessment(stage_review=review, control=control), manifest)
        for control in controls
        if not control.applies_to_data or data_categories & set(control.applies_to_data)
    ]
    return ControlAssessment.objects.bulk_create(rows)


def _assessed(assessment: ControlAssessment, manifest: dict) -> ControlAssessment:
    expression = assessment.control.expression
    if not expression:
        return assessment
    facts = {
        table: manifest.get(table, {})
        for table in ("plugin", "permissions", "data", "dependencies", "docs", "performance")
    }
    assessment.automatic = True
    assessment.inputs = {f"{t}.{k}": facts.get(t, {}).get(k) for t, k in FACT_REFERENCE.findall(expression)}
    try:
        verdict = compile_expression(expression).evaluate(celpy.json_to_cel(facts))
    except Exception as exc:  # a missing fact or a type error: a person must look
        verdict = exc
    if not isinstance(verdict, celpy.celtypes.BoolType):  # celpy also *returns* evaluation errors
        assessment.reason = f"Could not evaluate {expression!r}: {verdict}"
        return assessment
    assessment.result = Result.MET if bool(verdict) else Result.NOT_MET
    assessment.assess_automatically()
    assessment.reason = f"{expression} is {'true' if assessment.result == Result.MET else 'false'}"
    return assessment

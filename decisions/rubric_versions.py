"""The risk rubric's versions: the current one (installed from the default on first use), a
revision through the admin (a rubric already used by a rating is never edited: its edit
becomes the next version), and what a draft would do to the ratings of current versions."""

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction

from governance.audit import audit_lock
from governance.errors import NotFound, PermissionRefused
from governance.transitions import require_reason, save_with_audit

from .models import RiskRating, RiskRubric
from .rubric import DEFAULT_RUBRIC, rate, rubric_diff, validated_rubric

# Whose ratings a draft rubric is tried on: the versions that are, or may soon be, approved.
CURRENT_STATES = ("awaiting_decision", "approved", "deployed")


def rubric_current(*, lock: bool = False) -> RiskRubric:
    """The newest version of the configured rubric; the default is installed on first use.

    With ``lock`` (inside the caller's transaction, before rating) the row is locked, so a
    rating never commits against weights that ``rubric_revise`` edited underneath it."""
    key = settings.WARDEN_RISK_RUBRIC
    rubric = _newest_rubric(key, lock=lock)
    if rubric is None:
        _install_default_rubric(key)
        rubric = _newest_rubric(key, lock=lock)
    assert rubric is not None  # installed just above, by this request or a concurrent one
    return rubric


def _newest_rubric(key: str, *, lock: bool) -> RiskRubric | None:
    rubrics = RiskRubric.objects.filter(key=key).order_by("-version")
    if not lock:
        return rubrics.first()
    _lock_rubrics()
    return rubrics.select_for_update().first()


def _lock_rubrics() -> None:
    """Every rubric writer and every rating takes the audit chain head before a rubric row.
    A transaction that audits holds the head until it commits, and the pipeline has audited
    before it rates, so taking them in this one order is what keeps the two from deadlocking."""
    audit_lock()


def _install_default_rubric(key: str) -> None:
    """Race-safe: two first requests at once install one default; the loser reads it."""
    try:
        with transaction.atomic():
            _lock_rubrics()
            if RiskRubric.objects.filter(key=key).exists():
                return
            rubric = RiskRubric(key=key, version=1, name="Default rubric", **validated_rubric(DEFAULT_RUBRIC))
            save_with_audit(rubric, actor=None, action="rubric.install_default")
    except IntegrityError:
        pass  # installed meanwhile (rubric_version_unique): the caller reads that one


def rubric_label(rubric: RiskRubric) -> str:
    return f"{rubric.key} v{rubric.version}"


def rubric_document(rubric: RiskRubric) -> dict:
    return {"factors": rubric.factors, "bands": rubric.bands}


def rubric_in_use(*, rubric: RiskRubric) -> bool:
    return RiskRating.objects.filter(rubric=rubric).exists()


def rubric_previous(*, rubric: RiskRubric) -> RiskRubric | None:
    return RiskRubric.objects.filter(key=rubric.key, version__lt=rubric.version).order_by("-version").first()


def rubric_revise(
    *, rubric: RiskRubric, actor: User, document: dict, name: str, reason: str, description: str = ""
) -> RiskRubric:
    """Change a rubric. A version no rating used yet is changed in place; a used one is
    frozen, so the change becomes the next version and old ratings keep theirs. The reason
    is required: it is what the audit row tells a later reader about changed weights."""
    if actor is None or not actor.has_perm("decisions.change_riskrubric"):
        raise PermissionRefused(f"{actor} may not change risk rubrics.")
    reason = require_reason(reason, action="change a risk rubric")
    clean = validated_rubric(document)
    # not durable: the admin's add/change form calls it inside the transaction Django opens
    with transaction.atomic():
        _lock_rubrics()
        locked = RiskRubric.objects.select_for_update().filter(pk=rubric.pk).first()
        if locked is None:
            raise NotFound("No such rubric.")
        rubric = locked
        changes = rubric_diff(rubric_document(rubric), clean)
        if rubric_in_use(rubric=rubric):
            latest = RiskRubric.objects.filter(key=rubric.key).order_by("-version").first()
            rubric = RiskRubric(key=rubric.key, version=latest.version + 1 if latest else 1, created_by=actor)
            action = "rubric.new_version"
        else:
            action = "rubric.edit"
        rubric.name, rubric.description = name, description
        rubric.factors, rubric.bands = clean["factors"], clean["bands"]
        save_with_audit(rubric, actor=actor, action=action, reason=reason, data={"changes": changes})
    return rubric


def rubric_what_if(*, document: dict, limit: int = 500) -> list[dict]:
    """Current versions' latest stored facts rated under a draft rubric; nothing is saved."""
    draft = validated_rubric(document)
    latest: dict[int, RiskRating] = {}
    ratings = (
        RiskRating.objects.filter(version__status__in=CURRENT_STATES)
        .select_related("version__plugin", "rubric")
        .order_by("-version_id", "-pk")
    )
    for rating in ratings.iterator(chunk_size=500):
        if len(latest) >= limit and rating.version_id not in latest:
            break
        latest.setdefault(rating.version_id, rating)
    rows = []
    for rating in latest.values():
        what_if = rate(facts=rating.facts, rubric=draft, rubric_label="draft")
        rows.append(
            {
                "version": rating.version,
                "rubric": rubric_label(rating.rubric),
                "total": rating.total,
                "band": rating.band,
                "draft_total": what_if.total,
                "draft_band": what_if.band,
                "delta": what_if.total - rating.total,
            }
        )
    return sorted(rows, key=lambda r: (-abs(r["delta"]), r["version"].pk))


# -- assessing versions --------------------------------------------------------------------

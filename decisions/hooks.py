"""What the decisions layer does when a layer below reaches a point it cares about
(governance/hooks.py): connected once, from DecisionsConfig.ready()."""

from governance import hooks
from governance.selectors import audit_label_moved

from .models import Decision, Exemption, Policy, PolicyEvaluation, RiskRating, RiskRubric
from .retro_hunt import on_check_finished
from .services import on_awaiting_decision

MOVED_FROM_GOVERNANCE = (RiskRubric, RiskRating, Policy, PolicyEvaluation, Decision, Exemption)


def current_policy_keys() -> list[str]:
    """What a canned response (reviews) may name as its policy."""
    return list(Policy.objects.filter(is_current=True).values_list("key", flat=True))


def connect() -> None:
    hooks.connect(hooks.VERSION_AWAITING_DECISION, on_awaiting_decision)
    hooks.connect(hooks.POLICY_KEYS, current_policy_keys)
    hooks.connect(hooks.CHECK_FINISHED, on_check_finished)
    for model in MOVED_FROM_GOVERNANCE:  # their events before the move say governance.<model>
        audit_label_moved(label=model._meta.label_lower, former=f"governance.{model._meta.model_name}")

from django.apps import AppConfig


class GovernanceConfig(AppConfig):
    default = True
    name = "governance"
    verbose_name = "Governance"

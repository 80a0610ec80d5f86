from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class GovernanceConfig(AppConfig):
    default = True
    name = "governance"
    verbose_name = "Governance"


class WardenAdminConfig(admin_apps.AdminConfig):
    default = False
    default_site = "governance.admin_site.WardenAdminSite"

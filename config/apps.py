from django.contrib.admin import apps as admin_apps


class WardenAdminConfig(admin_apps.AdminConfig):
    """The admin site with Warden's home page (config/admin_site.py)."""

    default = False
    default_site = "config.admin_site.WardenAdminSite"

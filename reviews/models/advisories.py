"""Advisories from vulnerability feeds and the packages they affect."""

from django.db import models

from .checks import Severity


class Advisory(models.Model):
    """One OSV advisory; ``raw`` is the document as imported, ``modified`` decides whether a
    re-import replaces it."""

    osv_id = models.CharField(max_length=100, unique=True)
    aliases = models.JSONField(default=list, blank=True)
    summary = models.TextField(blank=True)
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.MEDIUM)
    modified = models.DateTimeField()
    published = models.DateTimeField(null=True, blank=True)
    withdrawn = models.DateTimeField(null=True, blank=True)
    raw = models.JSONField()
    imported_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("osv_id",)
        verbose_name_plural = "advisories"

    def __str__(self) -> str:
        return self.osv_id


class AdvisoryPackage(models.Model):
    """Index of the packages an advisory affects, so matching reads only what it needs."""

    advisory = models.ForeignKey(Advisory, on_delete=models.CASCADE, related_name="packages")
    ecosystem = models.CharField(max_length=50)
    name = models.CharField(max_length=200, help_text="PEP 503-normalised for PyPI.")

    class Meta:
        indexes = [models.Index(fields=["ecosystem", "name"])]

    def __str__(self) -> str:
        return f"{self.ecosystem}/{self.name}"


# -- SLAs ---------------------------------------------------------------------------------

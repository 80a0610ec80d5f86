"""The TUF repository's signed metadata (decisions/tuf_repo.py, docs/hosts.md "Updating through TUF").

Every version of every role is kept: a host asks for ``<n>.snapshot.json`` by the version the
timestamp names (consistent snapshots), and a version, once signed, is never changed or replaced.
"""

from django.db import models


class TufMetadata(models.Model):
    """One signed version of one role: ``root``, ``targets``, ``snapshot``, ``timestamp`` or a
    hash bin of the targets (``bins-00`` ... ``bins-3f``). ``data`` is the JSON exactly as
    served; ``digest`` (bins only) is the SHA-256 of the targets the bin lists, so a publication
    re-signs only the bins whose targets changed."""

    role = models.CharField(max_length=40)
    version = models.PositiveIntegerField()
    data = models.BinaryField(help_text="The signed metadata, as served.")
    digest = models.CharField(max_length=64, blank=True, help_text="SHA-256 of a bin's targets.")
    expires = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "TUF metadata"
        verbose_name_plural = "TUF metadata"
        ordering = ("role", "-version")
        constraints = [models.UniqueConstraint(fields=["role", "version"], name="tuf_role_version_unique")]

    def __str__(self) -> str:
        return f"{self.version}.{self.role}.json"

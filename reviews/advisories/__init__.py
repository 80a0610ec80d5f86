"""Vulnerability advisories in OSV format: reading them (``osv``) and matching pinned requirements (``matching``)."""

"""Production settings: secrets from the environment, secure cookies, no debug."""

from decisions.attestation_keys import attestation_key_required
from decisions.tuf_keys import ROLES, tuf_keys_required

from .base import *  # noqa: F403
from .env import env_bool, env_int, env_str

SECRET_KEY = env_str("DJANGO_SECRET_KEY")
DEBUG = False
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", True)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
# HTTPS only: plain HTTP is redirected, and browsers are told for a year not to try it again.
SECURE_SSL_REDIRECT = env_bool("DJANGO_SSL_REDIRECT", True)
SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 365 * 24 * 3600, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_HSTS_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", False)
# Asking browsers to preload the domain is the operator's commitment, not a default (docs/configuration.md).
SILENCED_SYSTEM_CHECKS = ["security.W021"]
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# Plugin code never runs without bubblewrap in production, whatever the environment says.
WARDEN_SANDBOX_ALLOW_UNISOLATED = False
# Approvals are signed (docs/hosts.md): no start without a usable attestation key. Generate it
# once with the default settings: WARDEN_ATTESTATION_KEY=/path manage.py attestation_key.
WARDEN_ATTESTATION_KEY = attestation_key_required(env_str("WARDEN_ATTESTATION_KEY", ""))
# Hosts update through the TUF repository, re-signed every few minutes: no start without the
# online keys (targets, snapshot, timestamp). The root key is set only where the root is signed
# (creating, renewing or rotating it): keep it offline otherwise.
WARDEN_TUF_KEYS = tuf_keys_required({role: env_str(f"WARDEN_TUF_{role.upper()}_KEY", "") for role in ROLES})

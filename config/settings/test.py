"""Settings for the test suite: fast hashing, in-memory cache, tasks run inline."""

import os
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from decisions.attestation_keys import attestation_key_generate

from .base import *  # noqa: F403
from .base import Q_CLUSTER

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
MEDIA_ROOT = Path(tempfile.mkdtemp(prefix="warden-test-media-"))
Q_CLUSTER = {**Q_CLUSTER, "sync": True}
LOGGING = {"version": 1, "disable_existing_loggers": False}
WARDEN_WORK_DIR = Path(tempfile.mkdtemp(prefix="warden-test-work-"))
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
WARDEN_GATE_WAIT_SECONDS = 2  # tasks run inline, so only a version that cannot move waits this long
WARDEN_GATE_WAIT_POLL_SECONDS = 0.05
# Plugin code runs as one of 4,096 users: a suite running beside another checkout's sandboxes
# does not share their process limit.
WARDEN_SANDBOX_UID = 100_000
WARDEN_SANDBOX_UIDS = 4096
# Throwaway TUF keys, made once per test session; a test that rotates one makes its own.
_TUF_KEY_DIR = Path(tempfile.mkdtemp(prefix="warden-test-tuf-"))
WARDEN_TUF_KEYS = {role: _TUF_KEY_DIR / f"{role}.pem" for role in ("root", "targets", "snapshot", "timestamp")}
WARDEN_TUF_TIMESTAMP_EXPIRY = 24 * 3600
for _role, _key in WARDEN_TUF_KEYS.items():
    _key.write_bytes(Ed25519PrivateKey.generate().private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    os.environ[f"WARDEN_TUF_{_role.upper()}_KEY"] = str(_key)  # for the processes and production settings tests load
# One attestation key per test session, never a developer's own; exported so that the processes
# the suite starts (and the production settings it loads) sign and verify with the same key.
WARDEN_ATTESTATION_KEY = Path(tempfile.mkdtemp(prefix="warden-test-key-")) / "attestation.pem"
attestation_key_generate(path=WARDEN_ATTESTATION_KEY)
os.environ["WARDEN_ATTESTATION_KEY"] = str(WARDEN_ATTESTATION_KEY)
# Tests send many bad keys and passwords from one address; the lockout's own tests set the limit.
AXES_FAILURE_LIMIT = 100

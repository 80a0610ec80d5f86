"""Settings for the test suite: fast hashing, in-memory cache, tasks run inline."""

import tempfile
from pathlib import Path

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

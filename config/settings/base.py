"""Settings shared by every environment; the defaults run on a fresh clone with SQLite.

Everything an operator may change is read from the environment (see docs/configuration.md).
"""

from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONCE, NONE, SELF

from .env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(env_str("WARDEN_VAR_DIR", str(BASE_DIR / "var")))

SECRET_KEY = env_str("DJANGO_SECRET_KEY", "dev-only-insecure-key-change-me")
DEBUG = env_bool("DJANGO_DEBUG", True)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "config.apps.WardenAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_filters",
    "guardian",
    "simple_history",
    "axes",
    "csp",
    "django_q",
    "governance",
    "submissions",
    "reviews",
    "compliance",
    "decisions",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "governance.middleware.RequestIdMiddleware",
    "governance.middleware.RequestSizeMiddleware",
    "decisions.feed_api.FeedPollMiddleware",  # a host's unchanged poll: 304 before the rest
    "csp.middleware.CSPMiddleware",  # pages: the Content-Security-Policy (a 304 to a host needs none)
    "governance.middleware.ContentionMiddleware",  # a busy database: 503 with Retry-After
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    "axes.middleware.AxesMiddleware",  # a sign-in that reached the lockout: 429 (governance/lockout.py)
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "governance" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# SQLite needs IMMEDIATE transactions so that two writers never both read the audit
# chain head before either has written (select_for_update is a no-op on SQLite).
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'warden.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0, minimum=0),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    DATABASES["default"].setdefault("OPTIONS", {})["transaction_mode"] = "IMMEDIATE"
    DATABASES["default"]["OPTIONS"]["timeout"] = 20

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: a locked-out sign-in goes no further
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
ANONYMOUS_USER_NAME = None  # guardian: no anonymous user row; anonymous users get nothing.

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Content-Security-Policy (django-csp): scripts and styles only from Warden's own static files, or
# inline with the request's nonce; no plugin-supplied text can run or restyle a page. The API
# documentation pages relax it for their own renderers (config/urls.py). Violations are reported
# to WARDEN_CSP_REPORT_URI when set (a collector of the operator's).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, NONCE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
        **({"report-uri": [env_str("WARDEN_CSP_REPORT_URI")]} if env_str("WARDEN_CSP_REPORT_URI", "") else {}),
    }
}

# Sign-in lockout (django-axes, governance/lockout.py): this many failed sign-ins for one username
# from one address, or bad integration-token keys from one address, lock it out for the cool-off.
AXES_FAILURE_LIMIT = env_int("WARDEN_LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("WARDEN_LOGIN_COOLOFF_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "governance.lockout.lockout_response"
AXES_CLIENT_IP_CALLABLE = "governance.lockout.client_ip"
AXES_VERBOSE = False
# The reverse proxies in front of Warden that append to X-Forwarded-For (0: the peer is the client).
WARDEN_TRUSTED_PROXIES = env_int("WARDEN_TRUSTED_PROXIES", 0, minimum=0)

LANGUAGE_CODE = "en-gb"
TIME_ZONE = env_str("WARDEN_TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("DJANGO_STATIC_ROOT", str(VAR_DIR / "static")))
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env_str("DJANGO_MEDIA_ROOT", str(VAR_DIR / "media")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# Uploads above this size are refused before they reach a service.
WARDEN_MAX_ARTIFACT_BYTES = env_int("WARDEN_MAX_ARTIFACT_BYTES", 50 * 1024 * 1024, minimum=1024)
# Hard limits on what an archive may unpack to (submissions/intake.py); over any of them the
# upload is refused before anything is stored.
WARDEN_ARCHIVE_LIMITS = {
    "max_total_bytes": env_int("WARDEN_ARCHIVE_MAX_TOTAL_BYTES", 200 * 1024 * 1024, minimum=1024),
    "max_files": env_int("WARDEN_ARCHIVE_MAX_FILES", 5000, minimum=1),
    "max_file_bytes": env_int("WARDEN_ARCHIVE_MAX_FILE_BYTES", 20 * 1024 * 1024, minimum=1024),
    "max_ratio": env_int("WARDEN_ARCHIVE_MAX_RATIO", 100, minimum=2),
    "max_depth": env_int("WARDEN_ARCHIVE_MAX_DEPTH", 20, minimum=1),
}
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024

# Separation of duties: one person may not sign off two stages of the same submission.
WARDEN_SEPARATE_SIGNOFFS = env_bool("WARDEN_SEPARATE_SIGNOFFS", True)

REST_FRAMEWORK = {
    # Integration tokens first: a request without credentials, or with a bad token, is a 401
    # with ``WWW-Authenticate: Token`` (the first class names the challenge); browsers keep their
    # session. Each view names the token scopes it accepts (submissions/tokens.py).
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "submissions.tokens.IntegrationTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_THROTTLE_CLASSES": ["submissions.tokens.TokenRateThrottle"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PARSER_CLASSES": [
        "governance.api.StrictJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "EXCEPTION_HANDLER": "governance.api.exception_handler",
    "DEFAULT_PAGINATION_CLASS": "governance.api.CursorPage",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Warden API",
    "DESCRIPTION": "Plugin approval portal: submissions, reviews, gate and feed.",
    "VERSION": "0.5.0",  # CHANGELOG.md
    # The documentation pages load their scripts from Warden's static files, never a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # ``<id:...>`` (governance.ids.IdConverter): a database id.
    "PATH_CONVERTER_OVERRIDES": {"id": {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}},
    # A finding's triage is one choice set, whether read (``triage``) or written (``to_state``).
    "ENUM_NAME_OVERRIDES": {
        "TriageEnum": "reviews.models.Triage",
        "StatusEnum": "submissions.models.VersionStatus",  # a version's, named so since the schema's first release
        "ExemptionStatusEnum": "decisions.models.ExemptionStatus",
        "DeploymentStatusEnum": "decisions.models.DeploymentStatus",
        "AnnotationKindEnum": "reviews.models.AnnotationKind",
        "ExemptionScopeEnum": "decisions.models.ExemptionScope",
    },
}

# django-q2: the ORM broker needs no server; set REDIS_URL when workers run on several machines.
Q_CLUSTER = {
    "name": "warden",
    "workers": env_int("WARDEN_Q_WORKERS", 2, minimum=1),
    "timeout": env_int("WARDEN_Q_TIMEOUT", 600, minimum=10),
    "retry": env_int("WARDEN_Q_RETRY", 720, minimum=20),
    "max_attempts": env_int("WARDEN_Q_MAX_ATTEMPTS", 3, minimum=1),
    "catch_up": False,
    "label": "Task queue",
}
REDIS_URL = env_str("REDIS_URL", "")
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "filters": {"refusals_in_one_line": {"()": "governance.middleware.RefusalLogFilter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("WARDEN_LOG_LEVEL", "INFO")},
    "loggers": {
        # Django's own console handler would print every django.* record a second time beside root's.
        "django": {"handlers": [], "level": env_str("WARDEN_LOG_LEVEL", "INFO")},
        "django.request": {"filters": ["refusals_in_one_line"]},
        "django-q": {"level": env_str("WARDEN_Q_LOG_LEVEL", "WARNING")},
        # cel-python logs every expression error it returns to us as a value; policies record them.
        "celpy": {"level": "CRITICAL"},
    },
}

# Where workers unpack artifacts for checks (one private directory per artifact digest).
WARDEN_WORK_DIR = Path(env_str("WARDEN_WORK_DIR", str(VAR_DIR / "work")))
# A check run still "running" this long after it started lost its worker and is re-queued.
WARDEN_CHECK_STALE_SECONDS = env_int("WARDEN_CHECK_STALE_SECONDS", 900, minimum=60)
WARDEN_CHECK_MAX_ATTEMPTS = env_int("WARDEN_CHECK_MAX_ATTEMPTS", 3, minimum=1)
# Seconds a scanner (bandit, GuardDog) may run on one plugin before its run errors.
WARDEN_TOOL_TIMEOUT = env_int("WARDEN_TOOL_TIMEOUT", 300, minimum=5)
# Largest external report accepted (bandit's SARIF for 50,000 results is about 60 MB).
WARDEN_MAX_REPORT_BYTES = env_int("WARDEN_MAX_REPORT_BYTES", 100 * 1024 * 1024, minimum=1024)
# A SARIF log larger than this is imported by a worker, streaming (reviews/reports.py).
WARDEN_REPORT_INLINE_BYTES = env_int("WARDEN_REPORT_INLINE_BYTES", 2 * 1024 * 1024, minimum=0)
# A body over this is refused by its Content-Length before it is read (governance/middleware.py).
WARDEN_MAX_REQUEST_BYTES = max(WARDEN_MAX_ARTIFACT_BYTES, WARDEN_MAX_REPORT_BYTES) + 1024 * 1024

# The sandbox for plugin code (docs/sandbox.md). Without bubblewrap a run errors and no plugin code
# runs, unless this development setting allows it (never in production): then the plugin runs as an
# unprivileged user with an empty environment and every run carries a "ran without isolation" finding.
WARDEN_SANDBOX_ALLOW_UNISOLATED = env_bool("WARDEN_SANDBOX_ALLOW_UNISOLATED", False)
WARDEN_SANDBOX_BWRAP = env_str("WARDEN_SANDBOX_BWRAP", "bwrap")
# When the worker runs as root, plugin code runs as this unprivileged user (root ignores RLIMIT_NPROC).
WARDEN_SANDBOX_UID = env_int("WARDEN_SANDBOX_UID", 65534, minimum=1)
# Runs take one of this many consecutive users from WARDEN_SANDBOX_UID, at random, so that
# concurrent runs rarely share one user's process limit (RLIMIT_NPROC counts per user).
WARDEN_SANDBOX_UIDS = env_int("WARDEN_SANDBOX_UIDS", 1, minimum=1)
# Where plugin dependencies come from: a directory of wheels (no network), else the index.
WARDEN_SANDBOX_WHEELHOUSE = env_str("WARDEN_SANDBOX_WHEELHOUSE", "")
WARDEN_SANDBOX_INDEX_URL = env_str("WARDEN_SANDBOX_INDEX_URL", "")
WARDEN_SANDBOX_INSTALL_TIMEOUT = env_int("WARDEN_SANDBOX_INSTALL_TIMEOUT", 300, minimum=10)
WARDEN_SANDBOX_LIMITS = {
    "cpu_seconds": env_int("WARDEN_SANDBOX_CPU_SECONDS", 30, minimum=1),
    "memory_mb": env_int("WARDEN_SANDBOX_MEMORY_MB", 1024, minimum=64),
    "processes": env_int("WARDEN_SANDBOX_PROCESSES", 64, minimum=1),
    "open_files": env_int("WARDEN_SANDBOX_OPEN_FILES", 256, minimum=16),
    "file_size_mb": env_int("WARDEN_SANDBOX_FILE_SIZE_MB", 64, minimum=1),
    "tmp_mb": env_int("WARDEN_SANDBOX_TMP_MB", 256, minimum=1),
    "output_kb": env_int("WARDEN_SANDBOX_OUTPUT_KB", 1024, minimum=1),
    "wall_seconds": env_int("WARDEN_SANDBOX_WALL_SECONDS", 120, minimum=1),
}
# The performance harness: fresh processes per startup figure, and the load plan per concurrency level.
WARDEN_PERFORMANCE = {
    "startup_runs": env_int("WARDEN_PERFORMANCE_STARTUP_RUNS", 7, minimum=1),
    "warmup_calls": env_int("WARDEN_PERFORMANCE_WARMUP_CALLS", 20, minimum=0),
    "rounds": env_int("WARDEN_PERFORMANCE_ROUNDS", 3, minimum=1),
    "calls_per_round": env_int("WARDEN_PERFORMANCE_CALLS_PER_ROUND", 60, minimum=1),
}

# E-mail: the console in development; set EMAIL_BACKEND/EMAIL_HOST... for real delivery.
EMAIL_BACKEND = env_str("DJANGO_EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env_str("DJANGO_EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("DJANGO_EMAIL_PORT", 25, minimum=1)
DEFAULT_FROM_EMAIL = env_str("DJANGO_DEFAULT_FROM_EMAIL", "warden@localhost")
# Links in e-mails point here.
WARDEN_BASE_URL = env_str("WARDEN_BASE_URL", "http://127.0.0.1:8000")
# Every approval is attested: an in-toto statement in a DSSE envelope signed with this Ed25519 key
# (a PEM private key file; `manage.py attestation_key` generates it; production refuses to start
# without it). Its public key is served at /.well-known/warden-attestation-key.pem (docs/hosts.md).
WARDEN_ATTESTATION_KEY = Path(env_str("WARDEN_ATTESTATION_KEY", str(VAR_DIR / "attestation.pem")))
# Webhooks: seconds per POST, and failures in a row before an endpoint is disabled.
WARDEN_WEBHOOK_TIMEOUT = env_int("WARDEN_WEBHOOK_TIMEOUT", 10, minimum=1)
WARDEN_WEBHOOK_DISABLE_AFTER = env_int("WARDEN_WEBHOOK_DISABLE_AFTER", 10, minimum=1)

# Risk rating and policies (docs/rubric.md, docs/policies.md): the rubric ratings use, where
# `sync_policies` reads policy files, exemptions, and the plugin categories whose versions are
# approved by the system when their rating is low and every policy passes (none by default).
WARDEN_RISK_RUBRIC = env_str("WARDEN_RISK_RUBRIC", "default")
WARDEN_POLICY_DIR = Path(env_str("WARDEN_POLICY_DIR", str(BASE_DIR / "policies")))
WARDEN_EXEMPTION_MAX_DAYS = env_int("WARDEN_EXEMPTION_MAX_DAYS", 365, minimum=1)
WARDEN_EXEMPTION_WARN_DAYS = env_int("WARDEN_EXEMPTION_WARN_DAYS", 14, minimum=0)
WARDEN_AUTO_APPROVE_CATEGORIES = env_list("WARDEN_AUTO_APPROVE_CATEGORIES", [])
# ``?wait=true`` on the gate and on reports: wait at most this long for a verdict other than
# pending, polling this often. Each waiting request holds a web worker: keep it under the worker
# timeout (gunicorn: 30 s by default); CI asks again while the verdict is pending.
WARDEN_GATE_WAIT_SECONDS = env_int("WARDEN_GATE_WAIT_SECONDS", 20, minimum=0)
WARDEN_GATE_WAIT_POLL_SECONDS = env_int("WARDEN_GATE_WAIT_POLL_MS", 2000, minimum=10) / 1000

# The TUF repository hosts update through (docs/hosts.md, docs/runbook.md "TUF keys"): one PEM
# (PKCS#8, Ed25519) private key file per role; `manage.py tuf_keys` generates them. The root key
# is needed only to create or rotate the root metadata: keep it offline once that is done. The
# timestamp expires after WARDEN_TUF_TIMESTAMP_EXPIRY seconds (a host that stops hearing from
# Warden then refuses its view as stale); snapshot and targets after WARDEN_TUF_SNAPSHOT_EXPIRY.
WARDEN_TUF_KEYS = {
    role: Path(env_str(f"WARDEN_TUF_{role.upper()}_KEY", str(VAR_DIR / "tuf" / f"{role}.pem")))
    for role in ("root", "targets", "snapshot", "timestamp")
}
WARDEN_TUF_TIMESTAMP_EXPIRY = env_int("WARDEN_TUF_TIMESTAMP_EXPIRY", 3600, minimum=900)  # a kill switch bites within it
WARDEN_TUF_SNAPSHOT_EXPIRY = env_int("WARDEN_TUF_SNAPSHOT_EXPIRY", 7 * 24 * 3600, minimum=3600)

"""Settings for hybridrec, read from the environment once, each with an embedded default.

Every variable here has a line in the README. The defaults need nothing running:
SQLite, bundle files under ``media/``, Celery tasks run in-process.
"""

import ipaddress
import os
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name, default=""):
    return os.environ.get(name, default)


def env_bool(name, default=False):
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean (use true or false).")


def env_int(name, default):
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not an integer.") from None


def env_float(name, default):
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a number.") from None


def env_list(name, default=()):
    value = os.environ.get(name)
    if value is None:
        return list(default)
    return [part.strip() for part in value.split(",") if part.strip()]


def _development_secret_key(path=BASE_DIR / ".secret_key"):
    """Return a per-checkout key kept in a git-ignored file, creating it once, readable by its owner only."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    key = secrets.token_urlsafe(50)
    try:
        # Created with mode 0600 at once (never readable by others, whatever the umask); O_EXCL
        # makes processes starting together agree on the first key written.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(descriptor, "w") as handle:
        handle.write(key)
    return key


DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = env_str("DJANGO_SECRET_KEY") or _development_secret_key()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])

# HTTPS in production (all off by default, for development on loopback). `manage.py check
# --deploy` passes with DJANGO_SECURE_SSL_REDIRECT, DJANGO_SECURE_HSTS_SECONDS, and the two
# DJANGO_*_COOKIE_SECURE set; the README lists them.
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", False)
# Load balancers probe health over plain HTTP inside the network.
SECURE_REDIRECT_EXEMPT = env_list("DJANGO_SECURE_REDIRECT_EXEMPT", [r"^api/v1/health"])
SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", False)
SESSION_COOKIE_SECURE = env_bool("DJANGO_SESSION_COOKIE_SECURE", False)
CSRF_COOKIE_SECURE = env_bool("DJANGO_CSRF_COOKIE_SECURE", False)
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")
# Behind a TLS-terminating proxy: the header (and value) it sets on HTTPS requests, e.g.
# "HTTP_X_FORWARDED_PROTO,https". Only set it when the proxy always sets or strips it.
_proxy_ssl_header = env_list("DJANGO_SECURE_PROXY_SSL_HEADER")
if _proxy_ssl_header and len(_proxy_ssl_header) != 2:
    raise ImproperlyConfigured(
        "DJANGO_SECURE_PROXY_SSL_HEADER must be a header and a value, e.g. HTTP_X_FORWARDED_PROTO,https."
    )
SECURE_PROXY_SSL_HEADER = tuple(_proxy_ssl_header) or None

INSTALLED_APPS = [
    "hybridrec.apps.HybridrecAdminConfig",  # django.contrib.admin with the project's site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "hybridrec.apps.HybridrecConfig",
    "modelstore",
    "recommendations",
    "recommendations.training",
    "recommendations.experiments",
    "recommendations.feedback",
]

MIDDLEWARE = [
    "hybridrec.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files straight after security, before anything that reads a session or a user.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "hybridrec.metrics.RequestMetricsMiddleware",
]

ROOT_URLCONF = "hybridrec.urls"
WSGI_APPLICATION = "hybridrec.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # A database host that drops packets must not hold a request (or the version check) for the
    # operating system's TCP timeout: give up after this many seconds and answer 503.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
        "connect_timeout", env_int("DATABASE_CONNECT_TIMEOUT", 5)
    )
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded default has several writers (web workers' exposure flushers, a start or stop,
    # an upload): a transaction takes the write lock when it begins and waits for it up to
    # `timeout` seconds, rather than failing with "database is locked" when it upgrades a read.
    # WAL lets the readers (every request) go on while one process writes.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"transaction_mode": "IMMEDIATE", "timeout": 20, "init_command": "PRAGMA journal_mode=WAL;"}
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT") or BASE_DIR / "staticfiles")
MEDIA_URL = "media/"
# collectstatic writes hashed, gzip-compressed copies and a manifest; WhiteNoise serves them from the
# app (under gunicorn too) with far-future cache headers. `make serve` runs collectstatic first.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "hybridrec.staticfiles.StaticFilesStorage"},
}
# Before collectstatic (or under runserver), WhiteNoise serves the apps' own static folders, with
# short cache headers; collected files take precedence.
WHITENOISE_USE_FINDERS = True
MEDIA_ROOT = Path(env_str("MEDIA_ROOT") or BASE_DIR / "media")

# --- Object storage: HYBRIDREC_STORAGE=s3 keeps bundles and training uploads in a bucket ------
# django-storages' S3 backend, configured with its own AWS_* names. Every node keeps the bundles
# it serves in HYBRIDREC_BUNDLE_CACHE_DIR (see modelstore/node_cache.py).
HYBRIDREC_STORAGE = (env_str("HYBRIDREC_STORAGE") or "local").lower()
if HYBRIDREC_STORAGE not in ("local", "s3"):
    raise ImproperlyConfigured("HYBRIDREC_STORAGE must be local or s3")
if HYBRIDREC_STORAGE == "s3":
    import botocore.config

    AWS_STORAGE_BUCKET_NAME = env_str("AWS_STORAGE_BUCKET_NAME")
    if not AWS_STORAGE_BUCKET_NAME:
        raise ImproperlyConfigured("HYBRIDREC_STORAGE=s3 needs AWS_STORAGE_BUCKET_NAME")
    AWS_S3_ENDPOINT_URL = env_str("AWS_S3_ENDPOINT_URL") or None
    AWS_S3_REGION_NAME = env_str("AWS_S3_REGION_NAME") or None
    AWS_ACCESS_KEY_ID = env_str("AWS_ACCESS_KEY_ID") or None
    AWS_SECRET_ACCESS_KEY = env_str("AWS_SECRET_ACCESS_KEY") or None
    AWS_LOCATION = env_str("AWS_LOCATION") or ""
    # Names are content hashes: never rename on collision, never make objects public.
    AWS_S3_FILE_OVERWRITE = False
    AWS_DEFAULT_ACL = None
    AWS_QUERYSTRING_AUTH = True
    # A stopped S3 fails a request within seconds instead of hanging a web worker.
    AWS_S3_CLIENT_CONFIG = botocore.config.Config(
        connect_timeout=env_int("AWS_S3_CONNECT_TIMEOUT", 2),
        read_timeout=env_int("AWS_S3_READ_TIMEOUT", 30),
        retries={"max_attempts": env_int("AWS_S3_MAX_ATTEMPTS", 2), "mode": "standard"},
    )
    STORAGES["default"] = {"BACKEND": "storages.backends.s3.S3Storage"}

# Uploads larger than this go to a temporary file while they stream, never to memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

# --- Celery: no broker configured = tasks run in-process -------------------------------
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL") or env_str("REDIS_URL")
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND") or None
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A message taken by a worker that then died (kill -9, lost machine) goes back to the queue
# after this many seconds; it must be longer than the longest task, or a task runs twice.
HYBRIDREC_TASK_VISIBILITY_SECONDS = env_int("HYBRIDREC_TASK_VISIBILITY_SECONDS", 3 * 3600)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": HYBRIDREC_TASK_VISIBILITY_SECONDS,
    "socket_connect_timeout": 2,
    "socket_timeout": 10,
}
# Publishing gives up within about a second when the broker is down: an upload answers 503.
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.5,
    "interval_max": 1,
}
CELERY_BROKER_CONNECTION_TIMEOUT = 2
# Rows left pending or verifying longer than HYBRIDREC_STUCK_VERIFY_SECONDS are queued again;
# building rows older than HYBRIDREC_STUCK_BUILD_SECONDS are marked failed. The sweep runs at
# worker start and every HYBRIDREC_SWEEP_SECONDS from Celery beat (``celery worker --beat``).
HYBRIDREC_STUCK_VERIFY_SECONDS = env_int("HYBRIDREC_STUCK_VERIFY_SECONDS", 60)
HYBRIDREC_STUCK_BUILD_SECONDS = env_int("HYBRIDREC_STUCK_BUILD_SECONDS", 3 * 3600)
HYBRIDREC_SWEEP_SECONDS = env_int("HYBRIDREC_SWEEP_SECONDS", 30)
CELERY_BEAT_SCHEDULE = {
    "sweep-stuck-versions": {
        "task": "modelstore.tasks.sweep_stuck_versions",
        "schedule": max(HYBRIDREC_SWEEP_SECONDS, 1),
    },
}

# --- hybridrec ---------------------------------------------------------------------------
HYBRIDREC_CF_ARTIFACTS = env_str("HYBRIDREC_CF_ARTIFACTS") or None
HYBRIDREC_CB_ARTIFACTS = env_str("HYBRIDREC_CB_ARTIFACTS") or None
HYBRIDREC_ARTIFACT_ROOTS = [
    Path(p) for p in env_list("HYBRIDREC_ARTIFACT_ROOTS", [str(BASE_DIR / "artifacts")])
]
HYBRIDREC_BUNDLE_CACHE_DIR = Path(env_str("HYBRIDREC_BUNDLE_CACHE_DIR") or MEDIA_ROOT / "cache")
# The node cache evicts bundles no process serves once it holds more than this (0: no limit).
HYBRIDREC_BUNDLE_CACHE_BYTES = env_int("HYBRIDREC_BUNDLE_CACHE_BYTES", 0)
HYBRIDREC_MAX_UPLOAD_BYTES = env_int("HYBRIDREC_MAX_UPLOAD_BYTES", 2 * 1024**3)
# What one bundle or artifact file may expand to and make the loader allocate, and how many
# times its own size a compressed one may expand to (small files: at least 64 MiB).
HYBRIDREC_MAX_BUNDLE_BYTES = env_int("HYBRIDREC_MAX_BUNDLE_BYTES", 4 * 1024**3)
HYBRIDREC_MAX_COMPRESSION_RATIO = env_int("HYBRIDREC_MAX_COMPRESSION_RATIO", 50)
HYBRIDREC_MAX_K = env_int("HYBRIDREC_MAX_K", 100)
HYBRIDREC_DEFAULT_K = env_int("HYBRIDREC_DEFAULT_K", 10)
HYBRIDREC_MAX_BATCH = env_int("HYBRIDREC_MAX_BATCH", 100)
HYBRIDREC_HYBRID_WEIGHT = env_float("HYBRIDREC_HYBRID_WEIGHT", 0.9)
HYBRIDREC_VERSION_CHECK_SECONDS = env_float("HYBRIDREC_VERSION_CHECK_SECONDS", 1.0)
HYBRIDREC_CB_PRELOAD = env_str("HYBRIDREC_CB_PRELOAD", "lazy")
if HYBRIDREC_CB_PRELOAD not in {"lazy", "background"}:
    raise ImproperlyConfigured(
        f"HYBRIDREC_CB_PRELOAD={HYBRIDREC_CB_PRELOAD!r} is not one of 'lazy', 'background'."
    )
HYBRIDREC_PUBLIC_API = env_bool("HYBRIDREC_PUBLIC_API", False)
# Experiments: how often each process writes the exposures it buffered (a kill -9 loses at most
# this much), and how many it buffers at most before it drops (and counts) new ones.
HYBRIDREC_EXPERIMENT_FLUSH_SECONDS = env_float("HYBRIDREC_EXPERIMENT_FLUSH_SECONDS", 2.0)
HYBRIDREC_EXPERIMENT_BUFFER = env_int("HYBRIDREC_EXPERIMENT_BUFFER", 100_000)

# --- events (POST /api/v1/events/) and experiment results ------------------------------------
# A batch holds at most this many events and this many bytes; an event's ts at most this old.
HYBRIDREC_EVENTS_MAX_BATCH = env_int("HYBRIDREC_EVENTS_MAX_BATCH", 1000)
HYBRIDREC_EVENTS_MAX_BODY_BYTES = env_int("HYBRIDREC_EVENTS_MAX_BODY_BYTES", 2 * 1024 * 1024)
HYBRIDREC_EVENTS_MAX_AGE_SECONDS = env_int("HYBRIDREC_EVENTS_MAX_AGE_SECONDS", 7 * 86400)
# An event without request_id counts for an experiment when the same customer was served the
# item at most this many seconds before it (docs/EXPERIMENTS.md, "Attribution").
HYBRIDREC_ATTRIBUTION_WINDOW = env_int("HYBRIDREC_ATTRIBUTION_WINDOW", 86400)
# An event counts only after the answer it is matched to; a client clock this many seconds
# behind the server's is forgiven (docs/EXPERIMENTS.md, "What counts once").
HYBRIDREC_ATTRIBUTION_CLOCK_SKEW_SECONDS = env_int("HYBRIDREC_ATTRIBUTION_CLOCK_SKEW_SECONDS", 60)
# The plan an experiment's results page reads its sample size from: the control's expected
# click-through, the smallest absolute difference worth finding, the power to find it.
HYBRIDREC_EXPERIMENT_BASELINE_RATE = env_float("HYBRIDREC_EXPERIMENT_BASELINE_RATE", 0.05)
HYBRIDREC_EXPERIMENT_MIN_EFFECT = env_float("HYBRIDREC_EXPERIMENT_MIN_EFFECT", 0.01)
HYBRIDREC_EXPERIMENT_POWER = env_float("HYBRIDREC_EXPERIMENT_POWER", 0.8)
HYBRIDREC_EXPERIMENT_ALPHA = env_float("HYBRIDREC_EXPERIMENT_ALPHA", 0.05)
# Durations become timedeltas and are subtracted from the clock: a hundred years is plenty, and
# keeps every one of them far inside what a datetime can hold.
_MAX_DURATION_SECONDS = 100 * 365 * 86400
for _name, _low, _high in (
    ("HYBRIDREC_EVENTS_MAX_BATCH", 1, None),
    ("HYBRIDREC_EVENTS_MAX_BODY_BYTES", 1024, None),
    ("HYBRIDREC_EVENTS_MAX_AGE_SECONDS", 1, _MAX_DURATION_SECONDS),
    ("HYBRIDREC_ATTRIBUTION_WINDOW", 0, _MAX_DURATION_SECONDS),
    ("HYBRIDREC_ATTRIBUTION_CLOCK_SKEW_SECONDS", 0, _MAX_DURATION_SECONDS),
):
    if globals()[_name] < _low:
        raise ImproperlyConfigured(f"{_name}={globals()[_name]!r} must be at least {_low}.")
    if _high is not None and globals()[_name] > _high:
        raise ImproperlyConfigured(f"{_name}={globals()[_name]!r} must be at most {_high} (100 years).")
for _name in (
    "HYBRIDREC_EXPERIMENT_POWER",
    "HYBRIDREC_EXPERIMENT_ALPHA",
    "HYBRIDREC_EXPERIMENT_BASELINE_RATE",
):
    if not 0 < globals()[_name] < 1:
        raise ImproperlyConfigured(f"{_name}={globals()[_name]!r} must be between 0 and 1 (exclusive).")
if (
    not 0 < HYBRIDREC_EXPERIMENT_BASELINE_RATE + HYBRIDREC_EXPERIMENT_MIN_EFFECT < 1
    or not HYBRIDREC_EXPERIMENT_MIN_EFFECT
):
    raise ImproperlyConfigured(
        f"HYBRIDREC_EXPERIMENT_MIN_EFFECT={HYBRIDREC_EXPERIMENT_MIN_EFFECT!r} must not be 0, and the baseline "
        "plus it must stay between 0 and 1."
    )

# --- REST framework ----------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.AllowAny"
        if HYBRIDREC_PUBLIC_API
        else "rest_framework.permissions.IsAuthenticated",
    ],
    "DEFAULT_PARSER_CLASSES": [
        "hybridrec.api.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"]
    + (["rest_framework.renderers.BrowsableAPIRenderer"] if DEBUG else []),
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.ScopedRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "recommendations": env_str("HYBRIDREC_THROTTLE_RECOMMENDATIONS", "6000/min"),
        "batch": env_str("HYBRIDREC_THROTTLE_BATCH", "600/min"),
        "models": env_str("HYBRIDREC_THROTTLE_MODELS", "600/min"),
        "health": env_str("HYBRIDREC_THROTTLE_HEALTH", "6000/min"),
        "events": env_str("HYBRIDREC_THROTTLE_EVENTS", "1200/min"),
    },
    "EXCEPTION_HANDLER": "hybridrec.api.errors.exception_handler",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "hybridrec API",
    "DESCRIPTION": "Recommendations from the active hybrid recommender model versions.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema and its Swagger UI are as public as the API itself.
    "SERVE_PERMISSIONS": REST_FRAMEWORK["DEFAULT_PERMISSION_CLASSES"],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "hybridrec.api.schema.add_shared_responses",
        "hybridrec.api.schema.add_summaries",
    ],
    # Several answers have a "status"; the experiments' own gets its own name.
    "ENUM_NAME_OVERRIDES": {"ExperimentStatusEnum": "recommendations.experiments.models.Experiment.Status"},
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Throttle counters live in the cache. LocMemCache is per process: each gunicorn worker counts
# on its own. With REDIS_URL (or HYBRIDREC_CACHE_URL) every worker shares one count.
REDIS_URL = env_str("REDIS_URL")
HYBRIDREC_CACHE_URL = env_str("HYBRIDREC_CACHE_URL") or REDIS_URL
if HYBRIDREC_CACHE_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": HYBRIDREC_CACHE_URL,
            "KEY_PREFIX": "hybridrec",
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- one swap for all: activations announced on Redis pub/sub --------------------------------
# With REDIS_URL, activation, rollback and withdrawal publish the kind on this channel after the
# commit, and every serving process checks at once; polling stays the fallback.
HYBRIDREC_SWAP_CHANNEL = env_str("HYBRIDREC_SWAP_CHANNEL", "hybridrec:swap")

# --- /metrics (Prometheus): refused unless the bearer token matches or the client's address is
# in one of the allowed networks (comma-separated, e.g. "10.0.0.0/8,127.0.0.1/32").
HYBRIDREC_METRICS_TOKEN = env_str("HYBRIDREC_METRICS_TOKEN")
HYBRIDREC_METRICS_ALLOW = env_list("HYBRIDREC_METRICS_ALLOW", [])
for _network in HYBRIDREC_METRICS_ALLOW:
    try:
        ipaddress.ip_network(_network, strict=False)
    except ValueError as _exc:
        raise ImproperlyConfigured(f"HYBRIDREC_METRICS_ALLOW: {_exc}") from None

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "hybridrec.middleware.RequestIdFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["request_id"]},
    },
    "loggers": {
        # Every 500 with its traceback and request id (Django alone only mails them to ADMINS).
        "django.request": {"handlers": ["console"], "level": "ERROR", "propagate": False},
        "hybridrec": {"handlers": ["console"], "level": env_str("HYBRIDREC_LOG_LEVEL", "INFO")},
        "modelstore": {"handlers": ["console"], "level": env_str("HYBRIDREC_LOG_LEVEL", "INFO")},
        "recommendations": {"handlers": ["console"], "level": env_str("HYBRIDREC_LOG_LEVEL", "INFO")},
    },
}

# --- error tracking: only when SENTRY_DSN is set ----------------------------------------------
SENTRY_DSN = env_str("SENTRY_DSN")
if SENTRY_DSN:
    import sentry_sdk

    sentry_sdk.init(
        dsn=SENTRY_DSN,
        environment=env_str("SENTRY_ENVIRONMENT") or None,
        traces_sample_rate=env_float("SENTRY_TRACES_SAMPLE_RATE", 0.0),
        send_default_pii=False,
    )

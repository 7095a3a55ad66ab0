"""Tests: the real PostgreSQL and Redis from the environment, fast password hashing, eager Celery
unless a test starts a real worker, e-mail kept in memory."""

from .development import *  # noqa: F403
from .development import CELERY_BEAT_SCHEDULE  # noqa: F401

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True
CACHES["default"]["KEY_PREFIX"] = "ch-test"  # noqa: F405
LOGGING["root"]["level"] = "WARNING"  # noqa: F405

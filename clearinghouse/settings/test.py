"""Tests: the real PostgreSQL and Redis from the environment, fast password hashing, eager Celery
unless a test starts a real worker, e-mail kept in memory.

The tests use their own Redis database (TEST_REDIS_DB, default 9) for the cache and the broker,
so that a `make run` stack on the same Redis never picks up a test's tasks, nor a test its tasks.
"""

import os
import uuid
from urllib.parse import urlsplit, urlunsplit

from .development import *  # noqa: F403
from .development import CACHES, LOGGING, REDIS_URL, env


def _redis_db(url, db):
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{db}"))


TEST_REDIS_URL = _redis_db(REDIS_URL, env("TEST_REDIS_DB", "9"))
REDIS_URL = TEST_REDIS_URL
CACHES["default"]["LOCATION"] = TEST_REDIS_URL
CACHES["default"]["KEY_PREFIX"] = "ch-test"
CELERY_BROKER_URL = TEST_REDIS_URL
# A queue of this test session's own (inherited by the workers it starts), so that two test
# sessions on one Redis never run each other's tasks against the wrong database.
CELERY_TASK_DEFAULT_QUEUE = os.environ.setdefault(
    "TEST_CELERY_QUEUE", f"tests-{uuid.uuid4().hex[:12]}"
)
CELERY_RESULT_BACKEND = TEST_REDIS_URL

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True
LOGGING["root"]["level"] = env("LOG_LEVEL", "WARNING")

"""Benchmarks (``bench/``): development settings without DEBUG (query logging would distort time
and memory), quiet logs, no practical rate limit, and the extra route of the naive endpoint.

The benchmark scripts set DATABASE_URL to a database of their own and REDIS_URL to a Redis
database of their own; cache and broker follow REDIS_URL.
"""

from .development import *  # noqa: F403
from .development import ALLOWED_HOSTS, CACHES, LOGGING, REDIS_URL

DEBUG = False
ROOT_URLCONF = "bench.urls"
ALLOWED_HOSTS = sorted({*ALLOWED_HOSTS, "127.0.0.1", "localhost"})
API_RATE_LIMIT_PER_MINUTE = 10**9

CACHES["default"]["LOCATION"] = REDIS_URL
CACHES["default"]["KEY_PREFIX"] = "ch-bench"
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL
CELERY_TASK_ALWAYS_EAGER = False

LOGGING["root"]["level"] = "WARNING"
# The naive endpoint (bench/naive.py) reads a whole 10,000-row JSON array through request.body,
# which Django caps at 2.5 MB by default; a bulk endpoint built that way raises the cap. The real
# endpoint streams the body and never meets this limit.
DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024 * 1024
WHITENOISE_AUTOREFRESH = False

"""Fault injection: real worker, Redis and PostgreSQL processes on 127.0.0.1, killed, stopped and
restarted while work is under way. Every wait is on progress (tests/support/waiting.py) and
bounded by a ceiling."""

import pytest
from django.db import connection

from tests.telemetry.conftest import fleet  # noqa: F401 (the maker, shop and other maker)

# A killed worker's unacknowledged task is delivered again within seconds (in production: an
# hour, and five minutes for the restore lock a dead worker may hold).
FAST_RESTORE = {
    "CELERY_VISIBILITY_TIMEOUT": 3,
    "CELERY_UNACKED_MUTEX_EXPIRE": 2,
    "CELERY_UNACKED_RESTORE_INTERVAL": 1,
    "CELERY_UNACKED_RESTORE_THROTTLE": 1,
}


@pytest.fixture
def clean_readings():
    """The readings table is unmanaged, so the transactional flush leaves it alone."""
    yield
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE telemetry_reading")

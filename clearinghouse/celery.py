"""The Celery application.

Redis is the broker. Tasks are acknowledged late and rejected when their worker is lost, so a
killed worker's task is delivered again instead of vanishing; every task must therefore be
idempotent. Tasks are only ever enqueued after the transaction that justifies them commits
(``transaction.on_commit``), never from inside it.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clearinghouse.settings.development")

app = Celery("clearinghouse")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

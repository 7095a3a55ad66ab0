"""The Celery application.

Redis is the broker. Tasks are acknowledged late and rejected when their worker is lost, so a
killed worker's task is delivered again instead of vanishing; every task must therefore be
idempotent. Tasks are only ever enqueued after the transaction that justifies them commits
(``transaction.on_commit``), never from inside it.
"""

import os

from celery import Celery
from celery.signals import before_task_publish, task_postrun, task_prerun, worker_process_init

from .logs import request_id
from .runtime import settle

# As wsgi.py and asgi.py: importing the package (every entry point does, before its own module
# runs) must not choose the development settings, whose DEBUG shows tracebacks to anyone.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clearinghouse.settings.production")

app = Celery("clearinghouse")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


# The request id travels with the tasks a request enqueues, so that the worker's log records of
# a task carry the id of the request that caused it (clearinghouse/logs.py).
@before_task_publish.connect
def _send_request_id(headers=None, **kwargs):
    rid = request_id.get()
    if rid and headers is not None:
        headers.setdefault("request_id", rid)


@task_prerun.connect
def _adopt_request_id(task=None, **kwargs):
    rid = getattr(task.request, "request_id", None) if task else None
    task.request.request_id_token = request_id.set(rid) if rid else None


@task_postrun.connect
def _drop_request_id(task=None, **kwargs):
    token = getattr(task.request, "request_id_token", None) if task else None
    if token is not None:
        request_id.reset(token)


@worker_process_init.connect
def _settle(**kwargs):
    settle()

"""Real processes for tests: a Celery worker on the test database and the test broker. Wait for
their work with ``tests.support.waiting`` (``worker_progress`` measures a worker's)."""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import dj_database_url
from django.conf import settings
from django.db import connection

from .waiting import file_size, process_cpu, wait_for

ROOT = Path(__file__).resolve().parent.parent.parent


def test_database_url():
    """The URL of the database pytest-django created, for processes started by a test."""
    s = connection.settings_dict
    return (
        f"postgres://{s['USER'] or 'postgres'}"
        + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
        + f"@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"
    )


def process_env(**extra):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "clearinghouse.settings.test",
        "DATABASE_URL": test_database_url(),
        "PYTHONUNBUFFERED": "1",
    }
    env.update({k: str(v) for k, v in extra.items()})
    assert dj_database_url.parse(env["DATABASE_URL"])["NAME"].startswith("test_")
    return env


@contextlib.contextmanager
def celery_worker(*, concurrency=1, pool="prefork", queues=None, log_path=None, **env):
    """Start `celery worker` as a separate OS process; stop it (or what is left of it) after.
    Yields its ``Popen``, with ``log_path`` set to the log it appends to."""
    from clearinghouse.celery import app

    queues = queues or settings.CELERY_TASK_DEFAULT_QUEUE
    name = f"test-{os.getpid()}-{time.monotonic_ns()}@{socket.gethostname()}"
    # A log of this session's own: another session's workers writing to it would look like
    # progress to this session's waits.
    log_path = log_path or ROOT / ".data" / f"test-worker-{os.getpid()}.log"
    log_path.parent.mkdir(exist_ok=True)
    log = open(log_path, "ab")  # noqa: SIM115
    cmd = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "clearinghouse",
        "worker",
        "--loglevel",
        "INFO",
        "--pool",
        pool,
        "--concurrency",
        str(concurrency),
        "--queues",
        queues,
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "--hostname",
        name,
    ]
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=process_env(**env),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    proc.log_path = log_path
    try:
        _wait_until_ready(app, proc, name)
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def _wait_until_ready(app, proc, name):
    def answers():
        if proc.poll() is not None:
            raise RuntimeError(f"the worker exited with {proc.returncode}; see {proc.log_path}")
        return app.control.ping(destination=[name], timeout=1)

    wait_for(
        answers,
        what=f"the worker to answer a ping (its log: {proc.log_path})",
        progress={
            "worker log bytes": lambda: file_size(proc.log_path),
            "worker cpu s": lambda: process_cpu(proc.pid),
        },
    )


@contextlib.contextmanager
def real_broker():
    """Send tasks to the broker for this block instead of running them eagerly."""
    from clearinghouse.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = False
    settings.CELERY_TASK_ALWAYS_EAGER = False
    try:
        yield app
    finally:
        app.conf.task_always_eager = previous
        settings.CELERY_TASK_ALWAYS_EAGER = previous


def queued_tasks():
    """How many tasks wait in this session's queue on the test broker (a worker's prefetched or
    running ones not counted): a test that sends a sweep again sends it once this is 0, so that
    the sweeps never pile up ahead of the work they enqueue."""
    import redis

    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    try:
        return client.llen(settings.CELERY_TASK_DEFAULT_QUEUE)
    finally:
        client.close()

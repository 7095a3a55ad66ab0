"""Private servers for fault tests, all on 127.0.0.1 and free ports: a Redis, a PostgreSQL cluster
(initdb into a temporary directory), gunicorn and a Celery worker pointed at them. The shared
servers are never touched; everything started here is stopped by the same block. Each start-up
and each command waits on progress (its log, its CPU time: ``tests.support.waiting``), never on a
fixed total."""

import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
import redis
from celery import Celery

from tests.support.processes import ROOT
from tests.support.waiting import file_size, process_cpu, run, wait_for

SERVER_SETTINGS = "clearinghouse.settings.development"
LOG_DIR = ROOT / ".data" / "faults"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _log(name):
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    return open(LOG_DIR / f"{name}-{os.getpid()}.log", "ab")


def _stop(proc, sig=signal.SIGTERM, timeout=15):
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout=timeout)  # a graceful stop's grace, then no more
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _started(proc, log, answers, what, ignoring):
    """Wait until ``answers()`` is true for the process just started, on its log and CPU time.
    Its exit ends the wait at once."""

    def ready():
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}; see {log}")
        return answers()

    wait_for(
        ready,
        what=f"{what} to answer (its log: {log})",
        progress={
            "log bytes": lambda: file_size(log),
            "cpu s": lambda: process_cpu(proc.pid),
        },
        ignoring=ignoring,
    )


class _Process:
    """A server process of ours: started by ``start``, stopped by ``stop`` or the block's end."""

    proc = None

    def stop(self):
        _stop(self.proc)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class RedisServer(_Process):
    """redis-server without persistence: a restart loses every queued task, as a crash would."""

    def __init__(self):
        self.port = free_port()
        self.proc = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self):
        log = _log("redis")
        self.proc = subprocess.Popen(
            [
                *("redis-server", "--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--protected-mode", "yes"),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=1, socket_timeout=1)
        _started(self.proc, log.name, client.ping, "redis-server", redis.RedisError)
        return self

    def stop(self):
        _stop(self.proc, signal.SIGKILL)  # gone at once, with whatever it held


class PostgresCluster:
    """A cluster of its own: initdb into a temporary directory, a free port, trust on loopback.
    As root it runs as the ``postgres`` user, which must traverse the folders down to it."""

    def __init__(self):
        self.port = free_port()
        bindirs = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
        if not bindirs:
            raise RuntimeError("PostgreSQL's server binaries are not installed")
        self.bin = bindirs[-1]
        self.root = Path(tempfile.mkdtemp(prefix="ch-faults-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self.as_postgres = []
        if os.geteuid() == 0:
            self.as_postgres = ["runuser", "-u", "postgres", "--"]
            os.chmod(self.root, 0o711)
            shutil.chown(self.root, "postgres")
            directory = self.root.parent
            while directory != directory.parent:
                mode = directory.stat().st_mode
                if not mode & 0o001:
                    os.chmod(directory, mode | 0o001)
                directory = directory.parent

    def url(self, name):
        return f"postgres://postgres@127.0.0.1:{self.port}/{name}"

    def _run(self, *args, what):
        return run([*self.as_postgres, *args], what=what, merge_stderr=True, also=self.progress())

    def progress(self):
        """Measures of the cluster at work: its log and its server processes' CPU time."""
        return {
            "server log bytes": lambda: file_size(self.log),
            "server cpu s": lambda: process_cpu(self._postmaster() or -1),
        }

    def _postmaster(self):
        """The postmaster's process id while its lock file exists (it leads its process group:
        pg_ctl starts it in a session of its own)."""
        with contextlib.suppress(FileNotFoundError, ValueError):
            return int((self.data / "postmaster.pid").read_text().split()[0])
        return None

    def _accepts(self):
        psycopg.connect(self.url("postgres"), connect_timeout=5).close()
        return True

    def init(self):
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-instructions",
            what="initdb",
        )
        return self

    def start(self):
        """Start the server (pg_ctl without its own fixed wait) and wait until it accepts
        connections, on its log and CPU time: a crash recovery may take a while."""
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-W",
            "-o",
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c max_connections=50",
            "start",
            what="pg_ctl start",
        )
        wait_for(
            self._accepts,
            what=f"PostgreSQL to accept connections (its log: {self.log})",
            progress=self.progress(),
            ignoring=psycopg.OperationalError,
        )

    def stop(self, mode="fast"):
        pg_ctl = str(self.bin / "pg_ctl")
        self._run(pg_ctl, "-D", str(self.data), "-m", mode, "-W", "stop", what="pg_ctl stop")
        wait_for(
            lambda: self._postmaster() is None,
            what=f"PostgreSQL to stop (its log: {self.log})",
            progress=self.progress(),
        )

    def psql(self, database, *args):
        return run(
            [
                *(str(self.bin / "psql"), "-h", "127.0.0.1", "-p", str(self.port)),
                *("-U", "postgres", "-v", "ON_ERROR_STOP=1", "-q", "-d", database, *args),
            ],
            what=f"psql {' '.join(args)}",
            merge_stderr=True,
            also=self.progress(),
        )

    def destroy(self):
        with contextlib.suppress(Exception):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self):
        self.init().start()
        return self

    def __exit__(self, *exc):
        self.destroy()


def copy_schema(source_url, cluster, name):
    """Create ``name`` in ``cluster`` with the schema of the database at ``source_url`` (the
    migrated test database): a dump is much faster than running every migration again."""
    bindir = cluster.bin
    cluster.psql("postgres", "-c", f'CREATE DATABASE "{name}"')
    dump = run(
        [str(bindir / "pg_dump"), "--schema-only", "--no-owner", source_url],
        what="pg_dump of the test database's schema",
    ).stdout
    run(
        [str(bindir / "psql"), "-q", "-v", "ON_ERROR_STOP=1", cluster.url(name)],
        what="the schema's load into the private cluster",
        input=dump,
        also=cluster.progress(),
    )


def server_env(*, database_url, redis_url, **extra):
    """The environment of a web or worker process of ours: development settings without DEBUG,
    the private database and Redis (cache, broker and rate limits all follow REDIS_URL)."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": SERVER_SETTINGS,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "DEBUG": "false",
        "PYTHONUNBUFFERED": "1",
        "LOG_LEVEL": "WARNING",
        "DATABASE_CONN_MAX_AGE": "60",
    }
    for name in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "TEST_CELERY_QUEUE"):
        env.pop(name, None)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def healthy(port):
    """Whether the server on ``port`` answers /healthz with 200 (both PostgreSQL and Redis up)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/healthz")
        return conn.getresponse().status == 200
    finally:
        conn.close()


class Gunicorn(_Process):
    def __init__(self, env, workers=2):
        self.env, self.workers, self.port, self.proc = env, workers, free_port(), None

    def start(self):
        log = _log("gunicorn")
        self.proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "gunicorn", "clearinghouse.wsgi:application"),
                *("--config", "python:clearinghouse.serving"),
                *("--workers", str(self.workers), "--bind", f"127.0.0.1:{self.port}"),
                *("--timeout", "30", "--graceful-timeout", "5"),
            ],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        ignoring = (OSError, http.client.HTTPException)
        _started(self.proc, log.name, lambda: healthy(self.port), "gunicorn", ignoring)
        return self


class Worker(_Process):
    """`celery worker` of the server settings on the private Redis; ready when it answers a
    ping through a Celery app of the test's own that points at the same broker."""

    def __init__(self, env, broker_url):
        self.env, self.proc = env, None
        self.name = f"faults-{os.getpid()}-{time.monotonic_ns()}@{socket.gethostname()}"
        self.app = Celery("faults-client", broker=broker_url, set_as_current=False)
        self.app.conf.update(
            task_ignore_result=True,
            broker_connection_retry_on_startup=True,
            worker_hijack_root_logger=False,
        )

    def start(self):
        log = _log("worker")
        self.proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "celery", "-A", "clearinghouse", "worker"),
                *("--loglevel", "INFO", "--pool", "prefork", "--concurrency", "1"),
                *("--hostname", self.name, "--without-gossip", "--without-mingle"),
                "--without-heartbeat",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.log_path = log.name
        _started(self.proc, log.name, self.ping, "the worker", ())
        return self

    def ping(self):
        return self.app.control.ping(destination=[self.name], timeout=1)

    def send(self, name, *args):
        """Enqueue a task by name, as beat would."""
        self.app.send_task(name, args=list(args))


class Api:
    """A tiny HTTP client for the private server: (status, headers, parsed body, seconds)."""

    def __init__(self, port, key, timeout=20):
        self.port, self.key, self.timeout = port, key, timeout

    def call(self, method, path, body=None, content_type="application/json"):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        headers = {"Authorization": f"Bearer {self.key}"}
        if body is not None:
            headers["Content-Type"] = content_type
            body = json.dumps(body).encode() if not isinstance(body, bytes) else body
        started = time.monotonic()
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
        finally:
            conn.close()
        parsed = None
        with contextlib.suppress(ValueError):
            parsed = json.loads(data)
        return response.status, dict(response.getheaders()), parsed, time.monotonic() - started

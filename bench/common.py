"""Shared helpers of the benchmark scripts: a throw-away PostgreSQL database and Redis database,
gunicorn started on a free loopback port, a keep-alive HTTP client, percentiles and the peak
memory of gunicorn's workers.

Progress goes to stderr (``log``), figures to stdout. Nothing here touches the demo database:
each run creates ``clearinghouse_bench_<pid>`` on DATABASE_URL's server and drops it at the end.
"""

import argparse
import contextlib
import http.client
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
PYTHON = str(VENV_BIN / "python") if (VENV_BIN / "python").exists() else sys.executable
SETTINGS = "clearinghouse.settings.bench"
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:55432/clearinghouse"
DEFAULT_REDIS_URL = "redis://127.0.0.1:56379/0"

_t0 = time.monotonic()


def log(message):
    print(f"[{time.monotonic() - _t0:7.1f}s] {message}", file=sys.stderr, flush=True)


def arguments(description, **extra):
    """The options every script takes, plus ``extra`` = {name: (type, default, help)}."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--keep", action="store_true", help="keep the bench database afterwards")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    parser.add_argument(
        "--threads", type=int, default=1, help="gunicorn threads per worker (default 1: sync)"
    )
    for name, (kind, default, text) in extra.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=kind, default=default, help=text)
    return parser.parse_args()


# --- PostgreSQL and Redis ---------------------------------------------------------------------


def _with_path(url, path):
    return urlunsplit(urlsplit(url)._replace(path=path))


def bench_names(prefix="clearinghouse_bench"):
    """(database name, its DATABASE_URL, the maintenance URL of the same server)."""
    base = os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    name = f"{prefix}_{os.getpid()}"
    return name, _with_path(base, f"/{name}"), _with_path(base, "/postgres")


def bench_redis_url():
    """REDIS_URL's server, database BENCH_REDIS_DB (default 12)."""
    base = os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
    return _with_path(base, f"/{os.environ.get('BENCH_REDIS_DB', '12')}")


def _admin(maintenance_url, statement):
    import psycopg
    from psycopg import sql

    with psycopg.connect(maintenance_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql.SQL(statement[0]).format(*[sql.Identifier(n) for n in statement[1:]]))


def flush_redis(url):
    import redis

    redis.Redis.from_url(url, socket_connect_timeout=2).flushdb()


def bench_env(database_url, redis_url):
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE=SETTINGS,
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        DEBUG="false",
        PYTHONUNBUFFERED="1",
    )
    for name in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "CACHE_KEY_PREFIX"):
        env.pop(name, None)
    return env


@contextlib.contextmanager
def bench_database(*, keep=False):
    """Create the bench database and Redis db, migrate, point this process at them (os.environ)
    and yield (env, database_url, redis_url); drop both afterwards unless ``keep``."""
    name, url, maintenance = bench_names()
    redis_url = bench_redis_url()
    env = bench_env(url, redis_url)
    log(f"creating database {name} (Redis {redis_url})")
    _admin(maintenance, ("CREATE DATABASE {}", name))
    try:
        flush_redis(redis_url)
        started = time.monotonic()
        subprocess.run(
            [PYTHON, "manage.py", "migrate", "--noinput"],
            cwd=ROOT,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        log(f"migrated in {time.monotonic() - started:.1f}s")
        os.environ.update(
            {k: env[k] for k in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "REDIS_URL", "DEBUG")}
        )
        yield env, url, redis_url
    finally:
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        if keep:
            log(f"kept database {name} ({url})")
        else:
            log(f"dropping database {name}")
            try:
                _admin(maintenance, ("DROP DATABASE IF EXISTS {} WITH (FORCE)", name))
            except Exception as exc:
                log(f"could not drop {name}: {exc}")
            with contextlib.suppress(Exception):
                flush_redis(redis_url)


def django_setup():
    """Set Django up in this process against the bench database (bench_database sets env)."""
    import django

    sys.path.insert(0, str(ROOT))
    django.setup()


def setup_partners():
    """An operator, an active manufacturer and retailer (through the services), each with an
    API key holding records:write and records:read. Returns (maker, maker_key, shop, shop_key,
    maker_admin, shop_admin)."""
    from partners import services
    from partners.models import Partner, User

    operator = User.objects.create_superuser("operator@bench.example", "bench-operator-pass-123")
    made = []
    for name, kind in (
        ("Bench Maker", Partner.Kind.MANUFACTURER),
        ("Bench Shop", Partner.Kind.RETAILER),
    ):
        slug = name.split()[-1].lower()
        partner, admin = services.partner_register(
            name=name,
            kind=kind,
            contact_email=f"contact@{slug}.example",
            admin_email=f"admin@{slug}.example",
            admin_password="bench-admin-pass-123",
        )
        partner = services.partner_approve(partner=partner, actor=operator)
        issued = services.credential_create(
            partner=partner,
            name="bench",
            scopes=["records:write", "records:read"],
            created_by=admin,
        )
        made.append((partner, issued.key, admin))
    (maker, maker_key, maker_admin), (shop, shop_key, shop_admin) = made
    return maker, maker_key, shop, shop_key, maker_admin, shop_admin


# --- gunicorn ---------------------------------------------------------------------------------


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gunicorn:
    """gunicorn clearinghouse.wsgi:application on 127.0.0.1:<free port>, log in a temp file."""

    def __init__(self, env, *, workers=2, threads=1, timeout=900):
        self.env, self.workers, self.threads, self.timeout = env, workers, threads, timeout
        self.port = free_port()
        self.proc = None
        fd, self.logpath = tempfile.mkstemp(prefix="bench-gunicorn-", suffix=".log")
        os.close(fd)

    def start(self):
        command = [
            str(VENV_BIN / "gunicorn"),
            "clearinghouse.wsgi:application",
            "--config",
            "python:clearinghouse.serving",
            "--workers",
            str(self.workers),
            "--bind",
            f"127.0.0.1:{self.port}",
            "--timeout",
            str(self.timeout),
            "--graceful-timeout",
            "5",
        ]
        if self.threads > 1:
            command += ["--threads", str(self.threads)]
        log(
            f"starting gunicorn ({self.workers} workers, {self.threads} thread(s)) on port {self.port}"
        )
        with open(self.logpath, "ab") as logfile:
            self.proc = subprocess.Popen(
                command, cwd=ROOT, env=self.env, stdout=logfile, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited ({self.proc.returncode}):\n{self.log_tail()}")
            with contextlib.suppress(OSError):
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", "/healthz")
                response = conn.getresponse()
                response.read()
                conn.close()
                if response.status == 200 and len(self.worker_pids()) >= self.workers:
                    return self
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn did not answer /healthz within 60s:\n{self.log_tail()}")

    def log_tail(self, lines=40):
        try:
            return "\n".join(Path(self.logpath).read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def worker_pids(self):
        if self.proc is None:
            return []
        master = self.proc.pid
        children = Path(f"/proc/{master}/task/{master}/children")
        if children.exists():
            return [int(p) for p in children.read_text().split()]
        pids = []
        for status in Path("/proc").glob("[0-9]*/status"):
            with contextlib.suppress(OSError):
                for line in status.read_text().splitlines():
                    if line.startswith("PPid:") and int(line.split()[1]) == master:
                        pids.append(int(status.parent.name))
        return pids

    def memory(self):
        """{worker pid: (VmRSS MB, VmHWM MB)}."""
        out = {}
        for pid in self.worker_pids():
            values = {}
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith(("VmRSS:", "VmHWM:")):
                        key, amount, _unit = line.split()
                        values[key[:-1]] = int(amount) / 1024
            if values:
                out[pid] = (values.get("VmRSS", 0.0), values.get("VmHWM", 0.0))
        return out

    def reset_peaks(self):
        """Reset every worker's VmHWM to its current RSS (``clear_refs`` 5). False if refused."""
        ok = True
        for pid in self.worker_pids():
            try:
                Path(f"/proc/{pid}/clear_refs").write_text("5")
            except OSError:
                ok = False
        return ok

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        text = Path(self.logpath).read_text(errors="replace") if Path(self.logpath).exists() else ""
        errors = [
            line
            for line in text.splitlines()
            if line.startswith(("Traceback", "[", "django.", "psycopg."))
        ]
        errors = [line for line in errors if "[INFO]" not in line]
        keep = bool(errors)
        if keep:
            kinds = sorted(
                {
                    line.split(":")[0]
                    for line in text.splitlines()
                    if line.startswith(("django.", "psycopg."))
                }
            )
            log(
                f"gunicorn logged errors ({', '.join(kinds) or 'see log'}); log kept at {self.logpath}, tail:\n{self.log_tail(25)}"
            )
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if not keep:
            with contextlib.suppress(OSError):
                os.unlink(self.logpath)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


# --- how busy the machine was with other work -------------------------------------------------


def _busy_ticks():
    """CPU ticks spent busy by the whole machine (all cores) since boot."""
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return user + nice + system + irq + softirq + steal


def _process_ticks(pid):
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime
    except (OSError, IndexError, ValueError):
        return None


def bench_backend_pids():
    """PostgreSQL backends connected to the bench database (they work for us)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        return [row[0] for row in cursor.fetchall()]


class OtherWork:
    """The share of the machine's CPU used by processes that are not part of the benchmark
    (this process, gunicorn and the bench database's backends) between start() and stop():
    figures taken while other work competed are not comparable."""

    def __init__(self, server):
        self.server = server

    def _ours(self):
        pids = {os.getpid()}
        if self.server.proc is not None:
            pids.add(self.server.proc.pid)
        pids.update(self.server.worker_pids())
        with contextlib.suppress(Exception):
            pids.update(bench_backend_pids())
        return {pid: _process_ticks(pid) for pid in pids}

    def start(self):
        self.began, self.busy, self.mine = time.monotonic(), _busy_ticks(), self._ours()
        return self

    def stop(self):
        """(share of all cores used by other work, 0..1)."""
        elapsed = time.monotonic() - self.began
        busy = _busy_ticks() - self.busy
        mine = 0
        for pid, ticks in self._ours().items():
            if ticks is not None:
                mine += ticks - (self.mine.get(pid) or 0)
        hz = os.sysconf("SC_CLK_TCK")
        capacity = elapsed * hz * (os.cpu_count() or 1)
        return max(0.0, (busy - mine) / capacity) if capacity else 0.0


# --- HTTP and figures -------------------------------------------------------------------------


class Client:
    """One HTTP/1.1 connection (keep-alive when the server allows it; reconnects otherwise)."""

    def __init__(self, port, key=None, timeout=900):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        self.key = key

    def request(self, method, path, body=None, headers=None, key=None):
        """(status, body bytes, seconds)."""
        headers = dict(headers or {})
        key = key or self.key
        if key:
            headers["Authorization"] = f"Bearer {key}"
        started = time.perf_counter()
        try:
            self.conn.request(method, path, body=body, headers=headers)
            response = self.conn.getresponse()
            data = response.read()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            # The server closed an idle keep-alive connection: retry once on a fresh one.
            self.conn.close()
            started = time.perf_counter()
            self.conn.request(method, path, body=body, headers=headers)
            response = self.conn.getresponse()
            data = response.read()
        elapsed = time.perf_counter() - started
        if response.will_close:
            self.conn.close()
        return response.status, data, elapsed

    def close(self):
        self.conn.close()


def percentile(values, p):
    """The p-th percentile (0-100) with linear interpolation between closest ranks."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def table(headers, rows):
    """A plain text table as a string."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for n, row in enumerate(cells):
        lines.append(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)

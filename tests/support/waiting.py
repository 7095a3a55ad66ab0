"""Waiting for work done elsewhere — a worker process, a server starting, a webhook arriving, another
thread — on its progress, never on a fixed total. A loaded machine (CI's, or one running servers
beside the suite) can take several times as long as an idle one, and no test may fail only for
that; nor does any test assert how long something took.

``wait_for(done, what=..., progress={...})`` calls ``done`` until it returns something true, and
returns that. It gives up only when every measure of progress has kept the same value for
``stall`` seconds (120 by default), or when ``ceiling`` seconds (900) have passed in all — so that
a run that stays busy but never gets there still ends, well inside CI's time limit. The failure
says what was awaited, the progress last seen, and when it last moved.

A measure is any function whose value changes while the work moves: rows written, runs finished,
requests received, a log growing, the CPU time of the processes doing the work. Measures that only
grow are the clearest; a measure that moves while nothing useful happens (a sweep sent over and
over) only lets the ceiling, not the stall, end a stuck wait. ``TEST_WAIT_STALL`` and
``TEST_WAIT_CEILING`` (seconds) change the defaults for a whole run."""

import contextlib
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

STALL = float(os.environ.get("TEST_WAIT_STALL", 120))
CEILING = float(os.environ.get("TEST_WAIT_CEILING", 900))
_TICK = os.sysconf("SC_CLK_TCK")


class Stalled(AssertionError):
    """A wait that saw no progress for its stall period, or reached its ceiling."""


def wait_for(done, *, what, progress, stall=None, ceiling=None, interval=0.1, ignoring=()):
    """Call ``done()`` until its value is true and return that value. ``progress`` maps a name to
    a measure (a function of no argument). ``ignoring``: exceptions of ``done`` that only mean
    "not yet" (a server that does not accept connections yet); the last one is reported."""
    stall = STALL if stall is None else stall
    ceiling = CEILING if ceiling is None else ceiling
    started = time.monotonic()
    seen, moved_at, error = _measure(progress), started, None
    while True:
        try:
            value = done()
        except ignoring as exc:
            value, error = None, exc
        if value:
            return value
        now, current = time.monotonic(), _measure(progress)
        if current != seen:
            seen, moved_at = current, now
        if now - moved_at >= stall or now - started >= ceiling:
            limit = (
                f"no progress for {now - moved_at:.0f} s (stall limit {stall:.0f} s)"
                if now - moved_at >= stall
                else f"still moving at the ceiling of {ceiling:.0f} s"
            )
            shown = ", ".join(f"{name} {value!r}" for name, value in seen.items())
            raise Stalled(
                f"gave up waiting for {what} after {now - started:.0f} s: {limit}. Progress last "
                f"moved {moved_at - started:.0f} s into the wait; last seen: {shown}"
                + (f". Last error: {error!r}" if error is not None else "")
            )
        time.sleep(interval)


def _measure(progress):
    return {name: measure() for name, measure in progress.items()}


# --- measures ---------------------------------------------------------------------------------


def file_size(path):
    """Bytes in a file (a log): 0 while it does not exist."""
    try:
        return Path(path).stat().st_size
    except FileNotFoundError:
        return 0


def _stat(pid):
    """The fields of /proc/<pid>/stat after the command name (which may hold spaces)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()


def _cpu(fields):
    # utime, stime, cutime, cstime: the process's own time and that of its children it reaped.
    return sum(int(f) for f in fields[11:15])


def process_cpu(pid):
    """CPU time spent by the process group led by ``pid`` (a process started in a session of its
    own: a worker and its pool, a server and its children), in whole seconds: an idle process
    (a worker polling its broker) spends a few ticks a minute, which is no progress. 0 when
    there is none."""
    ticks = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                fields = _stat(entry)
                if int(fields[2]) == pid:
                    ticks += _cpu(fields)
    return ticks // _TICK


class DatabaseActivity:
    """How far the other sessions on the test database (a worker's, a server's) have got, in
    measures that only grow: the statements they started, the changes of what they wait for
    (an I/O, the client, a lock), and the CPU time and I/O of their server processes. A long
    statement at work moves the last ones; a session waiting for a lock moves none. (The server
    processes are read in /proc: they count when PostgreSQL runs on this machine, the I/O when
    the tests may read it, as root or the server's user.)"""

    def __init__(self):
        self.statements = set()
        self.waits = {}
        self.wait_changes = 0
        self.cpu = {}
        self.io = {}

    def __call__(self):
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute(
                """SELECT pid, query_start, state, wait_event_type, wait_event
                   FROM pg_stat_activity
                   WHERE datname = current_database() AND pid <> pg_backend_pid()
                     AND backend_type = 'client backend' AND query_start IS NOT NULL"""
            )
            sessions = cursor.fetchall()
        for pid, query_start, *waiting in sessions:
            self.statements.add((pid, query_start))
            if self.waits.get(pid, waiting) != waiting:
                self.wait_changes += 1
            self.waits[pid] = waiting
            self._server_process(pid)
        return {
            "statements": len(self.statements),
            "wait changes": self.wait_changes,
            "server cpu s": round(sum(self.cpu.values()) / _TICK, 2),
            "server io bytes": sum(self.io.values()),
        }

    def _server_process(self, pid):
        proc = Path(f"/proc/{pid}")
        with contextlib.suppress(OSError, ValueError, IndexError):
            if (proc / "comm").read_text().strip() != "postgres":
                return  # the server runs elsewhere
            self.cpu[pid] = max(self.cpu.get(pid, 0), _cpu(_stat(pid)))
            io = dict(line.split(": ") for line in (proc / "io").read_text().splitlines())
            self.io[pid] = max(self.io.get(pid, 0), int(io["rchar"]) + int(io["wchar"]))


def lock_waits():
    """How many other sessions on the test database wait for a lock: a test that makes one
    session wait for another's transaction waits for this before it asserts so."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
               AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'"""
        )
        return cursor.fetchone()[0]


def worker_progress(worker):
    """The measures of a task at work in a worker of ``tests.support.processes.celery_worker``:
    its log (a task received, retried, finished) and the test database's other sessions."""
    return {"worker log bytes": lambda: file_size(worker.log_path), "database": DatabaseActivity()}


# --- commands ---------------------------------------------------------------------------------


def run(args, *, what, check=True, input=None, merge_stderr=False, text=False, also=None, **popen):
    """``subprocess.run`` for the tests' commands (initdb, pg_dump, manage.py check …), waiting on
    the command's output and CPU time (and the measures in ``also``) instead of a fixed timeout.
    Returns a ``CompletedProcess`` with the output captured; stderr apart unless merged."""
    with (
        tempfile.TemporaryFile() as stdin,
        tempfile.TemporaryFile() as stdout,
        tempfile.TemporaryFile() as stderr,
    ):
        if input is not None:
            stdin.write(input.encode() if isinstance(input, str) else input)
            stdin.seek(0)
        proc = subprocess.Popen(
            args,
            stdin=stdin if input is not None else subprocess.DEVNULL,
            stdout=stdout,
            stderr=subprocess.STDOUT if merge_stderr else stderr,
            start_new_session=True,
            **popen,
        )
        try:
            wait_for(
                lambda: proc.poll() is not None,
                what=what,
                progress={
                    "output bytes": lambda: (
                        os.fstat(stdout.fileno()).st_size + os.fstat(stderr.fileno()).st_size
                    ),
                    "cpu s": lambda: process_cpu(proc.pid),
                    **(also or {}),
                },
            )
        finally:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        output = []
        for stream in (stdout, stderr):
            stream.seek(0)
            data = stream.read()
            output.append(data.decode() if text else data)
    result = subprocess.CompletedProcess(args, proc.returncode, *output)
    if check:
        result.check_returncode()
    return result

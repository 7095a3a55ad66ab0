"""Hostile bodies against a real gunicorn, as `make run` serves (``-c python:clearinghouse.serving``,
two processes of two threads): sent in parallel, every one is answered, with a 4xx
problem+json or a batch verdict, and no worker is killed or restarted on the way (a request that
held a worker past gunicorn's timeout would be: ``WORKER TIMEOUT``, then SIGKILL). Chunked uploads
are read, and gunicorn's own refusals are problem+json too."""

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import orjson
import pytest

from partners.models import Partner, Scope
from tests.records.conftest import sale
from tests.support.processes import ROOT, process_env
from tests.support.waiting import file_size, process_cpu, wait_for

pytestmark = [pytest.mark.server, pytest.mark.django_db(transaction=True)]

DEEP = b"[" * 100_000 + b"]" * 100_000
PROBLEM = "application/problem+json"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def gunicorn():
    port = free_port()
    log_path = ROOT / ".data" / f"test-gunicorn-{os.getpid()}.log"
    log_path.parent.mkdir(exist_ok=True)
    log_path.unlink(missing_ok=True)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "gunicorn", "clearinghouse.wsgi:application"),
                *("--config", "python:clearinghouse.serving"),
                *("--bind", f"127.0.0.1:{port}", "--workers", "2", "--threads", "2"),
                *("--timeout", "30", "--graceful-timeout", "5"),
            ],
            cwd=ROOT,
            env=process_env(LOG_LEVEL="WARNING"),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def answers():
        if proc.poll() is not None:
            raise AssertionError(f"gunicorn exited; see {log_path}")
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", "/healthz")
        return connection.getresponse().status == 200

    try:
        wait_for(
            answers,
            what=f"gunicorn to answer /healthz (log: {log_path})",
            progress={"log": lambda: file_size(log_path), "cpu": lambda: process_cpu(proc.pid)},
            ignoring=(OSError,),
        )
        yield port, proc, log_path
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def workers_of(proc):
    """The pids of the master's worker processes."""
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                stat = Path(f"/proc/{entry}/stat").read_text()
                if int(stat[stat.rindex(")") + 2 :].split()[1]) == proc.pid:
                    found.add(int(entry))
    return found


def send(port, method, path, body=b"", headers=None, chunked=False):
    """(status, content type, body). A generous socket timeout, not a timed assertion: a request
    that never gets an answer fails the test instead of hanging it."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    try:
        connection.putrequest(method, path, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            connection.putheader(name, value)
        if chunked:
            connection.putheader("Transfer-Encoding", "chunked")
        elif body:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders()
        if chunked:
            for start in range(0, len(body), 1000):
                part = body[start : start + 1000]
                connection.send(b"%x\r\n%s\r\n" % (len(part), part))
            connection.send(b"0\r\n\r\n")
        elif body:
            connection.send(body)
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type", ""), response.read()
    finally:
        connection.close()


def test_hostile_bodies_in_parallel_are_all_answered_and_no_worker_dies(make_partner, issue_key):
    maker, maker_admin = make_partner()
    shop, shop_admin = make_partner(kind=Partner.Kind.RETAILER)
    maker_key = issue_key(maker, maker_admin)[1]
    shop_key = issue_key(shop, shop_admin, scopes=list(Scope.values))[1]
    auth = {"Authorization": f"Bearer {maker_key}", "Content-Type": "application/json"}
    nested_row = b'[{"external_id": "S-9", "payload": ' + DEEP + b"}]"
    hostile = [
        ("POST", path, body)
        for path in (
            "/api/v1/records",
            "/api/v1/telemetry/readings",
            "/api/v1/consents",
            "/api/v1/telemetry/devices",
            "/api/v1/telemetry/rules",
            "/api/v1/webhooks",
            "/api/v1/warranty-terms",
        )
        for body in (DEEP, b'{"a": ' + DEEP[:60_000] + b"}", b'[{"a": 1e400, "b": "\\udc00"}]')
    ] + [("POST", "/api/v1/records", nested_row)]
    with gunicorn() as (port, proc, log_path):
        before = workers_of(proc)
        assert len(before) == 2
        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(
                pool.map(
                    lambda job: (job[:2], send(port, job[0], job[1], job[2], auth)), hostile * 2
                )
            )
            long_line = pool.submit(send, port, "GET", "/api/v1/" + "a" * 9000, b"", auth)
            newline = pool.submit(send, port, "GET", "/api/v1/re%0Acords", b"", auth)
        for (method, path), (status, kind, body) in answers:
            assert status < 500, (method, path, status, body[:200])
            if status >= 400:
                assert kind.startswith(PROBLEM), (path, status, kind)
            else:
                verdict = json.loads(body)
                assert verdict["accepted"] == 0 and verdict["rejected"] >= 1, (path, verdict)
        status, kind, body = long_line.result()
        assert status == 414 and kind.startswith(PROBLEM), (status, kind, body[:200])
        assert json.loads(body)["status"] == 414
        status, kind, _ = newline.result()
        assert status == 404 and kind.startswith(PROBLEM)

        rows = [sale("S-1", serial="C-1"), sale("S-2", serial="C-2")]
        ndjson = b"\n".join(orjson.dumps(r) for r in rows)
        shop_auth = {"Authorization": f"Bearer {shop_key}"}
        status, _, body = send(
            port,
            "POST",
            "/api/v1/records",
            ndjson,
            {**shop_auth, "Content-Type": "application/x-ndjson"},
            chunked=True,
        )
        assert status == 200 and json.loads(body)["created"] == 2, body
        status, _, body = send(
            port,
            "POST",
            "/api/v1/records",
            orjson.dumps([sale("S-3", serial="C-3")]),
            {**shop_auth, "Content-Type": "application/json"},
            chunked=True,
        )
        assert status == 200 and json.loads(body)["created"] == 1, body

        assert workers_of(proc) == before, "a worker was killed or restarted"
        log = log_path.read_text(errors="replace")
        assert "WORKER TIMEOUT" not in log and "Traceback" not in log, log[-3000:]

"""PostgreSQL stopped hard (immediate shutdown, like a crash) and started again while two partners
post batches to a real gunicorn: a clear 503 problem+json while it is down, every request
succeeds again after, and no batch is half-written — each is fully present or absent."""

import http.client
import json
import subprocess
import sys
import threading
import time
from datetime import timedelta

import psycopg
import pytest
from django.utils import timezone

from tests.support import processes

from .servers import (
    ROOT,
    Api,
    Gunicorn,
    PostgresCluster,
    RedisServer,
    copy_schema,
    server_env,
    wait_until,
)

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

SIZE = 20  # rows per batch
PROBLEM = "application/problem+json"


class Poster(threading.Thread):
    """Posts numbered batches until told to stop; keeps (batch, status, headers, body, seconds,
    started at) for every answer."""

    def __init__(self, api, kind):
        super().__init__(daemon=True)
        self.api, self.kind = api, kind
        self.answers = []
        self.halt = threading.Event()

    def batch(self, n):
        if self.kind == "records":
            when = (timezone.now() - timedelta(days=2)).isoformat()
            rows = [
                {
                    "external_id": f"B{n:05d}-{i}",
                    "kind": "sale",
                    "occurred_at": when,
                    "customer": {"kind": "email", "value": f"pg{i}@example.org"},
                    "product": {"gtin": "04012345678901", "serial": f"PGU-{n}-{i}"},
                    "payload": {"price_cents": 100, "currency": "EUR"},
                }
                for i in range(SIZE)
            ]
            return "/api/v1/records", rows
        start = timezone.now() - timedelta(hours=1)
        rows = [
            {
                "device": f"PG-{n}",
                "metric": "power_w",
                "value": i,
                "ts": (start + timedelta(seconds=i)).isoformat(),
            }
            for i in range(SIZE)
        ]
        return "/api/v1/telemetry/readings", rows

    def run(self):
        n = 0
        while not self.halt.is_set():
            path, rows = self.batch(n)
            began = time.monotonic()
            try:
                status, headers, body, seconds = self.api.call("POST", path, rows)
            except OSError as exc:  # no answer at all: a failure the test reports
                status, headers, body, seconds = None, {}, str(exc), time.monotonic() - began
            self.answers.append((n, status, headers, body, seconds, began))
            n += 1


def _counts(url, sql):
    with psycopg.connect(url, connect_timeout=5) as conn:
        return dict(conn.execute(sql).fetchall())


def _healthy(port):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", "/healthz")
    return conn.getresponse().status == 200


def test_postgres_restarted_under_load_gives_503s_then_recovers_with_no_half_batch():
    batches_max = 5000  # devices registered for the readings poster; it must not run out
    with PostgresCluster() as cluster, RedisServer() as redis_server:
        copy_schema(processes.test_database_url(), cluster, "app")
        env = server_env(database_url=cluster.url("app"), redis_url=redis_server.url)
        made = subprocess.run(
            [sys.executable, "-m", "tests.faults.world", str(batches_max)],
            cwd=ROOT,
            env=env,
            check=True,
            timeout=120,
            stdout=subprocess.PIPE,
        )
        keys = json.loads(made.stdout.decode().strip().splitlines()[-1])
        with Gunicorn(env) as web:
            posters = [
                Poster(Api(web.port, keys["shop_key"]), "records"),
                Poster(Api(web.port, keys["maker_key"]), "readings"),
            ]
            for poster in posters:
                poster.start()
            wait_until(lambda: all(len(p.answers) >= 3 for p in posters), 60, "no traffic before")
            down_from = time.monotonic()
            cluster.stop("immediate")  # a crash: in-flight transactions never commit
            time.sleep(2)
            cluster.start()
            wait_until(lambda: _healthy(web.port), 30, "the app did not recover")
            recovered = time.monotonic()
            time.sleep(2)
            for poster in posters:
                poster.halt.set()
            for poster in posters:
                poster.join(timeout=30)
                assert not poster.is_alive()

        records = _counts(
            cluster.url("app"),
            "SELECT split_part(external_id, '-', 1), count(*) "
            "FROM records_interactionrecord GROUP BY 1",
        )
        readings = _counts(
            cluster.url("app"),
            "SELECT d.serial, count(*) FROM telemetry_reading r "
            "JOIN telemetry_device d ON d.id = r.device_id GROUP BY 1",
        )

    for poster, stored, key in (
        (posters[0], records, lambda n: f"B{n:05d}"),
        (posters[1], readings, lambda n: f"PG-{n}"),
    ):
        assert len(poster.answers) < batches_max
        during, after = [], []
        for n, status, headers, body, seconds, began in poster.answers:
            assert status in (200, 503), (poster.kind, n, status, body)
            assert seconds < 10, f"{poster.kind} batch {n} took {seconds:.1f} s"
            if status == 503:
                assert headers["Content-Type"] == PROBLEM and headers["Retry-After"] == "5"
                assert body["type"] == "urn:clearinghouse:problem:unavailable"
                during.append(n)
            else:
                # An answer of success means the whole batch is committed.
                assert stored.get(key(n)) == SIZE, (poster.kind, n)
            if began >= recovered:
                after.append(status)
            # No batch half-written, whatever its answer (one may commit as the server dies).
            assert stored.get(key(n), 0) in (0, SIZE), (poster.kind, n, stored.get(key(n)))
        assert during, f"no {poster.kind} request met the outage"
        assert after and set(after) == {200}, f"{poster.kind} did not recover fully: {after}"
        # Nothing was refused before PostgreSQL went down.
        assert all(a[1] == 200 for a in poster.answers if a[5] + a[4] < down_from)

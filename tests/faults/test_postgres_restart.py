"""PostgreSQL stopped hard (immediate shutdown, like a crash) and started again while two partners
post batches to a real gunicorn: a clear 503 problem+json while it is down, every request
succeeds again after, and no batch is half-written — each is fully present or absent."""

import json
import sys
import threading
import time
from datetime import timedelta

import psycopg
import pytest
from django.utils import timezone

from tests.support import processes
from tests.support.waiting import run, wait_for

from .servers import (
    ROOT,
    Api,
    Gunicorn,
    PostgresCluster,
    RedisServer,
    copy_schema,
    healthy,
    server_env,
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


def _answers(posters, since=0.0, refused=False):
    """How many answers each poster had to requests begun at ``since`` or later (only those
    other than a success, when ``refused``)."""
    return [
        sum(1 for a in p.answers if a[5] >= since and not (refused and a[1] == 200))
        for p in posters
    ]


def test_postgres_restarted_under_load_gives_503s_then_recovers_with_no_half_batch():
    batches_max = 5000  # devices registered for the readings poster; it must not run out
    with PostgresCluster() as cluster, RedisServer() as redis_server:
        copy_schema(processes.test_database_url(), cluster, "app")
        env = server_env(database_url=cluster.url("app"), redis_url=redis_server.url)
        made = run(
            [sys.executable, "-m", "tests.faults.world", str(batches_max)],
            what="the world of the private database",
            cwd=ROOT,
            env=env,
            also=cluster.progress(),
        )
        keys = json.loads(made.stdout.decode().strip().splitlines()[-1])
        with Gunicorn(env) as web:
            posters = [
                Poster(Api(web.port, keys["shop_key"]), "records"),
                Poster(Api(web.port, keys["maker_key"]), "readings"),
            ]
            traffic = {"answers": lambda: sum(_answers(posters))}
            for poster in posters:
                poster.start()
            wait_for(
                lambda: min(_answers(posters)) >= 3,
                what="three answers to each poster before the crash",
                progress=traffic,
            )
            down_from = time.monotonic()
            cluster.stop("immediate")  # a crash: in-flight transactions never commit
            # Down until each poster has met the outage, however long its requests take (what it
            # answered is checked below).
            wait_for(
                lambda: min(_answers(posters, down_from, refused=True)) >= 1,
                what="each poster to be refused while PostgreSQL is down",
                progress=traffic,
            )
            cluster.start()
            wait_for(
                lambda: healthy(web.port),
                what="the app to answer /healthz with 200 again",
                progress=traffic,
                ignoring=OSError,
            )
            recovered = time.monotonic()
            wait_for(
                lambda: min(_answers(posters, recovered)) >= 3,
                what="three answers to each poster after the recovery",
                progress=traffic,
            )
            for poster in posters:
                poster.halt.set()
            for poster in posters:
                wait_for(
                    lambda poster=poster: not poster.is_alive(),
                    what=f"the {poster.kind} poster to stop",
                    progress=traffic,
                )

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
        for n, status, headers, body, _, began in poster.answers:
            # Every request is answered (one that hangs ends in the client's timeout: None).
            assert status in (200, 503), (poster.kind, n, status, body)
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

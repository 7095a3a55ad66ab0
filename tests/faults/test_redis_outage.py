"""Redis stopped (killed, losing every queued task) and restarted while partners post records and
readings to a real gunicorn: every request that answered success has its rows in PostgreSQL,
the work those rows imply (reconciliation of the pair, the batch's roll-ups and rules) still runs
once Redis is back, and no request fails with a 500 or hangs."""

import itertools

import pytest
import redis
from django.utils import timezone

from clearinghouse.reconciliation.models import RecordLink
from clearinghouse.records.models import InteractionRecord
from consent import identity
from consent import services as consent_services
from partners.models import Scope
from telemetry.models import HourlyRollup, PendingBatch, ServiceSignal
from tests.records.conftest import registration, sale
from tests.support import processes
from tests.support.waiting import wait_for
from tests.telemetry.conftest import register
from tests.telemetry.test_rules import rule

from .servers import Api, Gunicorn, RedisServer, Worker, server_env

pytestmark = [pytest.mark.worker, pytest.mark.faults, pytest.mark.django_db(transaction=True)]

CUSTOMERS = 4
BATCH = 3  # records (or devices) per request
PROBLEM = "application/problem+json"


@pytest.fixture
def world(pair, issue_key, clean_readings):
    scopes = [Scope.RECORDS_WRITE, Scope.RECORDS_READ, Scope.TELEMETRY_WRITE]
    for i in range(CUSTOMERS):
        customer = consent_services.customer_resolve(
            identifier=identity.parse_identifier(kind="email", value=f"r{i}@example.org"),
            partner=pair.shop,
        )
        for partner in (pair.maker, pair.shop):
            consent_services.consent_grant(
                customer=customer, grantee=partner, purpose="warranty", source="customer"
            )
    register(pair.maker, *[f"RD-{n}" for n in range(200)])
    rule(pair.maker, {"kind": "cumulative", "metric": "filter_hours", "at_least": 5})
    return (
        pair,
        issue_key(pair.maker, pair.maker_admin, scopes=scopes)[1],
        issue_key(pair.shop, pair.shop_admin, scopes=scopes)[1],
    )


class Traffic:
    """Posts batches in turn: the shop's sales, the maker's registrations of the same units, the
    maker's readings. Remembers what answered success and checks every other answer."""

    def __init__(self, port, maker_key, shop_key):
        self.maker, self.shop = Api(port, maker_key), Api(port, shop_key)
        self.units = itertools.count()
        self.devices = itertools.count()
        self.accepted = {"sale": set(), "registration": set(), "devices": set()}
        self.refused = 0

    def _check(self, status, headers, body, seconds):
        # Every request is answered (one that hangs ends in the client's timeout, an error).
        if status == 503:
            assert headers["Content-Type"].startswith(PROBLEM), headers
            assert body["status"] == 503 and headers.get("Retry-After")
            self.refused += 1
            return False
        assert status == 200, (status, body)
        return True

    def round(self):
        units = [f"RU-{next(self.units)}" for _ in range(BATCH)]
        day = timezone.now() - timezone.timedelta(days=3)
        when, purchased = day.isoformat(), day.date().isoformat()
        email = lambda i: f"r{i % CUSTOMERS}@example.org"  # noqa: E731
        sales = [
            sale(f"S-{u}", email=email(i), serial=u, occurred_at=when) for i, u in enumerate(units)
        ]
        regs = [
            registration(
                f"W-{u}",
                email=email(i),
                serial=u,
                occurred_at=when,
                payload={"warranty_months": 24, "purchase_date": purchased},
            )
            for i, u in enumerate(units)
        ]
        for kind, api, rows in (("sale", self.shop, sales), ("registration", self.maker, regs)):
            answer = api.call("POST", "/api/v1/records", rows)
            if self._check(*answer):
                assert all(r["status"] == "created" for r in answer[2]["results"]), answer[2]
                self.accepted[kind].update(units)
        devices = [f"RD-{next(self.devices)}" for _ in range(BATCH)]
        readings = [
            {"device": d, "metric": "filter_hours", "value": 10, "ts": timezone.now().isoformat()}
            for d in devices
        ]
        answer = self.maker.call("POST", "/api/v1/telemetry/readings", readings)
        if self._check(*answer):
            assert answer[2]["accepted"] == BATCH, answer[2]
            self.accepted["devices"].update(devices)


def test_redis_stopped_and_restarted_during_ingest_loses_no_accepted_work(world):
    _, maker_key, shop_key = world
    with RedisServer() as redis_server:
        env = server_env(database_url=processes.test_database_url(), redis_url=redis_server.url)
        with Gunicorn(env) as web, Worker(env, redis_server.url) as worker:
            traffic = Traffic(web.port, maker_key, shop_key)
            for _ in range(3):
                traffic.round()
            redis_server.stop()  # killed: the queue and every task in it are gone
            for _ in range(3):
                traffic.round()
            redis_server.start()  # the same port, empty
            for _ in range(3):
                traffic.round()

            # Every success has its rows in PostgreSQL.
            records = InteractionRecord.objects.unscoped("test setup")
            for kind, prefix in (("sale", "S-"), ("registration", "W-")):
                stored = set(
                    records.filter(external_id__startswith=f"{prefix}RU-").values_list(
                        "serial", flat=True
                    )
                )
                assert traffic.accepted[kind] <= stored
            assert len(traffic.accepted["devices"]) > 3 * BATCH  # some accepted during the outage

            # The beat's sweeps, as they run every few minutes, bring the lost work back: sent
            # again each time the worker has taken the last ones, so that they never pile up
            # ahead of the work they enqueue.
            both = traffic.accepted["sale"] & traffic.accepted["registration"]
            broker = redis.Redis.from_url(redis_server.url)

            def work_done():
                linked = set(
                    RecordLink.objects.filter(kind="sale_registration").values_list(
                        "from_record__serial", flat=True
                    )
                )
                signalled = set(
                    ServiceSignal.objects.unscoped("test setup").values_list(
                        "device__serial", flat=True
                    )
                )
                return {
                    "units linked": len(both & linked),
                    "devices signalled": len(traffic.accepted["devices"] & signalled),
                    "batches owing work": PendingBatch.objects.unscoped("test setup").count(),
                }

            def recovered():
                done = work_done()
                if done == {
                    "units linked": len(both),
                    "devices signalled": len(traffic.accepted["devices"]),
                    "batches owing work": 0,
                }:
                    return True
                if broker.llen("celery") == 0:
                    worker.send("reconciliation.reconcile_all")
                    worker.send("telemetry.sweep_pending_batches", 0)
                return False

            # Progress is the work alone: the sweeps keep the worker busy whether or not they
            # find the lost work.
            try:
                wait_for(
                    recovered,
                    what=f"the work of the accepted batches to be done (log: {worker.log_path})",
                    progress={"work": work_done},
                    interval=0.5,
                )
            finally:
                broker.close()

    rolled_up = set(HourlyRollup.objects.values_list("device__serial", flat=True))
    assert traffic.accepted["devices"] <= rolled_up
    # Nothing twice: one live signal per device, one link per unit.
    assert ServiceSignal.objects.unscoped("test setup").count() == len(traffic.accepted["devices"])
    assert RecordLink.objects.filter(kind="sale_registration").count() == len(both)

"""`make load`: a bounded load test (60 s by default) of a realistic mix on 127.0.0.1 — telemetry
batches, record batches, unit and customer timeline reads, consent withdrawals and grants —
against gunicorn and a real Celery worker, on a throw-away database of its own.

Reports throughput, p50/p99 per operation and the error count (goal: no errors, p99 of reads
<= 50 ms), and checks that every withdrawal is honoured by the very next read: the manufacturer
withdraws a customer's consent and at once reads that customer's timeline; a retailer's record
in that answer is a violation (goal: none).

Virtual users are threads in a closed loop (each sends its next request when the last one
answered, after a think time: ``--think-ms``, exponentially distributed), with http.client over
keep-alive connections: no dependency beyond the standard library, and the latency measured is
what a partner's client sees. Two phases: first ``--seconds`` with the think time (default
100 ms, which offers about half of what a 2-core machine serves at saturation: the latency
a partner sees on a busy day), then ``--saturate-seconds`` without it, where every user sends as fast as
it is answered (the throughput the machine tops out at; latencies there are mostly queueing).
Progress on stderr, figures on stdout.
"""

import random
import sys
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import orjson

from bench.bench_telemetry import Celery
from bench.common import (
    Client,
    Gunicorn,
    OtherWork,
    arguments,
    bench_database,
    django_setup,
    log,
    percentile,
    setup_partners,
    table,
)

GTIN = "04012345678901"
DEVICES = 200
READINGS_PER_BATCH = 500
RECORDS_PER_BATCH = 50
READS = ("unit_timeline", "customer_timeline")
# The mix: relative weights of what a virtual user does next.
MIX = {
    "telemetry_batch": 2,
    "record_batch": 2,
    "unit_timeline": 5,
    "customer_timeline": 5,
    "consent_change": 1,
}


def email(i):
    return f"load{i}@example.org"


def prepare(customers):
    """Partners in an agreement (sales to the maker, registrations to the shop, for warranty),
    a unit per customer sold and registered, every customer's consent to both, devices and a
    service rule. Returns the keys and each customer's grant to the maker."""
    from clearinghouse.records.services import records_ingest
    from consent import identity
    from consent import services as consent_services
    from partners import services
    from partners.agreements.services import agreement_countersign, agreement_propose
    from partners.models import Scope
    from telemetry.services import devices_register, rule_create

    maker, _, shop, _, maker_admin, shop_admin = setup_partners()
    keys = {
        name: services.credential_create(
            partner=partner, name="load", scopes=list(Scope.values), created_by=admin
        ).key
        for name, partner, admin in (("maker", maker, maker_admin), ("shop", shop, shop_admin))
    }
    version = agreement_propose(
        proposer=shop,
        counterpart=maker,
        actor=shop_admin,
        clauses=[
            {
                "kind": "sale",
                "purpose": "warranty",
                "direction": "retailer_to_manufacturer",
                "fields": ["product", "customer", "channel"],
            },
            {
                "kind": "warranty_registration",
                "purpose": "warranty",
                "direction": "manufacturer_to_retailer",
                "fields": ["product", "warranty_months"],
            },
        ],
    )
    agreement_countersign(version=version, partner=maker, actor=maker_admin)
    when = (datetime.now(UTC) - timedelta(days=20)).isoformat()
    for partner, kind, prefix, payload in (
        (shop, "sale", "LS", {"price_cents": 49900, "currency": "EUR", "channel": "store"}),
        (maker, "warranty_registration", "LW", {"warranty_months": 24}),
    ):
        rows = [
            {
                "external_id": f"{prefix}-{i}",
                "kind": kind,
                "occurred_at": when,
                "customer": {"kind": "email", "value": email(i)},
                "product": {"gtin": GTIN, "serial": f"LU-{i}"},
                "payload": payload,
            }
            for i in range(customers)
        ]
        records_ingest(partner=partner, rows=rows, max_rows=len(rows))
    grants = {}
    for i in range(customers):
        customer = consent_services.customer_resolve(
            identifier=identity.parse_identifier(kind="email", value=email(i)), partner=shop
        )
        for partner in (maker, shop):
            grant = consent_services.consent_grant(
                customer=customer, grantee=partner, purpose="warranty", source="customer"
            )
            if partner == maker:
                grants[i] = str(grant.pk)
    devices_register(
        partner=maker,
        rows=[{"serial": f"LD-{n}", "gtin": GTIN, "model_name": "DW-500"} for n in range(DEVICES)],
    )
    rule_create(
        partner=maker,
        model_name="DW-500",
        name="Pump",
        issue="drain pump wearing out",
        conditions=[
            {
                "kind": "threshold",
                "metric": "drain_pump_current_a",
                "op": ">",
                "value": 1.5,
                "minutes": 30,
            }
        ],
    )
    return keys, grants


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.times = defaultdict(list)
        self.errors = defaultdict(int)
        self.error_samples = []
        self.violations = 0
        self.revocations = 0

    def add(self, op, seconds, ok, detail=""):
        with self.lock:
            self.times[op].append(seconds)
            if not ok:
                self.errors[op] += 1
                if len(self.error_samples) < 10:
                    self.error_samples.append(f"{op}: {detail}"[:300])


class User(threading.Thread):
    """One virtual user: a closed loop over the mix until the deadline."""

    def __init__(self, n, users, port, keys, grants, stats, deadline, think=0.0):
        super().__init__(daemon=True)
        self.n, self.stats, self.deadline, self.think = n, stats, deadline, think
        self.rng = random.Random(n)
        self.maker = Client(port, keys["maker"], timeout=60)
        self.shop = Client(port, keys["shop"], timeout=60)
        self.customers = len(grants)
        # Each user withdraws and grants again only its own customers: no two users race on one.
        self.mine = {i: g for i, g in grants.items() if i % users == n}
        self.batches = 0

    def call(self, op, client, method, path, body=None, expect=(200,)):
        headers = {"Content-Type": "application/json"} if body is not None else None
        status, data, seconds = client.request(
            method, path, body=orjson.dumps(body) if body is not None else None, headers=headers
        )
        ok = status in expect
        self.stats.add(op, seconds, ok, f"{status} {data[:200]!r}")
        return status, data

    def telemetry_batch(self):
        now = datetime.now(UTC)
        first = self.rng.randrange(DEVICES - 10)
        rows = [
            {
                "device": f"LD-{first + k % 10}",
                "metric": "drain_pump_current_a",
                "value": round(self.rng.uniform(0.8, 1.6), 3),
                "ts": (now - timedelta(seconds=k // 10, microseconds=self.n)).isoformat(),
            }
            for k in range(READINGS_PER_BATCH)
        ]
        self.call("telemetry_batch", self.maker, "POST", "/api/v1/telemetry/readings", rows)

    def record_batch(self):
        self.batches += 1
        tag = f"{self.n}-{self.batches}"
        when = (datetime.now(UTC) - timedelta(days=1)).isoformat()
        rows = [
            {
                "external_id": f"N-{tag}-{k}",
                "kind": "sale",
                "occurred_at": when,
                "customer": {"kind": "email", "value": email(self.rng.randrange(self.customers))},
                "product": {"gtin": GTIN, "serial": f"NU-{tag}-{k}"},
                "payload": {"price_cents": 1999, "currency": "EUR", "channel": "web"},
            }
            for k in range(RECORDS_PER_BATCH)
        ]
        self.call("record_batch", self.shop, "POST", "/api/v1/records", rows)

    def unit_timeline(self):
        path = f"/api/v1/units/{GTIN}/LU-{self.rng.randrange(self.customers)}/timeline"
        self.call("unit_timeline", self.rng.choice((self.maker, self.shop)), "GET", path)

    def customer_timeline(self, i=None):
        i = self.rng.randrange(self.customers) if i is None else i
        path = f"/api/v1/customers/timeline?kind=email&value={quote(email(i))}"
        return self.call("customer_timeline", self.maker, "GET", path)

    def consent_change(self):
        """Withdraw, read at once (nothing of the retailer may show), grant again."""
        if not self.mine:
            return self.customer_timeline()
        i = self.rng.choice(list(self.mine))
        status, _ = self.call(
            "consent_revoke", self.maker, "POST", f"/api/v1/consents/{self.mine[i]}/revoke"
        )
        if status == 200:
            with self.stats.lock:
                self.stats.revocations += 1
            status, data = self.customer_timeline(i)
            if status == 200:
                shown = [r for r in orjson.loads(data)["results"] if r["kind"] == "sale"]
                if shown:
                    with self.stats.lock:
                        self.stats.violations += 1
        status, data = self.call(
            "consent_grant",
            self.maker,
            "POST",
            "/api/v1/consents",
            {
                "identifier": {"kind": "email", "value": email(i)},
                "purpose": "warranty",
                "evidence": {
                    "channel": "call-centre",
                    "text_shown": "May we use your purchase data for your warranty?",
                    "collected_at": datetime.now(UTC).isoformat(),
                },
            },
            expect=(201,),
        )
        if status == 201:
            self.mine[i] = orjson.loads(data)["id"]

    def run(self):
        ops = list(MIX)
        weights = [MIX[o] for o in ops]
        while time.monotonic() < self.deadline:
            op = self.rng.choices(ops, weights)[0]
            try:
                getattr(self, op)()
            except Exception as exc:  # a broken connection or a timeout counts as an error
                self.stats.add(op, 0.0, False, f"{type(exc).__name__}: {exc}")
                self.maker.close()
                self.shop.close()
            if self.think:
                time.sleep(self.rng.expovariate(1 / self.think))


def sanity_check(port, keys):
    """Before the load: the maker sees a customer's sale (else the check would prove nothing)."""
    client = Client(port, keys["maker"])
    status, data, _ = client.request(
        "GET", f"/api/v1/customers/timeline?kind=email&value={quote(email(0))}"
    )
    kinds = [r["kind"] for r in orjson.loads(data).get("results", [])] if status == 200 else []
    if "sale" not in kinds:
        raise SystemExit(f"setup: the maker does not see the retailer's sale ({status}, {kinds})")
    client.close()


def main():
    args = arguments(
        __doc__.split("\n\n")[0],
        seconds=(int, 60, "how long the load runs (default 60)"),
        users=(int, 6, "virtual users, i.e. concurrent clients (default 6)"),
        customers=(int, 300, "customers, each with a sold and registered unit (default 300)"),
        think_ms=(
            float,
            100.0,
            "mean pause of a user between requests (default 100: about half of what this"
            " machine serves; 0 saturates it)",
        ),
        saturate_seconds=(
            int,
            30,
            "then as long again without pauses, for the throughput at saturation (0: skip)",
        ),
    )
    phases = [(args.think_ms, args.seconds)]
    if args.saturate_seconds and args.think_ms:
        phases.append((0.0, args.saturate_seconds))
    failed = False
    with bench_database(keep=args.keep) as (env, _url, _redis):
        django_setup()
        log(f"preparing {args.customers} customers, {DEVICES} devices")
        keys, grants = prepare(args.customers)
        server = Gunicorn(env, workers=args.workers, threads=args.threads)
        with server, Celery(env):
            sanity_check(server.port, keys)
            results = []
            for think_ms, seconds in phases:
                # The next phase's users start from the grants as this one left them.
                stats, elapsed, busy, grants = run_phase(
                    args, server, keys, grants, think_ms, seconds
                )
                results.append((stats, elapsed, busy, think_ms))
    for stats, elapsed, busy, think_ms in results:
        report(stats, elapsed, args, busy, think_ms)
        failed |= bool(sum(stats.errors.values()) or stats.violations)
    return 1 if failed else 0


def run_phase(args, server, keys, grants, think_ms, seconds):
    stats = Stats()
    deadline = time.monotonic() + seconds
    users = [
        User(n, args.users, server.port, keys, grants, stats, deadline, think_ms / 1000)
        for n in range(args.users)
    ]
    log(f"load: {args.users} users for {seconds} s, think time {think_ms:g} ms")
    other = OtherWork(server).start()
    began = time.monotonic()
    for user in users:
        user.start()
    while alive := [u for u in users if u.is_alive()]:
        # Wait on a user rather than sleep, so that the phase ends when its last user does
        # (a fixed sleep would add up to its length to the elapsed time and cut the rate).
        alive[0].join(timeout=5)
        with stats.lock:
            done = sum(len(v) for v in stats.times.values())
            errors = sum(stats.errors.values())
        log(f"{done} requests, {errors} errors, {stats.violations} violations")
    elapsed, busy = time.monotonic() - began, other.stop()
    return stats, elapsed, busy, {i: g for u in users for i, g in u.mine.items()}


def report(stats, elapsed, args, busy, think_ms):
    rows = []
    total = 0
    for op in sorted(stats.times):
        times = stats.times[op]
        total += len(times)
        rows.append(
            [
                op,
                len(times),
                f"{len(times) / elapsed:.1f}",
                f"{percentile(times, 50) * 1000:.1f}",
                f"{percentile(times, 99) * 1000:.1f}",
                stats.errors[op],
            ]
        )
    reads = [t for op in READS for t in stats.times[op]]
    p99_reads = percentile(reads, 99) * 1000
    errors = sum(stats.errors.values())
    print(
        f"\nLoad: {args.users} users (think time {think_ms:g} ms), {elapsed:.0f} s, "
        f"gunicorn {args.workers} workers x "
        f"{args.threads} threads, "
        f"1 celery worker, loopback; other work used {busy:.0%} of the machine's CPU meanwhile"
    )
    print(
        table(["operation", "requests", "per s", "p50 ms", "p99 ms", "errors"], rows)
        + f"\ntotal {total} requests, {total / elapsed:.1f}/s"
    )
    print(f"errors: {errors} (goal 0)")
    print(f"p99 of reads (unit + customer timelines): {p99_reads:.1f} ms (goal <= 50 ms)")
    print(
        f"withdrawals honoured by the very next read: {stats.revocations - stats.violations} of "
        f"{stats.revocations}; violations: {stats.violations} (goal 0)"
    )
    for sample in stats.error_samples:
        print(f"  error: {sample}")


if __name__ == "__main__":
    sys.exit(main())

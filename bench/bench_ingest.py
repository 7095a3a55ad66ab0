"""Bulk record ingest over HTTP (gunicorn, loopback) with identity resolution and encryption.

Figures (stdout): records/s for 200,000 records POSTed as NDJSON in batches of 10,000 by two
client threads to /api/v1/records, batch latency p50/p99, the peak RSS of a gunicorn worker
during those requests; beside it, in the same run, a naive endpoint built the common way (DRF
ModelSerializer(many=True) + bulk_create, bench/naive.py) and a replay of the first batch (every
row already stored).

Goals: ≥ 20,000 records/s on a 2-core machine, ≥ 3x the naive endpoint, peak worker memory
during a 10,000-record request ≤ 150 MB.

    .venv/bin/python bench/bench_ingest.py [--records 200000] [--naive-records 20000] [--keep]

It creates and drops its own database (clearinghouse_bench_<pid>) and uses Redis db 12.
"""

import queue
import random
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import orjson

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

BATCH = 10_000
FIRST = [
    "anna",
    "ben",
    "carla",
    "david",
    "eva",
    "felix",
    "greta",
    "hugo",
    "ines",
    "jonas",
    "katja",
    "lars",
    "mia",
    "noah",
    "olga",
    "paul",
    "rosa",
    "sven",
    "tara",
    "ugo",
]
LAST = [
    "schmidt",
    "meyer",
    "rossi",
    "dubois",
    "nowak",
    "jansen",
    "garcia",
    "smith",
    "berg",
    "costa",
    "novak",
    "weber",
    "moreau",
    "silva",
    "fischer",
    "larsen",
    "bianchi",
    "kowalski",
]
DOMAINS = ["example.org", "example.com", "mail.example", "post.example", "inbox.example"]


def gtin13(body12):
    from clearinghouse.records.gtin import check_digit

    return body12 + check_digit(body12)


class Dataset:
    """Units sold by the retailer and registered with the manufacturer, each by one of a pool
    of customers (every customer owns units, so each address appears several times); the
    retailer mostly sends e-mails raw, the manufacturer mostly as SHA-256."""

    def __init__(self, *, units, customers, seed, tag, first_unit=0):
        from consent.identity import prehash

        self.rng = random.Random(seed)
        rng = self.rng
        self.prehash = prehash
        self.models = [gtin13(f"40{seed % 10}12345{m:04d}") for m in range(24)]
        self.emails = []
        for n in range(customers):
            address = f"{rng.choice(FIRST)}.{rng.choice(LAST)}.{tag}{n}@{rng.choice(DOMAINS)}"
            if rng.random() < 0.1:
                address = address.capitalize()  # normalisation lower-cases it
            self.emails.append(address)
        owners = [n % customers for n in range(units)]
        rng.shuffle(owners)
        self.units = []
        now = datetime.now(UTC).replace(microsecond=0)
        start = now - timedelta(days=400)
        for i in range(units):
            u = first_unit + i
            sold = start + timedelta(seconds=int(300 * 86400 * i / units) + rng.randrange(3600))
            self.units.append(
                (u, self.models[rng.randrange(len(self.models))], f"SN{u:09d}", owners[i], sold)
            )

    def _customer(self, owner, hashed_share):
        email = self.emails[owner]
        if self.rng.random() < hashed_share:
            return {"kind": "email", "sha256": self.prehash(email.strip().lower())}
        return {"kind": "email", "value": email}

    def sale(self, unit, prefix="S"):
        u, gtin, serial, owner, sold = unit
        channel = self.rng.choice(("store", "store", "online", "phone"))
        payload = {
            "price_cents": self.rng.randrange(1999, 249_999),
            "currency": "EUR",
            "channel": channel,
        }
        if channel == "store":
            payload["store"] = f"Store {self.rng.randrange(1, 200):03d}"
        return {
            "external_id": f"{prefix}-{u:09d}",
            "kind": "sale",
            "occurred_at": sold.isoformat().replace("+00:00", "Z"),
            "customer": self._customer(owner, 0.15),
            "product": {"gtin": gtin, "serial": serial},
            "payload": payload,
        }

    def registration(self, unit, prefix="W"):
        u, gtin, serial, owner, sold = unit
        registered = sold + timedelta(
            days=self.rng.randrange(0, 60), seconds=self.rng.randrange(86400)
        )
        return {
            "external_id": f"{prefix}-{u:09d}",
            "kind": "warranty_registration",
            "occurred_at": registered.isoformat(),
            "customer": self._customer(owner, 0.6),
            "product": {"gtin": gtin, "serial": serial},
            "payload": {
                "warranty_months": self.rng.choice((24, 24, 36, 60)),
                "purchase_date": sold.date().isoformat(),
                "registered_via": self.rng.choice(("app", "web", "mail", "store")),
            },
        }


def ndjson(rows):
    return b"\n".join(orjson.dumps(r) for r in rows) + b"\n"


def naive_row(row):
    """The naive endpoint's flat shape of the same record."""
    out = {k: row[k] for k in ("external_id", "kind", "occurred_at", "customer", "payload")}
    out["gtin"], out["serial"] = row["product"]["gtin"], row["product"]["serial"]
    return out


def run_batches(port, jobs, *, path, content_type, threads=2, check, retries=5):
    """POST every (label, key, body, rows) job with ``threads`` client threads, one connection
    each; a 5xx answer is retried (the batch was rolled back) up to ``retries`` times, as a
    client told "try again later" would. Returns (wall seconds, [Outcome])."""
    work = queue.Queue()
    for job in jobs:
        work.put(job)
    results, lock = [], threading.Lock()
    start = threading.Barrier(threads + 1)

    def client():
        conn = Client(port)
        start.wait()
        while True:
            try:
                label, key, body, rows = work.get_nowait()
            except queue.Empty:
                break
            outcome = Outcome(label, rows)
            while True:
                status, data, seconds = conn.request(
                    "POST", path, body=body, headers={"Content-Type": content_type}, key=key
                )
                summary = check(status, data, rows)
                outcome.attempts.append((status, seconds))
                log(
                    f"  {label}: HTTP {status} in {seconds:.2f}s ({rows / seconds:,.0f} rec/s) {summary['note']}"
                )
                if status < 500 or len(outcome.attempts) > retries:
                    break
                outcome.errors.append(summary["note"])
                time.sleep(random.uniform(0.2, 1.0))  # back off a little, as a client would
            outcome.ok, outcome.note = summary["ok"], summary["note"]
            with lock:
                results.append(outcome)
        conn.close()

    pool = [threading.Thread(target=client, daemon=True) for _ in range(threads)]
    for t in pool:
        t.start()
    start.wait()
    began = time.perf_counter()
    for t in pool:
        t.join()
    return time.perf_counter() - began, results


class Outcome:
    """One batch: every attempt's (status, seconds), whether the last answer was as expected."""

    def __init__(self, label, rows):
        self.label, self.rows = label, rows
        self.attempts, self.errors = [], []
        self.ok, self.note = False, ""

    @property
    def retried(self):
        return len(self.attempts) - 1

    @property
    def seconds(self):
        """What the client waited for this batch, retries included."""
        return sum(seconds for _, seconds in self.attempts)


def check_ingest(expect):
    def check(status, data, rows):
        if status != 200:
            return {"ok": False, "note": f"HTTP {status}: {data[:300]!r}"}
        body = orjson.loads(data)
        ok = body["rejected"] == 0 and body["accepted"] == rows and body[expect] == rows
        note = f"accepted={body['accepted']} created={body['created']} existing={body['existing']} rejected={body['rejected']}"
        if body["rejected"]:
            errors = [r for r in body["results"] if r["status"] == "rejected"][:3]
            note += f" first rejections: {errors}"
        return {"ok": ok, "note": "" if ok else "UNEXPECTED " + note, "body": None}

    return check


def check_naive(status, data, rows):
    if status != 200:
        return {"ok": False, "note": f"HTTP {status}: {data[:300]!r}"}
    body = orjson.loads(data)
    return {"ok": body.get("created") == rows, "note": f"created={body.get('created')}"}


def memory_line(server):
    return ", ".join(
        f"pid {pid}: rss {rss:.0f} MB, peak {hwm:.0f} MB"
        for pid, (rss, hwm) in sorted(server.memory().items())
    )


def main():
    args = arguments(
        __doc__.splitlines()[0],
        records=(int, 200_000, "records in the main run (multiple of 20,000)"),
        customers=(int, 50_000, "distinct customer e-mails in the main run"),
        naive_records=(int, 20_000, "records sent to the naive endpoint (batches of 10,000)"),
        client_threads=(int, 2, "client threads (one connection each)"),
    )
    wall = time.perf_counter()
    with bench_database(keep=args.keep) as (env, _url, _redis):
        django_setup()
        from django.db import connection

        maker, maker_key, shop, shop_key, *_ = setup_partners()
        log(f"partners: {maker.name} (manufacturer), {shop.name} (retailer), keys issued")

        log(f"generating {args.records:,} rows ({args.customers:,} customers)")
        units = args.records // 2
        data = Dataset(units=units, customers=args.customers, seed=7, tag="c")
        jobs = []
        hashed = raw = 0
        for k in range(units // BATCH):
            chunk = data.units[k * BATCH : (k + 1) * BATCH]
            sales = [data.sale(u) for u in chunk]
            registrations = [data.registration(u) for u in chunk]
            for rows in (sales, registrations):
                hashed += sum(1 for r in rows if "sha256" in r["customer"])
                raw += sum(1 for r in rows if "value" in r["customer"])
            jobs.append((f"sales {k + 1:02d}", shop_key, ndjson(sales), len(sales)))
            jobs.append(
                (f"registrations {k + 1:02d}", maker_key, ndjson(registrations), len(registrations))
            )
        # The same customers (same seed: same e-mails), new units: for the 1-thread orientation.
        more = Dataset(units=2 * BATCH, customers=args.customers, seed=7, tag="c", first_unit=units)
        solo_jobs = [
            (
                "solo sales",
                shop_key,
                ndjson([more.sale(u, "SS") for u in more.units[:BATCH]]),
                BATCH,
            ),
            (
                "solo registrations",
                maker_key,
                ndjson([more.registration(u, "SW") for u in more.units[BATCH:]]),
                BATCH,
            ),
        ]
        body_mb = sum(len(j[2]) for j in jobs) / 1e6
        log(
            f"{len(jobs)} NDJSON batches, {body_mb:.1f} MB; identifiers {raw:,} raw, {hashed:,} as sha256"
        )

        naive_units = args.naive_records // 2
        naive_data = Dataset(
            units=naive_units,
            customers=max(1, naive_units // 2),
            seed=11,
            tag="n",
            first_unit=units + 2 * BATCH,
        )
        naive_jobs = []
        for k in range(0, naive_units, BATCH):
            chunk = naive_data.units[k : k + BATCH]
            # one request per partner: sales from the retailer, registrations from the maker
            sales = [naive_row(naive_data.sale(u, "NS")) for u in chunk]
            regs = [naive_row(naive_data.registration(u, "NW")) for u in chunk]
            naive_jobs.append(
                (f"naive sales {k // BATCH + 1}", shop_key, orjson.dumps(sales), len(sales))
            )
            naive_jobs.append(
                (f"naive registrations {k // BATCH + 1}", maker_key, orjson.dumps(regs), len(regs))
            )

        warm = Dataset(units=400, customers=200, seed=3, tag="w", first_unit=10**8)
        warm_jobs = [
            ("warm-up sales", shop_key, ndjson([warm.sale(u, "WS") for u in warm.units]), 400),
            (
                "warm-up registrations",
                maker_key,
                ndjson([warm.registration(u, "WW") for u in warm.units]),
                400,
            ),
            (
                "warm-up naive",
                shop_key,
                orjson.dumps([naive_row(warm.sale(u, "WNS")) for u in warm.units[:100]]),
                100,
            ),
        ]

        server = Gunicorn(env, workers=args.workers, threads=args.threads)
        with server:
            log("warm-up")
            run_batches(
                server.port,
                warm_jobs[:2],
                path="/api/v1/records",
                content_type="application/x-ndjson",
                check=check_ingest("created"),
            )
            run_batches(
                server.port,
                warm_jobs[2:],
                path="/api/bench/naive-records",
                content_type="application/json",
                threads=1,
                check=check_naive,
            )
            baseline_mem = server.memory()
            log(f"workers after warm-up: {memory_line(server)}")
            peaks_reset = server.reset_peaks()
            if not peaks_reset:
                log("could not reset VmHWM (clear_refs refused): peaks include start-up")

            threads = args.client_threads
            log(f"main run: {len(jobs)} batches of {BATCH:,} over {threads} client thread(s)")
            watch = OtherWork(server).start()
            seconds, results = run_batches(
                server.port,
                jobs,
                path="/api/v1/records",
                content_type="application/x-ndjson",
                threads=threads,
                check=check_ingest("created"),
            )
            other_main = watch.stop()
            fast_mem = server.memory()
            log(f"workers after main run: {memory_line(server)}")

            log("orientation: 1 client thread, 2 batches of fresh records by known customers")
            solo_seconds, solo = run_batches(
                server.port,
                solo_jobs,
                path="/api/v1/records",
                content_type="application/x-ndjson",
                threads=1,
                check=check_ingest("created"),
            )

            stored_jobs = {o.label for o in results if o.ok}
            first_batch = next((j for j in jobs if j[0] in stored_jobs), jobs[0])
            log(f"replay of {first_batch[0]} (every row 'existing')")
            replay_seconds, replay = run_batches(
                server.port,
                [first_batch],
                path="/api/v1/records",
                content_type="application/x-ndjson",
                threads=1,
                check=check_ingest("existing"),
            )

            server.reset_peaks()
            log(f"naive endpoint: {len(naive_jobs)} JSON arrays over {threads} client thread(s)")
            watch = OtherWork(server).start()
            naive_seconds, naive = run_batches(
                server.port,
                naive_jobs,
                path="/api/bench/naive-records",
                content_type="application/json",
                threads=threads,
                check=check_naive,
            )
            other_naive = watch.stop()
            naive_mem = server.memory()
            log(f"workers after naive run: {memory_line(server)}")

        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*), count(DISTINCT customer_id) FROM records_interactionrecord "
                "WHERE external_id LIKE 'S-%%' OR external_id LIKE 'W-%%'"
            )
            stored, stored_customers = cursor.fetchone()
            cursor.execute(
                "SELECT count(*), count(*) FILTER (WHERE ciphertext IS NULL) FROM consent_identifier"
            )
            identifiers, without_ct = cursor.fetchone()
        connection.close()

    fast_rate = sum(o.rows for o in results if o.ok) / seconds
    latencies = [sec for o in results for status, sec in o.attempts if status == 200]
    retried = [o for o in results if o.retried]
    server_errors = sum(1 for o in results for status, _ in o.attempts if status >= 500)
    fast_failures = [o for o in results if not o.ok]
    replay_rate = first_batch[3] / replay_seconds
    solo_rate = sum(o.rows for o in solo if o.ok) / solo_seconds
    naive_rows = sum(o.rows for o in naive if o.ok)
    naive_rate = naive_rows / naive_seconds
    naive_failures = [o for o in naive if not o.ok]
    naive_errors = sum(1 for o in naive for status, _ in o.attempts if status >= 500)
    fast_peak = max(h for _, h in fast_mem.values())
    naive_peak = max(h for _, h in naive_mem.values())
    base_rss = max(r for r, _ in baseline_mem.values())
    ratio = fast_rate / naive_rate if naive_rate else float("nan")
    clean = (
        not fast_failures
        and not naive_failures
        and all(o.ok for o in replay)
        and all(o.ok for o in solo)
    )
    solo_errors = sum(1 for o in solo + replay for status, _ in o.attempts if status >= 500)
    first_try = clean and not server_errors and not naive_errors and not solo_errors

    print()
    print(
        f"Bulk ingest over HTTP (gunicorn {args.workers} workers, loopback, {threads} client thread(s)), "
        f"{time.strftime('%Y-%m-%d %H:%M')}"
    )
    print(
        f"main run: {args.records:,} records ({args.customers:,} customers' e-mails, {raw:,} raw, "
        f"{hashed:,} as sha256) in {len(jobs)} NDJSON batches of {BATCH:,}: {seconds:.1f}s"
    )
    print(f"  records/s: {fast_rate:,.0f}  (goal >= 20,000; retries included)")
    print(
        f"  request latency (200 answers): p50 {percentile(latencies, 50):.2f}s, "
        f"p99 {percentile(latencies, 99):.2f}s, max {max(latencies):.2f}s"
    )
    print(
        f"  HTTP 5xx answers: {server_errors} (the batch was rolled back and sent again after a "
        f"short pause; {len(retried)} batches retried"
        + (f": {', '.join(f'{o.label} x{o.retried}' for o in retried)}" if retried else "")
        + ")"
        + (f"\n    first answer: {retried[0].errors[0][:160]}" if retried else "")
    )
    print(
        f"  peak worker RSS (VmHWM) during the run: {fast_peak:.0f} MB  (goal <= 150 MB; "
        f"{base_rss:.0f} MB after warm-up{'' if peaks_reset else ', peak not reset'})"
    )
    print(
        f"  batches not accepted in the end: {len(fast_failures)}"
        + "".join(f"\n    {o.label}: {o.note[:160]}" for o in fast_failures)
    )
    print(
        f"  stored: {stored:,} records over {stored_customers:,} customers; "
        f"{identifiers:,} identifiers in all, {without_ct:,} without ciphertext (only ever sent hashed)"
    )
    print(
        f"orientation, 1 client thread (no concurrent batch): {solo_rate:,.0f} records/s "
        f"({sum(o.rows for o in solo):,} records in {solo_seconds:.1f}s, "
        + ", ".join(f"{o.label} {o.attempts[-1][1]:.2f}s" for o in solo)
        + ")"
    )
    print(
        f"replay of {first_batch[0]} ({first_batch[3]:,} rows, all existing): "
        f"{replay_rate:,.0f} records/s ({replay_seconds:.2f}s)"
    )
    print(
        "naive endpoint (ModelSerializer(many=True), customer_resolve per row, bulk_create): "
        f"{naive_rows:,} records in {naive_seconds:.1f}s"
    )
    print(
        f"  records/s: {naive_rate:,.0f}; peak worker RSS {naive_peak:.0f} MB; 5xx answers: {naive_errors}"
        + "".join(f"\n    {o.label}: {o.note[:160]}" for o in naive_failures)
    )
    print(f"ratio fast/naive: {ratio:.1f}x  (goal >= 3x)")
    print()
    print(
        table(
            ["figure", "value", "goal", "met"],
            [
                [
                    "ingest records/s",
                    f"{fast_rate:,.0f}",
                    ">= 20,000",
                    "yes" if fast_rate >= 20_000 else "NO",
                ],
                [
                    "request p50 / p99 (s)",
                    f"{percentile(latencies, 50):.2f} / {percentile(latencies, 99):.2f}",
                    "",
                    "",
                ],
                ["naive records/s", f"{naive_rate:,.0f}", "", ""],
                ["fast / naive", f"{ratio:.1f}x", ">= 3x", "yes" if ratio >= 3 else "NO"],
                [
                    "peak worker RSS (MB)",
                    f"{fast_peak:.0f}",
                    "<= 150",
                    "yes" if fast_peak <= 150 else "NO",
                ],
                ["naive peak RSS (MB)", f"{naive_peak:.0f}", "", ""],
                ["1 client thread records/s", f"{solo_rate:,.0f}", "", ""],
                ["replay (existing) records/s", f"{replay_rate:,.0f}", "", ""],
                ["every batch stored", "yes" if clean else "NO", "yes", "yes" if clean else "NO"],
                [
                    "no 5xx on the way",
                    "yes" if first_try else f"NO ({server_errors + naive_errors + solo_errors})",
                    "yes",
                    "yes" if first_try else "NO",
                ],
            ],
        )
    )
    print(
        f"\ntotal time {time.perf_counter() - wall:.0f}s. Other processes (not this benchmark, "
        f"gunicorn or the bench database's backends) used {other_main:.0%} of the machine's CPU "
        f"during the main run, {other_naive:.0%} during the naive run: the higher, the less "
        "comparable the figures."
    )
    return 0  # figures printed; a goal not met is a figure, not a crash (make bench runs on)


if __name__ == "__main__":
    sys.exit(main())

"""Timeline reads for one unit and one customer with 2,000,000 records loaded.

Figures (stdout): p50/p95/p99 of GET /api/v1/units/<gtin>/<serial>/timeline and
GET /api/v1/customers/timeline?customer=<id> as the manufacturer (own registrations plus the
retailer's sales where the customer consented), over gunicorn on loopback; beside them, in the
same run, a direct SQL query of the same rows (baseline). Goal: p99 <= 25 ms.

Every read that shows counterpart data also writes an access-log row per customer (part of the
product; the figures include it); a worker chains those rows into the consent ledger after the
reads commit, which this script does itself once the reads are done (counts printed).

    .venv/bin/python bench/bench_timeline.py [--records 2000000] [--requests 500] [--keep]

It creates and drops its own database (clearinghouse_bench_<pid>) and uses Redis db 12.
"""

import random
import sys
import time
import uuid
from hashlib import md5
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

SALE_TO_MAKER = {
    "kind": "sale",
    "purpose": "warranty",
    "direction": "retailer_to_manufacturer",
    "fields": ["product", "customer", "channel"],
}
REGISTRATION_TO_SHOP = {
    "kind": "warranty_registration",
    "purpose": "warranty",
    "direction": "manufacturer_to_retailer",
    "fields": ["product", "warranty_months"],
}
# 1 + (unit * STRIDE) % customers spreads units over customers (STRIDE prime to 2 and 5).
STRIDE = 7919
CHUNK = 250_000


def gtins():
    from clearinghouse.records.gtin import check_digit

    return [
        (body + check_digit(body)).rjust(14, "0")
        for body in (f"400123456{m:03d}" for m in range(8))
    ]


def customer_uuid(n):
    """The id the SQL load gives customer n: md5('bench-customer-<n>')::uuid."""
    return uuid.UUID(md5(f"bench-customer-{n}".encode()).hexdigest())


def unit_of(i, models):
    return models[i % len(models)], f"SN{i:09d}"


def load(cursor, *, shop_id, maker_id, units, customers, models, consent_share):
    """2 x ``units`` records (a sale by the retailer and a registration by the manufacturer per
    unit) over ``customers`` customers, plus consent grants, straight in SQL."""
    started = time.monotonic()
    cursor.execute(
        """INSERT INTO consent_customer (id, created_at)
           SELECT md5('bench-customer-' || n)::uuid, now() - interval '800 days'
           FROM generate_series(1, %s) AS n""",
        [customers],
    )
    log(f"  {customers:,} customers ({time.monotonic() - started:.0f}s)")
    common = """
        INSERT INTO records_interactionrecord
            (ref, submitted_by_id, external_id, kind, purpose, category, customer_id, gtin, serial,
             occurred_at, payload, content_hash, received_at)
        SELECT gen_random_uuid(), %(partner)s, {external_id}, {kind}, 'warranty', {category},
               md5('bench-customer-' || (1 + (i::bigint * {stride}) %% %(customers)s))::uuid,
               (%(gtins)s::text[])[1 + i %% %(models)s], 'SN' || lpad(i::text, 9, '0'),
               {occurred}, {payload}, md5({external_id}), {occurred} + interval '2 hours'
        FROM generate_series(%(first)s, %(last)s) AS i
    """
    sale = common.format(
        external_id="'S-' || lpad(i::text, 9, '0')",
        kind="'sale'",
        category="'purchase'",
        stride=STRIDE,
        occurred="(now() - interval '700 days' + i * interval '50 seconds')",
        payload="""jsonb_build_object('price_cents', 1999 + (i * 37) %% 200000, 'currency', 'EUR',
                   'channel', (ARRAY['store', 'online', 'phone'])[1 + i %% 3])""",
    )
    registration = common.format(
        external_id="'W-' || lpad(i::text, 9, '0')",
        kind="'warranty_registration'",
        category="'warranty'",
        stride=STRIDE,
        occurred="(now() - interval '700 days' + i * interval '50 seconds' + (i %% 30) * interval '1 day')",
        payload="""jsonb_build_object('warranty_months', (ARRAY[24, 36, 60])[1 + i %% 3],
                   'registered_via', (ARRAY['app', 'web', 'mail', 'store'])[1 + i %% 4])""",
    )
    for label, statement, partner in (
        ("sales", sale, shop_id),
        ("registrations", registration, maker_id),
    ):
        for first in range(0, units, CHUNK):
            last = min(units, first + CHUNK) - 1
            cursor.execute(
                statement,
                {
                    "partner": partner,
                    "customers": customers,
                    "gtins": models,
                    "models": len(models),
                    "first": first,
                    "last": last,
                },
            )
            log(f"  {label} {last + 1:,}/{units:,} ({time.monotonic() - started:.0f}s)")
    from consent.catalogue import PURPOSES

    version = PURPOSES["warranty"].current_version
    grant = """
        INSERT INTO consent_consentgrant
            (id, customer_id, grantee_id, purpose, categories, policy_version, source,
             collected_by_id, evidence, granted_at, expires_at, revoked_at, ended_by,
             expiry_recorded_at)
        SELECT gen_random_uuid(), md5('bench-customer-' || n)::uuid, %s, 'warranty',
               ARRAY['identity', 'purchase', 'warranty'], %s, 'customer', NULL, '{{}}'::jsonb,
               now() - interval '600 days', NULL, {revoked}, {ended_by}, NULL
        FROM generate_series(1, %s) AS n WHERE {where}
    """
    modulus = max(1, round(1 / consent_share)) if consent_share > 0 else 0
    if modulus:
        cursor.execute(
            grant.format(revoked="NULL", ended_by="''", where=f"n %% {modulus} = 0"),
            [maker_id, version, customers],
        )
        granted = cursor.rowcount
        # Some customers of the other half withdrew an earlier consent: rows the check must skip.
        cursor.execute(
            grant.format(
                revoked="now() - interval '30 days'",
                ended_by="'customer'",
                where=f"n %% {modulus} = 1",
            ),
            [maker_id, version, customers],
        )
        revoked = cursor.rowcount
    else:
        granted = revoked = 0
    log(
        f"  consent: {granted:,} active grants to the manufacturer, {revoked:,} withdrawn ({time.monotonic() - started:.0f}s)"
    )
    # VACUUM too, so that autovacuum does not start on the fresh 2M rows during the measurement
    # (it did, and doubled p99), and a checkpoint so that no spread checkpoint is still writing.
    for table_name in ("records_interactionrecord", "consent_customer", "consent_consentgrant"):
        cursor.execute(f"VACUUM (ANALYZE) {table_name}")
    cursor.execute("CHECKPOINT")
    log(f"  VACUUM (ANALYZE) and CHECKPOINT done ({time.monotonic() - started:.0f}s)")
    return granted, modulus


def summarise(name, seconds):
    ms = [s * 1000 for s in seconds]
    return [
        name,
        f"{percentile(ms, 50):.1f}",
        f"{percentile(ms, 95):.1f}",
        f"{percentile(ms, 99):.1f}",
        f"{max(ms):.1f}",
    ]


def main():
    args = arguments(
        __doc__.splitlines()[0],
        records=(int, 2_000_000, "records loaded (half sales, half registrations)"),
        customers=(int, 200_000, "customers the records are spread over"),
        consent_share=(float, 0.5, "share of customers who consented to the manufacturer"),
        requests=(int, 500, "measured requests per endpoint"),
        warmup=(int, 50, "warm-up requests (not measured)"),
    )
    wall = time.perf_counter()
    with bench_database(keep=args.keep) as (env, _url, _redis):
        django_setup()
        from django.db import connection

        from consent.models import AccessLogEntry, LedgerEntry
        from partners.agreements.services import agreement_countersign, agreement_propose

        maker, maker_key, shop, _shop_key, maker_admin, shop_admin = setup_partners()
        version = agreement_propose(
            proposer=shop,
            counterpart=maker,
            actor=shop_admin,
            clauses=[SALE_TO_MAKER, REGISTRATION_TO_SHOP],
        )
        agreement_countersign(version=version, partner=maker, actor=maker_admin)
        log("partners, keys and an active agreement set up")

        units = args.records // 2
        models = gtins()
        log(f"loading {2 * units:,} records over {units:,} units and {args.customers:,} customers")
        load_started = time.perf_counter()
        with connection.cursor() as cursor:
            _granted, modulus = load(
                cursor,
                shop_id=shop.pk,
                maker_id=maker.pk,
                units=units,
                customers=args.customers,
                models=models,
                consent_share=args.consent_share,
            )
            cursor.execute(
                "SELECT pg_size_pretty(pg_total_relation_size('records_interactionrecord'))"
            )
            size = cursor.fetchone()[0]
        load_seconds = time.perf_counter() - load_started

        rng = random.Random(2026)
        total = args.warmup + args.requests
        sample_units = [unit_of(rng.randrange(units), models) for _ in range(total)]
        sample_customers = [customer_uuid(1 + rng.randrange(args.customers)) for _ in range(total)]

        before_access = AccessLogEntry.objects.count()
        before_ledger = LedgerEntry.objects.count()
        unit_times, customer_times = [], []
        unit_items, customer_items, unit_shared, customer_shared = [], [], 0, 0
        # (seconds, showed counterpart rows): such reads also write the access log
        split = {True: [], False: []}
        failures = []
        server = Gunicorn(env, workers=args.workers, threads=args.threads)
        with server:
            client = Client(server.port, key=maker_key)
            log(f"{args.warmup} warm-up requests, then {args.requests} per endpoint, sequential")
            watch = OtherWork(server).start()
            for n in range(total):
                measured = n >= args.warmup
                gtin, serial = sample_units[n]
                status, body, seconds = client.request(
                    "GET", f"/api/v1/units/{gtin}/{serial}/timeline"
                )
                if status != 200:
                    failures.append(("unit", status, body[:200]))
                elif measured:
                    results = orjson.loads(body)["results"]
                    unit_times.append(seconds)
                    unit_items.append(len(results))
                    shared = any(not r["own"] for r in results)
                    unit_shared += shared
                    split[shared].append(seconds)
                status, body, seconds = client.request(
                    "GET", f"/api/v1/customers/timeline?customer={sample_customers[n]}"
                )
                if status != 200:
                    failures.append(("customer", status, body[:200]))
                elif measured:
                    results = orjson.loads(body)["results"]
                    customer_times.append(seconds)
                    customer_items.append(len(results))
                    shared = any(not r["own"] for r in results)
                    customer_shared += shared
                    split[shared].append(seconds)
                if n and n % 100 == 0:
                    log(f"  {n}/{total} of each")
            client.close()
            other = watch.stop()
            memory = server.memory()

        from consent.services import access_log_chain

        while access_log_chain():  # what the worker does after each burst of reads
            pass
        access_rows = AccessLogEntry.objects.count() - before_access
        ledger_rows = LedgerEntry.objects.count() - before_ledger

        log("baseline: the same rows by direct SQL (psycopg through Django's connection)")
        columns = (
            "id, ref, submitted_by_id, external_id, kind, purpose, category, customer_id, gtin, "
            "serial, occurred_at, payload, content_hash, received_at, tombstoned_at"
        )
        sql_unit, sql_customer = [], []
        with connection.cursor() as cursor:
            for n in range(total):
                gtin, serial = sample_units[n]
                started = time.perf_counter()
                cursor.execute(
                    f"SELECT {columns} FROM records_interactionrecord WHERE gtin = %s AND serial = %s ORDER BY occurred_at, id",
                    [gtin, serial],
                )
                cursor.fetchall()
                if n >= args.warmup:
                    sql_unit.append(time.perf_counter() - started)
                started = time.perf_counter()
                cursor.execute(
                    f"SELECT {columns} FROM records_interactionrecord WHERE customer_id = %s ORDER BY occurred_at, id",
                    [sample_customers[n]],
                )
                cursor.fetchall()
                if n >= args.warmup:
                    sql_customer.append(time.perf_counter() - started)
        connection.close()

    measured = args.requests
    unit_p99 = percentile(unit_times, 99) * 1000 if unit_times else float("nan")
    customer_p99 = percentile(customer_times, 99) * 1000 if customer_times else float("nan")
    ok = not failures and len(unit_times) == measured and len(customer_times) == measured

    print()
    print(
        f"Timeline reads with {2 * units:,} records loaded (gunicorn {args.workers} workers, loopback, "
        f"one client, sequential), {time.strftime('%Y-%m-%d %H:%M')}"
    )
    print(
        f"data: {units:,} units x (sale by the retailer + registration by the manufacturer), "
        f"{args.customers:,} customers, {args.consent_share:.0%} consented to the manufacturer; "
        f"table + indexes {size}; loaded in {load_seconds:.0f}s"
    )
    print(
        f"requests as the manufacturer after {args.warmup} warm-up: {measured} per endpoint; failures: {len(failures)}"
        + "".join(f"\n  {f}" for f in failures[:5])
    )
    print(
        f"unit timeline: {sum(unit_items) / max(1, len(unit_items)):.1f} rows per answer, "
        f"{unit_shared} of {len(unit_items)} showed the retailer's sale (consent share {1 / modulus if modulus else 0:.0%})"
    )
    print(
        f"customer timeline: {sum(customer_items) / max(1, len(customer_items)):.1f} rows per answer, "
        f"{customer_shared} of {len(customer_items)} showed the retailer's sales"
    )
    print(
        f"each read of counterpart data wrote access-log rows and ledger entries: "
        f"{access_rows:,} access-log rows, {ledger_rows:,} ledger entries for {2 * (args.warmup + measured)} requests"
    )
    print(
        "worker RSS: "
        + ", ".join(f"{rss:.0f} MB (peak {hwm:.0f} MB)" for _, (rss, hwm) in sorted(memory.items()))
    )
    print()
    print(
        table(
            ["latency (ms)", "p50", "p95", "p99", "max"],
            [
                summarise("GET unit timeline (HTTP)", unit_times),
                summarise("GET customer timeline (HTTP)", customer_times),
                summarise("  both, own rows only", split[False]),
                summarise("  both, with counterpart rows (+log)", split[True]),
                summarise("SQL unit rows (baseline)", sql_unit),
                summarise("SQL customer rows (baseline)", sql_customer),
            ],
        )
    )
    print()
    print(
        table(
            ["figure", "value", "goal", "met"],
            [
                [
                    "unit timeline p99 (ms)",
                    f"{unit_p99:.1f}",
                    "<= 25",
                    "yes" if unit_p99 <= 25 else "NO",
                ],
                [
                    "customer timeline p99 (ms)",
                    f"{customer_p99:.1f}",
                    "<= 25",
                    "yes" if customer_p99 <= 25 else "NO",
                ],
                ["all responses 200", "yes" if ok else "NO", "yes", "yes" if ok else "NO"],
            ],
        )
    )
    print(
        f"\ntotal time {time.perf_counter() - wall:.0f}s. Other processes (not this benchmark, "
        f"gunicorn or the bench database's backends) used {other:.0%} of the machine's CPU during "
        "the requests: the higher, the less comparable the figures."
    )
    return 0  # figures printed; a goal not met is a figure, not a crash (make bench runs on)


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: resolving e-mail identifiers to pseudonymous customers, against a bare baseline.

    DJANGO_SETTINGS_MODULE=clearinghouse.settings.development python bench/bench_identity.py

Three timed passes over the same distinct e-mail addresses (mixed case, stray whitespace):

* baseline — per value, HMAC-SHA256 under a 32-byte key and AES-GCM encryption under a fresh
  32-byte key; no normalisation, no database. The floor that the cryptography alone costs.
* real, new — ``parse_identifier`` (normalise, validate, SHA-256) and ``customers_resolve`` in
  batches: keyed digest, a data key per customer wrapped under the master key, the encrypted
  value, and the set-based upsert of customers, keys, identifiers and sources into PostgreSQL,
  one transaction per batch.
* real, known — the same addresses again: every one is found, nothing is created.

The identifiers are attributed to a throwaway partner registered for the run; at the end (also
after a failure or Ctrl-C) the customers it created and the partner are deleted, so the database
is left as it was. Each run uses its own e-mail domain, so runs never meet.

DEBUG defaults to off here (``DEBUG=1`` turns it back on): Django's debug cursor would otherwise
record every query, which production does not pay for.
"""

import argparse
import hashlib
import hmac
import os
import random
import secrets
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def setup_django():
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clearinghouse.settings.development")
    os.environ.setdefault("DEBUG", "false")
    import django

    django.setup()


def make_values(count, run_id, seed):
    """``count`` distinct raw addresses as a partner might send them: mixed case, whitespace."""
    rng = random.Random(seed)
    pads = ["", "", "", " ", "  ", "\t", " \n"]
    values = []
    for i in range(count):
        address = f"customer.{i}+{rng.randrange(10**6)}@bench-{run_id}.example.org"
        cased = "".join(ch.upper() if rng.random() < 0.3 else ch for ch in address)
        values.append(rng.choice(pads) + cased + rng.choice(pads))
    return values


class Progress:
    """One status line on stderr, rewritten in place on a terminal, every tenth update otherwise."""

    def __init__(self, label, total):
        self.label, self.total, self.started = label, total, time.perf_counter()
        self.tty = sys.stderr.isatty()
        self.updates = 0

    def update(self, done):
        self.updates += 1
        if not self.tty and self.updates % 10 and done < self.total:
            return
        elapsed = time.perf_counter() - self.started
        rate = done / elapsed if elapsed else 0
        line = f"  {self.label}: {done:>9,}/{self.total:,}  {rate:>9,.0f}/s  {elapsed:6.1f} s"
        sys.stderr.write(("\r" + line) if self.tty else line + "\n")
        sys.stderr.flush()

    def done(self):
        if self.tty:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


def baseline(values, batch):
    """HMAC-SHA256 and AES-GCM with a fresh key per value: the cryptographic floor."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    hmac_key = os.urandom(32)
    progress = Progress("baseline", len(values))
    started = time.perf_counter()
    for start in range(0, len(values), batch):
        for value in values[start : start + batch]:
            data = value.encode()
            hmac.new(hmac_key, data, hashlib.sha256).digest()
            AESGCM(os.urandom(32)).encrypt(os.urandom(12), data, None)
        progress.update(min(start + batch, len(values)))
    elapsed = time.perf_counter() - started
    progress.done()
    return elapsed


def resolve_all(values, batch, partner, label):
    """parse_identifier + customers_resolve in batches; (seconds, customer ids in order)."""
    from consent import identity, services

    progress = Progress(label, len(values))
    customer_ids = []
    started = time.perf_counter()
    for start in range(0, len(values), batch):
        parsed = [
            identity.parse_identifier(kind=identity.EMAIL, value=value)
            for value in values[start : start + batch]
        ]
        customer_ids.extend(services.customers_resolve(identifiers=parsed, partner=partner))
        progress.update(len(customer_ids))
    elapsed = time.perf_counter() - started
    progress.done()
    return elapsed, customer_ids


def register_bench_partner(run_id):
    """A throwaway active partner, through the services. The approval e-mail task runs eagerly
    into a dummy backend, so that nothing is left queued for a worker to find later."""
    from django.test import override_settings

    from clearinghouse.celery import app
    from partners import services
    from partners.models import Partner

    partner, admin = services.partner_register(
        name=f"Bench {run_id}",
        kind=Partner.Kind.RETAILER,
        contact_email=f"bench-{run_id}@example.org",
        admin_email=f"bench-admin-{run_id}@example.org",
        admin_password=secrets.token_urlsafe(24),
        admin_name="Bench",
    )
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        with override_settings(EMAIL_BACKEND="django.core.mail.backends.dummy.EmailBackend"):
            # actor=None: no operator account is needed for a partner that lives for one run.
            partner = services.partner_approve(partner=partner, actor=None)
    finally:
        app.conf.task_always_eager = eager
    return partner, admin


def clean_up(partner, admin):
    """Delete every customer first seen by the bench partner, then the partner and its admin.
    Set-based, in chunks; works after an interrupted run as well."""
    from django.db import connection, transaction

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT customer_id FROM consent_identifier WHERE first_seen_by_id = %s",
            [partner.pk],
        )
        customer_ids = [row[0] for row in cursor.fetchall()]
    chunk = 10_000
    for start in range(0, len(customer_ids), chunk):
        ids = customer_ids[start : start + chunk]
        with transaction.atomic(), connection.cursor() as cursor:
            for table in (
                "consent_customersource",
                "consent_identifier",
                "consent_customerkey",
            ):
                cursor.execute(f"DELETE FROM {table} WHERE customer_id = ANY(%s::uuid[])", [ids])
            cursor.execute("DELETE FROM consent_customer WHERE id = ANY(%s::uuid[])", [ids])
    with transaction.atomic():
        partner.delete()
        admin.delete()
    return len(customer_ids)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=100_000, help="identifiers (100,000)")
    parser.add_argument("--batch", type=int, default=1_000, help="batch size (1,000)")
    args = parser.parse_args()
    setup_django()

    run_id = secrets.token_hex(4)
    run_started = time.perf_counter()
    values = make_values(args.count, run_id, seed=run_id)
    assert len(set(values)) == len(values)
    print(
        f"bench_identity (run {run_id}): {args.count:,} distinct e-mail identifiers, "
        f"batches of {args.batch:,}",
        flush=True,
    )

    base_s = baseline(values, args.batch)
    partner, admin = register_bench_partner(run_id)
    try:
        new_s, first_ids = resolve_all(values, args.batch, partner, "real, new")
        known_s, second_ids = resolve_all(values, args.batch, partner, "real, known")
    finally:
        removed = clean_up(partner, admin)

    n = args.count
    distinct = len(set(first_ids))
    print(
        f"  baseline     HMAC-SHA256 + AES-GCM, no DB    {base_s:7.2f} s  {n / base_s:>10,.0f} rec/s"
    )
    print(
        f"  real, new    parse + customers_resolve       {new_s:7.2f} s  {n / new_s:>10,.0f} rec/s"
    )
    print(
        f"  real, known  the same again (lookups only)   {known_s:7.2f} s  {n / known_s:>10,.0f} rec/s"
    )
    print(
        f"  ratio real/baseline: {new_s / base_s:.1f}x the time "
        f"({base_s / new_s:.1%} of the baseline's rate); "
        f"known/baseline: {known_s / base_s:.1f}x"
    )
    print(
        f"  timed passes {base_s + new_s + known_s:.1f} s; whole run {time.perf_counter() - run_started:.1f} s"
    )
    print(f"  customers created {distinct:,}, removed {removed:,}; bench partner removed")
    if distinct != n or second_ids != first_ids:
        print("  WARNING: re-resolving did not return the same customers", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

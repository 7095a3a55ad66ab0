"""Concurrent identity resolution: two transactions that name the same new people at once end
with one subject per identifier, no spare subjects and no error. The race is timing-dependent
(a barrier lines the two up), so these tests guard the behaviour rather than reproducing a
collision every time."""

import threading

import pytest
from django.db import connections, transaction

from consent import identity, services
from consent.models import Customer, CustomerKey, CustomerSource, Identifier
from consent.services import access
from tests.support.waiting import DatabaseActivity, lock_waits, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def _race(calls):
    """Run each callable in its own thread (and database connection), started together;
    returns (results in call order, exceptions)."""
    results, errors = [None] * len(calls), []
    barrier = threading.Barrier(len(calls))

    def run(n, call):
        try:
            barrier.wait()
            with transaction.atomic():
                results[n] = call()
        except Exception as exc:  # a deadlock or a unique violation would land here
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(n, c)) for n, c in enumerate(calls)]
    for t in threads:
        t.start()

    def ended():  # progress, without a query: this may run in a thread of the test's own
        return sum(not t.is_alive() for t in threads)

    wait_for(
        lambda: ended() == len(threads),
        what=f"{len(calls)} racing calls to end",
        progress={"calls ended": ended},
    )
    return results, errors


def test_overlapping_batches_resolved_at_once_share_one_subject_per_identifier(make_partner):
    shop, _ = make_partner()
    maker, _ = make_partner()
    emails = [f"person{i}@example.org" for i in range(600)]
    raw = [identity.parse_identifier(kind="email", value=e) for e in emails]
    # the maker names the same people by hash, in the opposite order, from the middle on
    hashed = [
        identity.parse_identifier(kind="email", sha256=identity.prehash(e))
        for e in reversed(emails[200:] + [f"other{i}@example.org" for i in range(200)])
    ]
    for _ in range(3):
        (by_shop, by_maker), errors = _race(
            [
                lambda: services.customers_resolve(
                    identifiers=raw, partner=shop, categories=["purchase"]
                ),
                lambda: services.customers_resolve(
                    identifiers=hashed, partner=maker, categories=["warranty"]
                ),
            ]
        )
        assert errors == []
        shop_of = dict(zip(emails, by_shop, strict=True))
        for parsed, customer_id in zip(hashed, by_maker, strict=True):
            email = next((e for e in emails[200:] if identity.prehash(e) == parsed.sha256), None)
            if email:
                assert shop_of[email] == customer_id
    assert Identifier.objects.count() == 800
    assert Customer.objects.count() == 800 == CustomerKey.objects.count()
    assert CustomerSource.objects.filter(partner=shop).count() == 600
    assert CustomerSource.objects.filter(partner=maker).count() == 600
    # the raw value reached every identifier the shop sent, whoever created it
    assert not Identifier.objects.filter(
        customer__in=CustomerSource.objects.filter(partner=shop).values("customer"),
        ciphertext__isnull=True,
    ).exists()


def test_a_chainer_waits_for_reads_another_has_locked_and_keeps_their_order(
    make_partner, make_customer, monkeypatch
):
    """Another chainer holds the oldest unchained reads (it has locked them and is about to
    append them): this one must wait, not chain the later reads first."""
    import psycopg

    from consent.models import AccessLogEntry, LedgerEntry
    from partners.models import Partner
    from tests.support.processes import test_database_url

    maker, _ = make_partner()
    shop, _ = make_partner(kind=Partner.Kind.RETAILER)
    customer = make_customer("alice@example.org", shop)
    # The reads stay unchained until this test chains them (eager tasks would chain at once).
    monkeypatch.setattr(access, "_schedule_access_chaining", lambda: None)
    for n in range(10):
        services.access_record(
            partner=maker,
            channel="api",
            request_id=f"req-{n:02d}",
            accesses={customer.pk: services.Access(1, {"warranty"}, {"purchase"})},
        )
    with psycopg.connect(test_database_url(), autocommit=False) as other:
        locked = other.execute(
            """SELECT id FROM consent_accesslogentry WHERE ledger_seq IS NULL
               ORDER BY id LIMIT 3 FOR UPDATE"""
        ).fetchall()
        assert len(locked) == 3
        errors, done = [], threading.Event()

        def chain():
            _, errs = _race([lambda: services.access_log_chain()])
            errors.extend(errs)
            done.set()

        chainer = threading.Thread(target=chain)
        chainer.start()
        wait_for(
            lambda: lock_waits() or done.is_set(),
            what="the chainer to wait for the locked reads (or to end)",
            progress={"database": DatabaseActivity()},
        )
        assert not done.is_set(), errors  # waiting for the three reads
        other.rollback()
    wait_for(
        done.is_set,
        what="the chainer to end",
        progress={"database": DatabaseActivity()},
    )
    assert errors == [] and not AccessLogEntry.objects.filter(ledger_seq__isnull=True).exists()
    requests = LedgerEntry.objects.filter(kind="data.accessed").order_by("seq")
    assert [e.payload["request"] for e in requests] == [f"req-{n:02d}" for n in range(10)]

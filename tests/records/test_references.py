"""References checked by statement triggers in place of foreign keys (clearinghouse/common/references.py):
every way of breaking one fails, including a delete racing an insert that has not committed yet.
The checked references are read from the database's own triggers, so a table that adopts the
triggers is covered here without a new test."""

import re
import threading
import uuid

import psycopg
import pytest
from django.db import IntegrityError, connection, transaction

from clearinghouse.records.models import InteractionRecord
from clearinghouse.records.services import records_ingest
from consent.models import Customer
from tests.support.waiting import DatabaseActivity, lock_waits, wait_for

from .conftest import sale

pytestmark = pytest.mark.django_db(transaction=True)


def _checked_references():
    """{(table, column): referenced table} from every trigger running references_check."""
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT c.relname, encode(t.tgargs, 'escape') FROM pg_trigger t
               JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_proc p ON p.oid = t.tgfoid
               WHERE p.proname = 'references_check'"""
        )
        found = {}
        for table, args in cursor.fetchall():
            parts = args.split("\\000")[:-1]
            for column, referenced in zip(parts[::2], parts[1::2], strict=True):
                found[(table, column)] = referenced
    return found


def _ingest(partner, *rows):
    results = records_ingest(partner=partner, rows=list(rows), max_rows=100)
    assert [r.status for r in results] == ["created"] * len(rows)
    return InteractionRecord.objects.unscoped("test setup").filter(submitted_by=partner)


def _run(*statements):
    """Each (sql, params) in one transaction."""
    with transaction.atomic(), connection.cursor() as cursor:
        for sql, params in statements:
            cursor.execute(sql, params)


def _insert(partner_id, customer_id, external_id):
    return (
        """INSERT INTO records_interactionrecord
               (ref, submitted_by_id, external_id, kind, purpose, category, customer_id, gtin,
                serial, occurred_at, payload, content_hash, received_at)
           VALUES (gen_random_uuid(), %s, %s, 'sale', 'warranty', 'purchase', %s, '', '',
                   now(), '{}', 'x', now())""",
        [partner_id, external_id, customer_id],
    )


def test_the_checked_references_are_the_ones_bulk_ingest_writes():
    assert _checked_references() == {
        ("records_interactionrecord", "customer_id"): "consent_customer",
        ("records_interactionrecord", "submitted_by_id"): "partners_partner",
        ("consent_customersource", "customer_id"): "consent_customer",
        ("consent_customersource", "partner_id"): "partners_partner",
        ("consent_customerkey", "customer_id"): "consent_customer",
        ("consent_identifier", "first_seen_by_id"): "partners_partner",
    }


def test_no_checked_reference_can_name_a_row_that_does_not_exist(make_partner):
    shop, _ = make_partner()
    record = _ingest(shop, sale()).get()  # a record, its customer, key, identifier and source
    for (table, column), referenced in _checked_references().items():
        with pytest.raises(
            IntegrityError, match=re.escape(f"{table}.{column} names a row of {referenced}")
        ):
            _run((f"UPDATE {table} SET {column} = %s", [uuid.uuid4()]))
    with pytest.raises(IntegrityError, match="customer_id names a row of consent_customer"):
        _run(_insert(shop.pk, uuid.uuid4(), "S-ghost"))
    with pytest.raises(IntegrityError, match="submitted_by_id names a row of partners_partner"):
        _run(_insert(uuid.uuid4(), record.customer_id, "S-nobody"))
    # Erasure's tombstone (no customer) and a record without one are fine.
    InteractionRecord.objects.unscoped("test setup").filter(pk=record.pk).update(customer=None)
    _run(_insert(shop.pk, None, "S-anonymous"))
    assert InteractionRecord.objects.unscoped("test setup").filter(submitted_by=shop).count() == 2


def test_a_customer_or_partner_still_named_cannot_be_deleted(make_partner):
    shop, _ = make_partner()
    record = _ingest(shop, sale()).get()
    loner = Customer.objects.create()
    customer = [record.customer_id]
    with pytest.raises(IntegrityError, match="names this row of consent_customer"):
        _run(
            ("DELETE FROM consent_identifier WHERE customer_id = %s", customer),
            ("DELETE FROM consent_customer WHERE id = %s", customer),
        )
    # Nothing but the record names it now: still refused.
    with pytest.raises(
        IntegrityError, match=re.escape("records_interactionrecord.customer_id names this")
    ):
        _run(
            ("DELETE FROM consent_identifier WHERE customer_id = %s", customer),
            ("DELETE FROM consent_customersource WHERE customer_id = %s", customer),
            ("DELETE FROM consent_customerkey WHERE customer_id = %s", customer),
            ("DELETE FROM consent_customer WHERE id = %s", customer),
        )
    with pytest.raises(IntegrityError, match="names this row of partners_partner"):
        _run(("DELETE FROM partners_partner WHERE id = %s", [shop.pk]))
    _run(("DELETE FROM consent_customer WHERE id = %s", [loner.pk]))
    assert not Customer.objects.filter(pk=loner.pk).exists()
    assert Customer.objects.filter(pk=record.customer_id).exists()


def test_a_delete_racing_an_uncommitted_insert_waits_for_it_and_fails(make_partner):
    """Without a per-row lock, the delete must not slip between the insert's check and its
    commit: it waits for every transaction writing records, then sees the new reference."""
    shop, _ = make_partner()
    customer = Customer.objects.create()
    dsn = connection.get_connection_params()
    inserter = psycopg.connect(**dsn)
    deleter = psycopg.connect(**dsn, autocommit=True)
    try:
        inserter.execute(*_insert(shop.pk, customer.pk, "S-racing"))  # open, not committed
        outcome = {}

        def delete():
            try:
                deleter.execute("DELETE FROM consent_customer WHERE id = %s", [customer.pk])
                outcome["deleted"] = True
            except psycopg.errors.ForeignKeyViolation as exc:
                outcome["refused"] = str(exc)

        worker = threading.Thread(target=delete)
        worker.start()
        wait_for(
            lambda: lock_waits() or not worker.is_alive(),
            what="the delete to wait for the inserting transaction (or to end)",
            progress={"database": DatabaseActivity()},
        )
        assert worker.is_alive() and not outcome  # waiting for the inserting transaction
        inserter.commit()
        wait_for(
            lambda: not worker.is_alive(),
            what="the delete to end",
            progress={"database": DatabaseActivity()},
        )
        assert "records_interactionrecord.customer_id names this" in outcome.get("refused", "")
    finally:
        inserter.close()
        deleter.close()
    assert (
        InteractionRecord.objects.unscoped("test setup").filter(customer_id=customer.pk).count()
        == 1
    )

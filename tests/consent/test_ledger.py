"""The ledger is append-only and a verify command names any edited, removed or reordered entry."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction

from consent.ledger import ledger_append, ledger_verify
from consent.models import LedgerEntry


def _fill(n=6):
    for i in range(n):
        ledger_append(kind="test.entry", number=i)


def _tamper(sql, params=()):
    """What an attacker with the table owner's rights could do: disable the guard and write."""
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE consent_ledgerentry DISABLE TRIGGER consent_ledger_append_only")
        cursor.execute(sql, params)
        cursor.execute("ALTER TABLE consent_ledgerentry ENABLE TRIGGER consent_ledger_append_only")


def test_intact_ledger_verifies(db):
    _fill()
    checked, problems = ledger_verify()
    assert checked == 6 and problems == []
    call_command("verify_ledger")


def test_database_refuses_updates_and_deletes(db):
    _fill(2)
    for statement in [
        "UPDATE consent_ledgerentry SET kind = 'x'",
        "DELETE FROM consent_ledgerentry",
    ]:
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(statement)
    assert LedgerEntry.objects.count() == 2


def test_an_edited_entry_is_named(db):
    _fill()
    _tamper("UPDATE consent_ledgerentry SET payload = '{\"number\": 99}' WHERE seq = 3")
    _, problems = ledger_verify()
    assert [(p.seq, "edited" in p.problem) for p in problems] == [(3, True)]
    with pytest.raises(CommandError, match="NOT intact"):
        call_command("verify_ledger")


def test_a_removed_entry_is_named(db):
    _fill()
    _tamper("DELETE FROM consent_ledgerentry WHERE seq = 4")
    _, problems = ledger_verify()
    assert problems and problems[0].seq == 5 and "missing" in problems[0].problem


def test_a_removed_last_entry_cannot_be_hidden_by_renumbering(db):
    _fill()
    _tamper("DELETE FROM consent_ledgerentry WHERE seq = 2")
    # Out of the way first: an UPDATE checks the key row by row, in the heap's order, which is
    # not the order of seq once earlier tests' rows have been vacuumed away.
    _tamper("UPDATE consent_ledgerentry SET seq = seq + 1000000 WHERE seq > 2")
    _tamper("UPDATE consent_ledgerentry SET seq = seq - 1000001 WHERE seq > 1000000")
    _, problems = ledger_verify()
    assert problems and problems[0].seq == 2


def test_reordered_entries_are_named(db):
    _fill()
    # One row at a time: an UPDATE checks the key row by row, in the heap's order.
    _tamper("UPDATE consent_ledgerentry SET seq = 1002 WHERE seq = 2")
    _tamper("UPDATE consent_ledgerentry SET seq = 2 WHERE seq = 3")
    _tamper("UPDATE consent_ledgerentry SET seq = 3 WHERE seq = 1002")
    _, problems = ledger_verify()
    assert problems and problems[0].seq == 2


def test_a_rewritten_chain_is_caught_by_the_edited_entry(db):
    """Recomputing one entry's hash without its successors still breaks the next link."""
    _fill()
    from consent.ledger import entry_hash

    entry = LedgerEntry.objects.get(seq=3)
    forged_payload = {"number": 42}
    forged = entry_hash(
        entry.prev_hash, 3, entry.recorded_at, entry.kind, None, None, forged_payload
    )
    _tamper(
        "UPDATE consent_ledgerentry SET payload = %s, hash = %s WHERE seq = 3",
        ['{"number": 42}', forged],
    )
    _, problems = ledger_verify()
    assert problems and problems[0].seq == 4

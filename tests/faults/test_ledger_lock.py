"""Under load a timeline read (its access log) and a consent change deadlocked on the ledger
lock: the read's foreign keys were checked at COMMIT, while it held the lock, and waited for the
customer row the consent change had locked, which itself waited for the lock. The ledger now
checks what the transaction wrote before it takes the lock."""

import uuid

import pytest
from django.db import IntegrityError, transaction

from consent.ledger import ledger_append_many
from consent.models import AccessLogEntry, LedgerEntry

pytestmark = pytest.mark.django_db(transaction=True)


def test_rows_written_before_a_ledger_entry_are_checked_before_the_ledger_lock(make_partner):
    partner, _ = make_partner()
    with pytest.raises(IntegrityError), transaction.atomic():
        AccessLogEntry.objects.create(
            customer_id=uuid.uuid4(),  # no such customer: refused before the lock is taken
            partner=partner,
            channel="api",
            record_count=1,
        )
        ledger_append_many([("data.accessed", None, partner.pk, {"records": 1})])
        pytest.fail("the foreign key was not checked before the ledger entry")
    assert not LedgerEntry.objects.filter(kind="data.accessed").exists()

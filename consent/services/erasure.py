"""Erasure (GDPR Art. 17): crypto-shredding a customer, leaving only the tombstones the ledger
needs, and telling the recipients of their data (Art. 19) once it commits."""

from django.db import transaction
from django.utils import timezone

from .. import notices
from ..ledger import ledger_append
from ..models import (
    AccessLogEntry,
    ConsentGrant,
    Customer,
    CustomerKey,
    CustomerSource,
    MagicLink,
    Receipt,
)
from ..signals import customer_erased, customer_erasing
from .access import access_log_chain
from .grants import grant_end
from .receipts import receipt_issue


@transaction.atomic
def customer_erase(*, customer: Customer) -> Receipt | None:
    """Erase a customer: end every grant, let the core tombstone the records, delete the
    identifiers, sign-in links, access log and sources, destroy the data key (after which no
    ciphertext of theirs can ever be decrypted), and issue a final signed receipt. The receipt
    names the partners told of the erasure (``recipients_told``: exactly those that read the
    customer's data, GDPR Art. 19) apart from those whose consents it ended
    (``consents_ended_with``). The ledger keeps its entries, which name only the pseudonymous
    id. Erasing twice returns the first receipt."""
    customer = Customer.objects.select_for_update(no_key=True).get(pk=customer.pk)
    if customer.is_erased:
        return customer.receipts.filter(kind=Receipt.Kind.ERASURE).first()
    now = timezone.now()
    ended = []
    ended_with = {}
    for grant in (
        ConsentGrant.objects.unscoped("erasure ends the customer's consents to every partner")
        .select_for_update(of=("self",), no_key=True)
        .select_related("grantee", "customer")
        .filter(customer=customer, revoked_at__isnull=True)
    ):
        grant_end(grant=grant, ended_by=ConsentGrant.Ended.ERASURE, now=now, receipt=False)
        ended.append(grant)
        ended_with[grant.grantee_id] = grant.grantee.name
    # GDPR Art. 19: the partners that read the customer's data, from the access log while it
    # still exists (it goes below); told after the commit (``customer_erased``). The receipt
    # names exactly these as told: a partner whose consent ended but that never read anything
    # had nothing to erase and is not told.
    told = notices.notices_capture_for_erasure(customer_id=customer.pk, erased_at=now)
    results = customer_erasing.send(sender=Customer, customer_id=customer.pk, erased_at=now)
    tombstoned = sum(r for _, r in results if isinstance(r, int))
    counts = {
        "identifiers": customer.identifiers.count(),
        "consents_ended": len(ended),
        "records_tombstoned": tombstoned,
    }
    customer.identifiers.all().delete()
    MagicLink.objects.filter(customer=customer).delete()
    access_log_chain(limit=None, customer_id=customer.pk)  # the ledger keeps their reads
    AccessLogEntry.objects.filter(customer=customer).delete()
    CustomerSource.objects.filter(customer=customer).delete()
    customer.receipts.all().delete()
    CustomerKey.objects.filter(customer=customer).delete()
    customer.erased_at = now
    customer.save(update_fields=["erased_at"])
    ledger_append(kind="customer.erased", customer_ref=customer.pk, **counts)
    receipt = receipt_issue(
        customer=customer,
        kind=Receipt.Kind.ERASURE,
        extra={
            "erased_at": now.isoformat(),
            "erased": counts,
            "recipients_told": sorted(n.partner.name for n in told),
            "consents_ended_with": sorted(ended_with.values()),
        },
    )
    customer_id = customer.pk
    transaction.on_commit(
        lambda: customer_erased.send(sender=Customer, customer_id=customer_id), robust=True
    )
    return receipt

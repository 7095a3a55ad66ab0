"""The records' part of erasure and export, connected to the consent layer's signals."""

from django.db.models import Q
from django.dispatch import receiver
from django.utils import timezone

from consent.signals import customer_erasing, customer_exporting

from .models import InteractionRecord


@receiver(customer_erasing, dispatch_uid="records.tombstone_on_erasure")
def tombstone_records(sender, customer_id, **kwargs):
    """Inside the erasure transaction: drop the customer and the payload from every record about
    them, keeping a tombstone (kind, unit, time, submitter) that reconciliation needs."""
    return (
        InteractionRecord.objects.unscoped(
            "erasure reaches every partner's records of the customer"
        )
        .filter(customer_id=customer_id)
        .update(customer=None, payload={}, tombstoned_at=timezone.now())
    )


@receiver(customer_exporting, dispatch_uid="records.export")
def export_records(sender, customer_id, **kwargs):
    """Every record about the customer, whoever submitted it: it is the customer's own data."""
    records = (
        InteractionRecord.objects.unscoped("the customer sees what every partner recorded of them")
        .filter(Q(customer_id=customer_id))
        .select_related("submitted_by")
        .order_by("occurred_at")
    )
    return {
        "records": [
            {
                "ref": str(r.ref),
                "kind": r.kind,
                "recorded_by": r.submitted_by.name,
                "occurred_at": r.occurred_at.isoformat(),
                "product": {"gtin": r.gtin, "serial": r.serial} if r.gtin else None,
                "payload": r.payload,
            }
            for r in records
        ]
    }

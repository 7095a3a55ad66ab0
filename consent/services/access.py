"""The access log: every counterparty read of customer data, one row per customer and request,
which the customer sees in the dashboard and which is chained into the ledger right after the
read commits (the rows are the outbox; a sweep chains any that a worker missed)."""

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from partners.models import Partner

from ..ledger import ledger_append_many, ledger_lock
from ..models import AccessLogEntry

logger = logging.getLogger(__name__)


@dataclass
class Access:
    """What one request showed a partner about one customer."""

    record_count: int
    purposes: set[str]
    categories: set[str]


def access_record(
    *,
    partner: Partner,
    accesses: Mapping[uuid.UUID, Access],
    channel: str,
    request_id: str = "",
) -> list[AccessLogEntry]:
    """Log partner reads: ``accesses`` maps customer id → Access. One access-log row per
    customer and request, never per record. Its ledger entry is chained by a worker right after
    the commit (``access_log_chain``), so that reads never queue for the ledger's lock; the
    rows themselves are the outbox, and a sweep chains any the worker missed."""
    if not accesses:
        return []
    now = timezone.now()
    rows = [
        AccessLogEntry(
            customer_id=customer_id,
            partner=partner,
            purposes=sorted(a.purposes),
            categories=sorted(a.categories),
            channel=channel,
            record_count=a.record_count,
            request_id=request_id,
            accessed_at=now,
        )
        for customer_id, a in sorted(accesses.items(), key=lambda item: str(item[0]))
    ]
    # One INSERT either way, atomic by itself: a read of one customer (the usual one) then
    # needs no BEGIN and COMMIT round trips around it.
    if len(rows) == 1:
        rows[0].save(force_insert=True)
    else:
        AccessLogEntry.objects.bulk_create(rows)
    transaction.on_commit(_schedule_access_chaining, robust=True)
    return rows


ACCESS_CHAIN_PENDING = "consent:access-chain-pending"
ACCESS_CHAIN_BATCH = 2000


def _schedule_access_chaining() -> None:
    """One chaining task for a burst of reads: the first read after a task started enqueues
    the next (the task clears the mark before it looks for rows, so none is left behind)."""
    from ..tasks import chain_access_log

    try:
        if cache.add(ACCESS_CHAIN_PENDING, 1, timeout=60):
            chain_access_log.apply_async(countdown=settings.ACCESS_CHAIN_DELAY_SECONDS)
    except Exception:  # Redis away: the beat's sweep chains them
        logger.warning("could not schedule access-log chaining; the sweep will", exc_info=True)


def access_log_chain(
    *, limit: int | None = ACCESS_CHAIN_BATCH, customer_id: uuid.UUID | None = None
) -> int:
    """Append the ledger entries of access-log rows not chained yet, oldest first, and note
    each entry's number on its row. Returns how many were chained (at most ``limit``)."""
    with transaction.atomic():
        # The ledger's lock first: two chainers (a task and the sweep) then take turns, and the
        # entries follow the order of the reads.
        ledger_lock()
        pending = AccessLogEntry.objects.filter(ledger_seq__isnull=True)
        if customer_id is not None:
            pending = pending.filter(customer_id=customer_id)
        rows = list(pending.order_by("id").select_for_update()[:limit])
        if not rows:
            return 0
        entries = ledger_append_many(
            [
                (
                    "data.accessed",
                    row.customer_id,
                    row.partner_id,
                    {
                        "channel": row.channel,
                        "records": row.record_count,
                        "purposes": row.purposes,
                        "categories": row.categories,
                        "request": row.request_id,
                        "accessed_at": row.accessed_at.isoformat(),
                    },
                )
                for row in rows
            ]
        )
        for row, entry in zip(rows, entries, strict=True):
            row.ledger_seq = entry.seq
        AccessLogEntry.objects.bulk_update(rows, ["ledger_seq"], batch_size=500)
    return len(rows)

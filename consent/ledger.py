"""The consent ledger: append-only and hash-chained.

``ledger_append`` serialises writers with a transaction-scoped advisory lock, numbers entries
consecutively (``seq``) and chains them: ``hash = sha256(prev_hash + canonical(entry))``. A gap in
``seq`` means a removed entry, a ``prev_hash`` that does not match means a removed or reordered
one, a ``hash`` that does not match its content means an edited one. ``ledger_verify`` walks the
chain in bounded memory and names the first broken entry.
"""

import hashlib
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from .models import LedgerEntry

GENESIS = "0" * 64
LEDGER_LOCK = 7_302_215_001  # pg_advisory_xact_lock key of the ledger

# What one entry says: (kind, customer_ref, partner_ref, payload).
Entry = tuple[str, uuid.UUID | None, uuid.UUID | None, Mapping[str, Any]]


def _canonical(seq, recorded_at, kind, customer_ref, partner_ref, payload):
    return json.dumps(
        {
            "seq": seq,
            "recorded_at": recorded_at.isoformat(),
            "kind": kind,
            "customer": str(customer_ref) if customer_ref else None,
            "partner": str(partner_ref) if partner_ref else None,
            "payload": payload,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )


def entry_hash(
    prev_hash: str,
    seq: int,
    recorded_at: datetime,
    kind: str,
    customer_ref: uuid.UUID | None,
    partner_ref: uuid.UUID | None,
    payload: Any,
) -> str:
    content = _canonical(seq, recorded_at, kind, customer_ref, partner_ref, payload)
    return hashlib.sha256((prev_hash + content).encode()).hexdigest()


def ledger_lock() -> None:
    """Take the ledger's lock until the end of the caller's transaction (writers append one at
    a time; taking it twice in one transaction is harmless)."""
    with connection.cursor() as cursor:
        # Foreign keys are checked at COMMIT (Django declares them deferred), and COMMIT comes
        # while this transaction holds the ledger lock: a check that waits there for a row
        # another writer has locked (a customer being granted consent), while that writer
        # waits for the ledger lock, is a deadlock (seen under load: a timeline read's access
        # log against a consent change). The checks of the rows written so far run now,
        # before the lock; later rows are deferred again as usual.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LEDGER_LOCK])


def ledger_append_many(entries: Sequence[Entry]) -> list[LedgerEntry]:
    """Append ``(kind, customer_ref, partner_ref, payload)`` tuples in order, in the caller's
    transaction. Returns the new entries."""
    if not entries:
        return []
    with transaction.atomic():
        ledger_lock()
        last = LedgerEntry.objects.order_by("-seq").values_list("seq", "hash").first()
        seq, prev = last if last else (0, GENESIS)
        now = timezone.now()
        rows = []
        for kind, customer_ref, partner_ref, payload in entries:
            seq += 1
            payload = json.loads(json.dumps(payload, default=str))  # stored exactly as hashed
            digest = entry_hash(prev, seq, now, kind, customer_ref, partner_ref, payload)
            rows.append(
                LedgerEntry(
                    seq=seq,
                    recorded_at=now,
                    kind=kind,
                    customer_ref=customer_ref,
                    partner_ref=partner_ref,
                    payload=payload,
                    prev_hash=prev,
                    hash=digest,
                )
            )
            prev = digest
        return LedgerEntry.objects.bulk_create(rows)


def ledger_append(
    *,
    kind: str,
    customer_ref: uuid.UUID | None = None,
    partner_ref: uuid.UUID | None = None,
    **payload: Any,
) -> LedgerEntry:
    return ledger_append_many([(kind, customer_ref, partner_ref, payload)])[0]


@dataclass
class LedgerProblem:
    seq: int
    problem: str

    def __str__(self) -> str:
        return f"entry {self.seq}: {self.problem}"


def ledger_verify(
    *, chunk: int = 5000, progress: Callable[[int], object] | None = None
) -> tuple[int, list[LedgerProblem]]:
    """Walk the whole chain. Returns (entries checked, [problems]); an intact ledger has none."""
    problems = []
    expected_seq, prev = 1, GENESIS
    checked = 0
    last_seq = 0
    while True:
        batch = list(
            LedgerEntry.objects.filter(seq__gt=last_seq)
            .order_by("seq")[:chunk]
            .values_list(
                "seq",
                "recorded_at",
                "kind",
                "customer_ref",
                "partner_ref",
                "payload",
                "prev_hash",
                "hash",
            )
        )
        if not batch:
            break
        for seq, recorded_at, kind, customer_ref, partner_ref, payload, prev_hash, stored in batch:
            if seq != expected_seq:
                problems.append(
                    LedgerProblem(seq, f"entries {expected_seq}–{seq - 1} are missing (removed)")
                )
            if prev_hash != prev:
                problems.append(
                    LedgerProblem(seq, "does not follow the entry before it (removed or reordered)")
                )
            recomputed = entry_hash(
                prev_hash, seq, recorded_at, kind, customer_ref, partner_ref, payload
            )
            if recomputed != stored:
                problems.append(LedgerProblem(seq, "its content does not match its hash (edited)"))
            prev, expected_seq = stored, seq + 1
            checked += 1
        last_seq = batch[-1][0]
        if progress:
            progress(checked)
    return checked, problems

"""Writes of interaction records."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.db import transaction

from clearinghouse.common.api.bodies import BadRow

from .csv_upload import MAX_BYTES
from .ingest import BatchIngest, RowResult
from .models import InteractionRecord, RecordUpload
from .signals import records_committed

if TYPE_CHECKING:
    from partners.models import Partner, User


def records_ingest(
    *, partner: Partner, rows: Iterable[dict | BadRow], max_rows: int
) -> list[RowResult]:
    """Ingest an iterable of row dicts (or ``BadRow`` for rows that could not be parsed) in one
    transaction; returns the per-row results. ``BatchTooLarge`` and any error raised by the
    iterable roll everything back."""
    with transaction.atomic():
        batch = BatchIngest(partner=partner, max_rows=max_rows)
        for row in rows:
            if type(row) is BadRow:
                batch.reject(row.message, field=row.field)
            else:
                batch.add(row)
        results = batch.finish()
        refs = [r.ref for r in results if r.status == "created"]
        if refs:
            transaction.on_commit(
                lambda: records_committed.send(
                    sender=InteractionRecord, partner=partner, created=len(refs), refs=refs
                ),
                robust=True,
            )
        return results


def upload_create(*, partner: Partner, user: User, filename: str, content: bytes) -> RecordUpload:
    """Keep an uploaded CSV and hand it to a worker after commit."""
    from .tasks import process_upload

    if not content:
        raise ValidationError({"file": "The file is empty."})
    if len(content) > MAX_BYTES:
        raise ValidationError(
            {"file": f"The file is larger than {MAX_BYTES // (1024 * 1024)} MiB."}
        )
    with transaction.atomic():
        upload = RecordUpload.objects.create(
            partner=partner, uploaded_by=user, filename=filename[:200], content=content
        )
        transaction.on_commit(lambda: process_upload.delay(str(upload.pk)), robust=True)
    return upload

"""CSV uploads: the same records as the API, one per line.

Columns: external_id, kind, occurred_at, customer_kind, customer_value (or customer_sha256), gtin,
serial, then one column per payload field of the kinds in the file (empty cells are left out).
Lists are written with | between items. Cells are typed by the kind's payload schema.
"""

import csv
import io

from django.db import transaction
from django.utils import timezone

from partners.record_kinds import BOOLEAN, INTEGER, KINDS, NUMBER, STRING_LIST

from .ingest import BatchIngest
from .models import RecordUpload
from .signals import records_committed

MAX_BYTES = 5 * 1024 * 1024
MAX_ROWS = 10_000
CHUNK = 500
MAX_REPORTED_ERRORS = 10_000
BASE_COLUMNS = (
    "external_id",
    "kind",
    "occurred_at",
    "customer_kind",
    "customer_value",
    "customer_sha256",
    "gtin",
    "serial",
)


class CsvProblem(ValueError):
    pass


def read_rows(content):
    """(line number, row dict or error message) for each data line."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CsvProblem("The file is not UTF-8 text.") from exc
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if not reader.fieldnames or not {"external_id", "kind", "occurred_at"} <= set(
        reader.fieldnames
    ):
        raise CsvProblem(
            "The first line must name the columns, at least external_id, kind and occurred_at."
        )
    try:
        for line in reader:
            yield reader.line_num, _row(line)
    except csv.Error as exc:
        raise CsvProblem(f"The file is not valid CSV near line {reader.line_num}: {exc}") from exc


def _cell(value):
    return value.strip() if isinstance(value, str) else value


def _row(line):
    if None in line:
        return "has more cells than the header has columns"
    row = {k: _cell(line.get(k)) for k in ("external_id", "kind", "occurred_at")}
    if line.get("customer_kind"):
        customer = {"kind": _cell(line["customer_kind"])}
        if _cell(line.get("customer_sha256")):
            customer["sha256"] = _cell(line["customer_sha256"])
        else:
            customer["value"] = _cell(line.get("customer_value") or "")
        row["customer"] = customer
    if _cell(line.get("gtin")) or _cell(line.get("serial")):
        row["product"] = {
            "gtin": _cell(line.get("gtin") or ""),
            "serial": _cell(line.get("serial") or ""),
        }
    kind = KINDS.get(row["kind"] or "")
    payload = {}
    if kind:
        for spec in kind.fields:
            raw = _cell(line.get(spec.name))
            if raw in (None, ""):
                continue
            try:
                payload[spec.name] = _typed(spec.type, raw)
            except ValueError:
                payload[spec.name] = raw  # the kind's validation names the problem
    row["payload"] = payload
    return row


def _typed(kind, raw):
    if kind == INTEGER:
        return int(raw)
    if kind == NUMBER:
        return float(raw)
    if kind == BOOLEAN:
        if raw.lower() in ("true", "yes", "1"):
            return True
        if raw.lower() in ("false", "no", "0"):
            return False
        raise ValueError(raw)
    if kind == STRING_LIST:
        return [item.strip() for item in raw.split("|") if item.strip()]
    return raw


def upload_process(*, upload_id):
    """Process an upload from its first line. Safe to run again after a crash: rows already
    stored answer 'existing', and the counts are recomputed."""
    upload = (
        RecordUpload.objects.unscoped("the task processes the upload id it was given")
        .select_related("partner")
        .get(pk=upload_id)
    )
    if upload.status == RecordUpload.Status.DONE:
        return upload
    this_upload = RecordUpload.objects.for_partner(upload.partner).filter(pk=upload.pk)
    this_upload.update(
        status=RecordUpload.Status.PROCESSING,
        processed=0,
        created=0,
        existing=0,
        rejected=0,
        errors=[],
    )
    counts = {"created": 0, "existing": 0, "rejected": 0}
    errors, refs = [], []
    try:
        lines = list(read_rows(bytes(upload.content)))
        if len(lines) > MAX_ROWS:
            raise CsvProblem(f"The file has {len(lines)} rows; at most {MAX_ROWS} per upload.")
        this_upload.update(total_rows=len(lines))
        for start in range(0, len(lines), CHUNK):
            chunk = lines[start : start + CHUNK]
            with transaction.atomic():
                batch = BatchIngest(partner=upload.partner, max_rows=len(chunk))
                for _, row in chunk:
                    if isinstance(row, str):
                        batch.reject(row)
                    else:
                        batch.add(row)
                results = batch.finish()
            for (line_no, _), result in zip(chunk, results, strict=True):
                counts[result.status] += 1
                if result.status == "created":
                    refs.append(result.ref)
                for error in result.errors:
                    if len(errors) < MAX_REPORTED_ERRORS:
                        errors.append({"line": line_no, "external_id": result.external_id, **error})
            this_upload.update(processed=start + len(chunk), **counts)
        this_upload.update(
            status=RecordUpload.Status.DONE, errors=errors, finished_at=timezone.now(), **counts
        )
        if counts["created"]:
            records_committed.send(
                sender=RecordUpload, partner=upload.partner, created=counts["created"], refs=refs
            )
    except CsvProblem as exc:
        this_upload.update(
            status=RecordUpload.Status.FAILED, message=str(exc), finished_at=timezone.now()
        )
    upload.refresh_from_db()
    return upload


def safe_cell(value):
    """A cell that a spreadsheet will not run as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def error_report(upload):
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["line", "external_id", "field", "message"])
    for error in upload.errors:
        writer.writerow(
            [safe_cell(error.get(k)) for k in ("line", "external_id", "field", "message")]
        )
    return out.getvalue()

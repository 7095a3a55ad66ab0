"""Interaction records: what a partner recorded about a customer (and usually a product unit)."""

import uuid

from django.db import models
from django.db.models import Q
from django.utils import timezone

from consent.models import Customer
from partners.models import Partner
from partners.record_kinds import KINDS
from partners.tenancy import PartnerScopedModel


class InteractionRecord(PartnerScopedModel):
    """One event a partner submitted: a sale, a warranty registration, a service visit…

    ``ref`` is the clearinghouse's public reference; the bigint ``id`` and the partner's
    ``external_id`` are never shown to a counterpart. Erasing the customer tombstones the record:
    customer and payload are removed, ``tombstoned_at`` says when."""

    id = models.BigAutoField(primary_key=True)
    ref = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    # No index of its own: the indexes below and the external id's unique key start with it.
    # Both references are checked by statement triggers, not foreign keys (clearinghouse/common/references.py).
    submitted_by = models.ForeignKey(
        Partner, on_delete=models.PROTECT, related_name="+", db_index=False, db_constraint=False
    )
    external_id = models.CharField(max_length=100)
    kind = models.CharField(max_length=30)
    purpose = models.CharField(max_length=30)
    category = models.CharField(max_length=20)
    customer = models.ForeignKey(
        Customer,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    gtin = models.CharField(max_length=14, blank=True, default="")
    serial = models.CharField(max_length=64, blank=True, default="")
    occurred_at = models.DateTimeField()
    payload = models.JSONField(default=dict)
    content_hash = models.CharField(max_length=64)
    received_at = models.DateTimeField(default=timezone.now)
    tombstoned_at = models.DateTimeField(null=True, blank=True)

    tenant_path = "submitted_by"

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["submitted_by", "external_id"], name="record_external_id_unique"
            ),
            models.CheckConstraint(condition=Q(kind__in=list(KINDS)), name="record_kind_valid"),
        ]
        indexes = [
            models.Index(fields=["gtin", "serial", "occurred_at"], name="record_unit_timeline"),
            models.Index(fields=["customer", "occurred_at"], name="record_customer_timeline"),
            # A partner's records of a kind; and for reconciliation, those whose deadline
            # (registration grace, service SLA) passed.
            models.Index(
                fields=["submitted_by", "kind", "occurred_at"], name="record_partner_kind_time"
            ),
        ]

    def __str__(self):
        return f"{self.kind} {self.external_id} of {self.submitted_by_id}"


class IdempotencyKey(models.Model):
    """The answer to a POST made with an ``Idempotency-Key`` header, kept so that a replay of the
    same request gets the same answer and creates nothing. A key belongs to the endpoint it was
    first sent to (``method`` and ``route``, the URL pattern): sent elsewhere, it is refused."""

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=200)
    method = models.CharField(max_length=10, default="")
    route = models.CharField(max_length=200, default="")
    request_hash = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField()
    response = models.BinaryField()
    content_type = models.CharField(max_length=100)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["partner", "key"], name="idempotency_key_unique")
        ]

    def __str__(self):
        return f"{self.partner_id}:{self.key}"


class RecordUpload(PartnerScopedModel):
    """A CSV file of records uploaded in the portal, processed by a worker in chunks, with its
    progress and a per-row error report."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Waiting for a worker"
        PROCESSING = "processing", "Processing"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="+")
    uploaded_by = models.ForeignKey(
        "partners.User", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    filename = models.CharField(max_length=200)
    content = models.BinaryField()
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    total_rows = models.PositiveIntegerField(default=0)
    processed = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    existing = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)
    message = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    tenant_path = "partner"

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.filename} ({self.status})"

    @property
    def percent(self):
        return 100 * self.processed // self.total_rows if self.total_rows else 0

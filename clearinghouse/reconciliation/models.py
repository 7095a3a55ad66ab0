"""What reconciliation finds: links between records of both parties, discrepancies that both
parties work in one queue, and the runs that produced them."""

import uuid

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from django.utils import timezone

from clearinghouse.records.models import InteractionRecord
from consent.models import Customer
from partners.models import ApiCredential, Partner, User
from partners.tenancy import PartnerScopedModel


class PairState(models.Model):
    """Where the last run of a pair stopped: records up to ``record_watermark``, time-based
    rules up to ``time_watermark`` and consent changes up to then are reconciled, under the
    agreement described by ``agreement``."""

    manufacturer = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="+")
    retailer = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="+")
    record_watermark = models.BigIntegerField(default=0)
    # The oldest transaction (64-bit id) still open when the last run read the records: only a
    # record it or a later transaction wrote can have committed after that run with an id below
    # the watermark, so only those of the overlap are read again.
    xact_horizon = models.BigIntegerField(null=True, blank=True)
    time_watermark = models.DateTimeField(null=True, blank=True)
    # The pair's agreement as the last run saw it (id, status, version in force): a run that
    # finds it changed re-evaluates everything.
    agreement = models.CharField(max_length=120, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["manufacturer", "retailer"], name="one_state_per_pair")
        ]

    def __str__(self):
        return f"{self.manufacturer_id}/{self.retailer_id} at {self.record_watermark}"


class WarrantyTerms(PartnerScopedModel):
    """A manufacturer's warranty for one product model (its GTIN): the period a claim is
    measured against when the unit's registration does not state one."""

    MAX_MONTHS = 240

    manufacturer = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="+")
    gtin = models.CharField(max_length=14)
    model_name = models.CharField(max_length=100)
    warranty_months = models.PositiveSmallIntegerField()
    updated_at = models.DateTimeField(default=timezone.now)

    tenant_paths = ("manufacturer",)

    class Meta:
        ordering = ["model_name", "gtin"]
        verbose_name_plural = "warranty terms"
        constraints = [
            models.UniqueConstraint(fields=["manufacturer", "gtin"], name="one_terms_per_model"),
            models.CheckConstraint(
                condition=Q(warranty_months__gte=1, warranty_months__lte=240),
                name="warranty_terms_months_range",
            ),
        ]

    def __str__(self):
        return f"{self.model_name} ({self.gtin}): {self.warranty_months} months"


class ReconciliationRun(PartnerScopedModel):
    """One run for one pair: what triggered it, what it covered, what it found, how long."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        SKIPPED = "skipped", "Skipped (another run was busy)"
        FAILED = "failed", "Failed"
        ABANDONED = "abandoned", "Abandoned (its worker died; a later run redid it)"

    manufacturer = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="+")
    retailer = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="+")
    trigger = models.CharField(max_length=20)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    from_record = models.BigIntegerField(default=0)
    to_record = models.BigIntegerField(default=0)
    counts = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    # The outbox of the run's webhooks, written with its findings: what it opened and resolved
    # by itself, until announced (a done run with no announced_at). A worker announces them
    # after the commit; a sweep catches an announcement that was lost.
    pending_opened = ArrayField(models.UUIDField(), default=list, blank=True)
    pending_resolved = ArrayField(models.UUIDField(), default=list, blank=True)
    announced_at = models.DateTimeField(null=True, blank=True)

    tenant_paths = ("manufacturer", "retailer")

    class Meta:
        ordering = ["-started_at"]
        indexes = [
            models.Index(fields=["manufacturer", "retailer", "-started_at"], name="run_pair_recent")
        ]

    def __str__(self):
        return f"run {self.pk} {self.status}"


# The result tables below are written in bulk by one set-based statement per rule, from rows the
# run has just read in the same transaction, and referenced rows are never deleted by SQL
# (records are tombstoned, customers erased in place; deleting a partner, run or discrepancy goes
# through the ORM, whose ``on_delete`` still applies). A database foreign-key check on every
# written row would cost more than the rule that wrote it (one trigger and one locked row per
# reference, at commit), so these references are ``db_constraint=False``. Unique keys stay in
# the database: they are what makes runs idempotent.
BULK = {"db_constraint": False}


class RecordLink(models.Model):
    """Two records about the same thing: a sale and its registration, a request and its visit."""

    class Kind(models.TextChoices):
        SALE_REGISTRATION = "sale_registration", "Sale ↔ warranty registration"
        REQUEST_VISIT = "request_visit", "Service request ↔ visit"
        VISIT_COMPLETION = "visit_completion", "Service visit ↔ completion"
        REQUEST_COMPLETION = "request_completion", "Service request ↔ completion"

    # The link is its own key and its only index: a run's bulk insert maintains one index per
    # link. Links are read by from_record (the unit timeline looks both ends up among the
    # unit's records, ``clearinghouse.timelines.selectors.attach_links``), and records are
    # tombstoned, never deleted, so nothing looks a link up by to_record alone.
    pk = models.CompositePrimaryKey("from_record", "to_record", "kind")
    kind = models.CharField(max_length=24, choices=Kind.choices)
    from_record = models.ForeignKey(
        InteractionRecord, on_delete=models.CASCADE, related_name="+", db_index=False, **BULK
    )
    to_record = models.ForeignKey(
        InteractionRecord, on_delete=models.CASCADE, related_name="+", db_index=False, **BULK
    )
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return f"{self.kind}: {self.from_record_id} → {self.to_record_id}"


SEVERITIES = ("low", "medium", "high")
KIND_LABELS = {
    "registration_date_mismatch": "Registration date mismatch",
    "sale_without_registration": "Sale without registration",
    "registration_without_sale": "Registration without a sale",
    "claim_without_sale": "Claim without a sale",
    "claim_before_sale": "Claim before the sale",
    "claim_outside_warranty": "Claim outside the warranty",
    "repeated_claims": "Repeated claims",
    "service_status_conflict": "Service status conflict",
    "service_overdue": "Service overdue",
    "accrual_not_reversed": "Points not reversed after a return",
    "double_credit": "Purchase credited twice",
    "redemption_exceeds_balance": "Redemption beyond the balance",
}


class Discrepancy(PartnerScopedModel):
    """Something the two parties' records disagree on. ``retailer`` is empty for a finding only
    the manufacturer can act on (a registration or claim with no sale from any retailer).
    ``key`` identifies the finding within the pair, so re-running finds it again instead of
    opening it twice."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        RESOLVED = "resolved", "Resolved"
        DISMISSED = "dismissed", "Dismissed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # manufacturer and retailer: the unique key and the queue indexes start with them
    manufacturer = models.ForeignKey(
        Partner, on_delete=models.CASCADE, related_name="+", db_index=False, **BULK
    )
    retailer = models.ForeignKey(
        Partner,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,
        **BULK,
    )
    kind = models.CharField(max_length=40)
    severity = models.CharField(max_length=8, choices=[(s, s) for s in SEVERITIES])
    # Identifiers, compared byte by byte: the unique key and the unit index take a run's
    # hundreds of thousands of findings without a locale-aware comparison per index step.
    key = models.CharField(max_length=300, db_collation="C")
    gtin = models.CharField(max_length=14, blank=True, db_collation="C")
    serial = models.CharField(max_length=64, blank=True, db_collation="C")
    customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", **BULK
    )
    detail = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    opened_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    opened_by_run = models.ForeignKey(
        ReconciliationRun,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
        **BULK,
    )
    records = models.ManyToManyField(
        InteractionRecord, through="DiscrepancyEvidence", related_name="+"
    )

    tenant_paths = ("manufacturer", "retailer")

    class Meta:
        ordering = ["-opened_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["manufacturer", "retailer", "key"],
                nulls_distinct=False,
                name="discrepancy_key_unique",
            ),
            models.CheckConstraint(
                condition=Q(severity__in=SEVERITIES), name="discrepancy_severity_valid"
            ),
        ]
        indexes = [
            # Each side's queue in its whole order (opened_at, then id: a run opens its
            # findings at one instant), so that a page is read off the index and stops.
            models.Index(
                fields=["manufacturer", "status", "-opened_at", "-id"],
                name="discrepancy_maker_queue",
            ),
            models.Index(
                fields=["retailer", "status", "-opened_at", "-id"], name="discrepancy_shop_queue"
            ),
            models.Index(fields=["gtin", "serial"], name="discrepancy_unit"),
        ]

    def __str__(self):
        return f"{self.kind} ({self.status})"

    @property
    def label(self):
        return KIND_LABELS.get(self.kind, self.kind)


class DiscrepancyEvidence(models.Model):
    # discrepancy: the unique key starts with it
    discrepancy = models.ForeignKey(
        Discrepancy, on_delete=models.CASCADE, related_name="evidence", db_index=False, **BULK
    )
    # No index of its own: evidence is read by discrepancy, never looked up by record (records
    # are tombstoned, not deleted), and a full run writes hundreds of thousands of rows.
    record = models.ForeignKey(
        InteractionRecord, on_delete=models.CASCADE, related_name="+", db_index=False, **BULK
    )
    role = models.CharField(max_length=30)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["discrepancy", "record"], name="evidence_unique")
        ]

    def __str__(self):
        return f"{self.role}: {self.record_id}"


class DiscrepancyNote(models.Model):
    """The discrepancy's history: opened, comments, resolved, dismissed, reopened — who, when, why."""

    class Action(models.TextChoices):
        OPENED = "opened", "Opened"
        COMMENT = "comment", "Comment"
        RESOLVED = "resolved", "Resolved"
        DISMISSED = "dismissed", "Dismissed"
        REOPENED = "reopened", "Reopened"
        AUTO_RESOLVED = "auto_resolved", "Resolved by reconciliation"

    discrepancy = models.ForeignKey(
        Discrepancy, on_delete=models.CASCADE, related_name="notes", **BULK
    )
    action = models.CharField(max_length=16, choices=Action.choices)
    # Who acted: empty on the notes a run writes in bulk, so indexed only where set.
    partner = models.ForeignKey(
        Partner, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    user = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    credential = models.ForeignKey(
        ApiCredential,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    text = models.TextField(blank=True, max_length=2000)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(
                fields=[name],
                condition=Q(**{f"{name}__isnull": False}),
                name=f"discrepancynote_{name}",
            )
            for name in ("partner", "user", "credential")
        ]

    def __str__(self):
        return f"{self.action} on {self.discrepancy_id}"

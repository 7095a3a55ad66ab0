"""Reconciliation rules, incrementality, idempotence and the no-leak rule."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db.models import F
from django.utils import timezone

from clearinghouse.reconciliation.engine import CHANGE_OVERLAP, reconcile_pair
from clearinghouse.reconciliation.models import Discrepancy, ReconciliationRun, RecordLink
from clearinghouse.reconciliation.selectors import discrepancies_visible
from clearinghouse.reconciliation.services import warranty_terms_set
from consent import services as consent_services
from consent.models import ConsentGrant
from partners.agreements.services import (
    agreement_countersign,
    agreement_propose,
    agreement_suspend,
)
from partners.models import Partner, SharingAgreement
from tests.records.conftest import GTIN, consent, registration, sale

from .conftest import ALL, WIDE, agree, give_consents, put, run


def kinds(status="open"):
    return sorted(
        Discrepancy.objects.unscoped("test setup")
        .filter(status=status)
        .values_list("kind", flat=True)
    )


def test_sale_and_registration_link_and_agree(world):
    put(world.shop, sale("S-1", occurred_at=world.days(40)))
    put(
        world.maker,
        registration("W-1", occurred_at=world.days(39), payload={"warranty_months": 24}),
    )
    give_consents(world)
    r = run(world)
    assert RecordLink.objects.filter(kind="sale_registration").count() == 1
    assert kinds() == [] and r.counts["links_created"] == 1


TERMS = {"warranty_months": 24}


def test_a_registration_by_another_customer_is_not_the_sales(world):
    """The match is by unit and customer: the unit Alice bought and Bob registered is a sale
    without its registration and a registration without a sale, and no link."""
    put(
        world.shop,
        sale("S-1", occurred_at=world.days(100)),
        sale("S-2", serial="SN-2", occurred_at=world.days(100)),
    )
    put(
        world.maker,
        registration("W-1", email="bob@example.org", occurred_at=world.days(99), payload=TERMS),
        registration("W-2", serial="SN-2", occurred_at=world.days(99), payload=TERMS),
    )
    give_consents(world)
    give_consents(world, email="bob@example.org")
    r = run(world)
    links = RecordLink.objects.filter(kind="sale_registration")
    assert [(link.from_record.external_id, link.to_record.external_id) for link in links] == [
        ("S-2", "W-2")
    ]
    assert r.counts["links_created"] == 1
    assert sorted(
        Discrepancy.objects.unscoped("test setup").values_list("kind", "retailer_id", "serial")
    ) == [
        ("registration_without_sale", None, "SN-1"),
        ("sale_without_registration", world.shop.pk, "SN-1"),
    ]


def _a_late_registration_and_a_missing_one(world):
    """S-1 registered with a purchase date 40 days before its sale; S-2 never registered."""
    put(
        world.shop,
        sale("S-1", occurred_at=world.days(100)),
        sale("S-2", serial="SN-2", occurred_at=world.days(60)),
    )
    put(
        world.maker,
        registration(
            "W-1",
            occurred_at=world.days(99),
            payload={
                "warranty_months": 24,
                "purchase_date": (timezone.now() - timedelta(days=140)).date().isoformat(),
            },
        ),
    )
    give_consents(world)
    run(world)


def test_date_mismatch_and_missing_registration(world):
    _a_late_registration_and_a_missing_one(world)
    assert kinds() == ["registration_date_mismatch", "sale_without_registration"]
    mismatch = Discrepancy.objects.unscoped("test setup").get(kind="registration_date_mismatch")
    assert mismatch.detail["days_apart"] == 40 and mismatch.retailer == world.shop


def test_recent_sale_gets_grace_before_it_is_flagged(world):
    put(world.shop, sale("S-1", occurred_at=world.days(3)))
    give_consents(world)
    run(world)
    assert kinds() == []


def test_registration_and_claim_without_any_sale_go_to_the_makers_queue_only(world):
    put(
        world.maker,
        registration("W-1", occurred_at=world.days(90)),
        {
            **registration("C-1", occurred_at=world.days(10)),
            "kind": "warranty_claim",
            "payload": {"fault": "pump"},
        },
    )
    give_consents(world)
    run(world)
    assert kinds() == ["claim_without_sale", "registration_without_sale"]
    assert set(Discrepancy.objects.unscoped("test setup").values_list("retailer", flat=True)) == {
        None
    }
    assert discrepancies_visible(partner=world.shop).count() == 0
    assert discrepancies_visible(partner=world.maker).count() == 2


def test_claims_before_the_sale_outside_warranty_and_repeated(world):
    def claim(ext, days):
        return {
            **registration(ext, occurred_at=world.days(days)),
            "kind": "warranty_claim",
            "payload": {"fault": "pump"},
        }

    put(world.shop, sale("S-1", occurred_at=world.days(800)))
    put(
        world.maker,
        registration("W-1", occurred_at=world.days(799), payload={"warranty_months": 12}),
        claim("C-1", 801),
        claim("C-2", 30),
    )
    give_consents(world)
    run(world)
    assert kinds() == ["claim_before_sale", "claim_outside_warranty", "repeated_claims"]


def test_a_claim_is_measured_against_the_product_models_terms_without_a_registration(world):
    """The period comes from the registration, else the product model's terms, else the
    default (24 months); a change of terms re-evaluates the pair's claims at the next run."""
    put(world.shop, sale("S-1", occurred_at=world.days(700)))
    put(
        world.maker,
        {**registration("C-1", occurred_at=world.days(30)), "kind": "warranty_claim"}
        | {"payload": {"fault": "pump"}},
    )
    give_consents(world)

    def outside():
        found = Discrepancy.objects.unscoped("test setup").filter(
            kind="claim_outside_warranty", status="open"
        )
        return [(d.detail["warranty_months"], d.detail["warranty_from"]) for d in found]

    run(world)
    assert outside() == []  # about 22 months after the sale: inside the default 24
    terms = warranty_terms_set(
        manufacturer=world.maker, gtin=GTIN[1:], model_name="Dishwasher 45", warranty_months=12
    )
    assert terms.gtin == GTIN  # any form of the GTIN, stored as GTIN-14
    assert run(world).from_record == 0
    assert outside() == [(12, "product model")]
    warranty_terms_set(
        manufacturer=world.maker, gtin=GTIN, model_name="Dishwasher 45", warranty_months=36
    )
    run(world)
    assert outside() == []
    assert (
        Discrepancy.objects.unscoped("test setup")
        .filter(kind="claim_outside_warranty", status="resolved")
        .exists()
    )
    with pytest.raises(ValidationError, match="Only a manufacturer"):
        warranty_terms_set(
            manufacturer=world.shop, gtin=GTIN, model_name="Dishwasher", warranty_months=12
        )
    with pytest.raises(ValidationError, match="check digit"):
        warranty_terms_set(
            manufacturer=world.maker, gtin="4012345000011", model_name="X", warranty_months=12
        )


def test_a_finding_shows_each_party_only_the_fields_its_clauses_share(world):
    """Invariant 3 through a discrepancy: the retailer is not shared the registration's
    purchase date, nor the manufacturer the sale's product."""
    from clearinghouse.reconciliation.notify import discrepancy_data
    from clearinghouse.reconciliation.selectors import discrepancies_shown

    narrow = [
        {**c, "fields": ["customer"]}
        if c["kind"] == "sale"
        else {**c, "fields": ["product"]}
        if c["kind"] == "warranty_registration"
        else c
        for c in WIDE
    ]
    agree(world, clauses=narrow)
    _a_late_registration_and_a_missing_one(world)

    def shown(partner):
        found = discrepancies_shown(
            partner=partner, discrepancies=discrepancies_visible(partner=partner)
        )
        return {
            d.kind: (d.shown_product and d.shown_product["serial"], d.shown_detail) for d in found
        }

    assert shown(world.shop) == {
        "registration_date_mismatch": ("SN-1", {"tolerance_days": 14}),
        "sale_without_registration": ("SN-2", {"grace_days": 30}),
    }
    assert shown(world.maker) == {
        "registration_date_mismatch": ("SN-1", {"tolerance_days": 14, "days_apart": 40}),
        "sale_without_registration": (None, {"grace_days": 30}),
    }
    (hidden,) = discrepancies_shown(
        partner=world.maker,
        discrepancies=Discrepancy.objects.unscoped("test setup").filter(
            kind="sale_without_registration"
        ),
    )
    data = discrepancy_data(
        partner=world.maker, subject={"discrepancy": str(hidden.pk)}, channel="test"
    )
    assert data["product"] is None
    # Nor does a filter by serial find it.
    from clearinghouse.reconciliation.selectors import with_unit_shown

    for partner, found in ((world.maker, []), (world.shop, ["sale_without_registration"])):
        mine = with_unit_shown(
            discrepancies_visible(partner=partner).filter(serial="SN-2"), partner=partner
        )
        assert [d.kind for d in mine] == found


def test_service_conflict_and_overdue(world):
    request = lambda ext, ref, days, serial="SN-1": {  # noqa: E731
        **sale(ext, serial=serial, occurred_at=world.days(days)),
        "kind": "service_request",
        "payload": {"issue": "noise", "status": "open", "reference": ref},
    }
    put(world.shop, request("R-1", "CASE-1", 40), request("R-2", "CASE-2", 30, serial="SN-2"))
    put(
        world.maker,
        {
            **registration("K-1", occurred_at=world.days(35)),
            "kind": "service_completion",
            "payload": {"reference": "CASE-1", "resolution": "fixed"},
        },
    )
    give_consents(world)
    run(world)
    assert kinds() == ["service_overdue", "service_status_conflict"]
    assert RecordLink.objects.filter(kind="request_completion").count() == 1


def test_a_service_case_is_its_latest_request_per_party(world):
    """A party updates a case by sending a new request with its reference; a conflict needs
    the two parties to disagree, and a unit returned after its service completed is one."""

    def request(ext, ref, days, status, serial="SN-1"):
        return {
            **sale(ext, serial=serial, occurred_at=world.days(days)),
            "kind": "service_request",
            "payload": {"issue": "noise", "status": status, "reference": ref},
        }

    def completion(ext, ref, days, serial="SN-1"):
        return {
            **registration(ext, serial=serial, occurred_at=world.days(days)),
            "kind": "service_completion",
            "payload": {"reference": ref, "resolution": "fixed"},
        }

    put(
        world.shop,
        request("R-1", "CASE-1", 40, "open"),
        request("R-2", "CASE-2", 30, "open", serial="SN-2"),
        {
            **sale("X-3", serial="SN-3", occurred_at=world.days(25)),
            "kind": "return",
            "payload": {"reason": "still noisy"},
        },
    )
    put(world.maker, completion("K-1", "CASE-1", 35), completion("K-3", "CASE-3", 30, "SN-3"))
    give_consents(world)
    run(world)
    found = Discrepancy.objects.unscoped("test setup").filter(status="open")
    assert sorted((d.kind, d.serial, d.detail.get("other_side")) for d in found) == [
        ("service_overdue", "SN-2", None),
        ("service_status_conflict", "SN-1", "open"),
        ("service_status_conflict", "SN-3", "returned"),
    ]
    # The retailer closes case 1 and case 2: nothing disagrees any more there.
    put(
        world.shop,
        request("R-1b", "CASE-1", 10, "closed"),
        request("R-2b", "CASE-2", 10, "closed", serial="SN-2"),
    )
    run(world)
    assert [
        (d.kind, d.serial) for d in Discrepancy.objects.unscoped("test setup").filter(status="open")
    ] == [("service_status_conflict", "SN-3")]


def test_a_case_completed_by_the_same_party_that_left_it_open_is_no_conflict(world):
    # The manufacturer sees the retailer's completions too: both records are reconciled.
    completion_to_maker = {
        "kind": "service_completion",
        "purpose": "service",
        "direction": "retailer_to_manufacturer",
        "fields": ["product", "reference"],
    }
    agree(world, clauses=[*WIDE, completion_to_maker])
    put(
        world.shop,
        {
            **sale("R-1", occurred_at=world.days(40)),
            "kind": "service_request",
            "payload": {"issue": "noise", "status": "open", "reference": "CASE-1"},
        },
        {
            **sale("K-1", occurred_at=world.days(35)),
            "kind": "service_completion",
            "payload": {"reference": "CASE-1", "resolution": "fixed"},
        },
    )
    give_consents(world)
    run(world)
    assert kinds() == []


def test_loyalty_rules(world):
    put(
        world.shop,
        sale("S-1", occurred_at=world.days(50)),
        {
            **sale("A-1", occurred_at=world.days(50)),
            "kind": "loyalty_accrual",
            "payload": {"points": 500, "sale_reference": "S-1", "reason": "purchase"},
        },
        {
            **sale("X-1", occurred_at=world.days(20)),
            "kind": "return",
            "payload": {"sale_reference": "S-1"},
        },
        {
            "external_id": "RD-1",
            "kind": "loyalty_redemption",
            "occurred_at": world.days(10),
            "customer": {"kind": "email", "value": "alice@example.org"},
            "payload": {"points": 900},
        },
    )
    put(
        world.maker,
        {
            **registration("MA-1", occurred_at=world.days(49)),
            "kind": "loyalty_accrual",
            "payload": {"points": 100, "reason": "purchase"},
        },
    )
    give_consents(world)
    run(world)
    # The shop's own points for S-1, and the maker's for the unit the shop took back.
    assert kinds() == [
        "accrual_not_reversed",
        "accrual_not_reversed",
        "double_credit",
        "redemption_exceeds_balance",
    ]


def test_the_makers_points_for_a_unit_the_shop_took_back_are_to_be_reversed(world):
    points = lambda ext, days, n: {  # noqa: E731
        **registration(ext, occurred_at=world.days(days)),
        "kind": "loyalty_accrual",
        "payload": {"points": n, "reason": "purchase" if n > 0 else "reversal"},
    }
    put(world.maker, points("MA-1", 50, 100))
    put(
        world.shop,
        {
            **sale("X-1", occurred_at=world.days(20)),
            "kind": "return",
            "payload": {"reason": "dent"},
        },
    )
    give_consents(world)
    run(world)
    (found,) = Discrepancy.objects.unscoped("test setup").filter(status="open")
    assert found.kind == "accrual_not_reversed" and found.retailer == world.shop
    assert sorted(found.evidence.values_list("role", flat=True)) == ["accrual", "return"]
    put(world.maker, points("MA-2", 10, -100))
    run(world)
    assert kinds() == [] and kinds("resolved") == ["accrual_not_reversed"]


def test_a_balance_is_checked_only_over_a_ledger_shared_whole(world):
    """The shop shares its redemptions but not its accruals: a redemption the maker sees
    alone is not "beyond the balance"."""
    agree(world, clauses=[c for c in WIDE if c["kind"] != "loyalty_accrual"])
    put(
        world.shop,
        {
            **sale("A-1", occurred_at=world.days(50)),
            "kind": "loyalty_accrual",
            "payload": {"points": 1000, "reason": "purchase"},
        },
        {
            "external_id": "RD-1",
            "kind": "loyalty_redemption",
            "occurred_at": world.days(10),
            "customer": {"kind": "email", "value": "alice@example.org"},
            "payload": {"points": 900},
        },
    )
    give_consents(world)
    run(world)
    assert kinds() == []


def _credit_twice(world):
    put(
        world.shop,
        {
            **sale("A-1", occurred_at=world.days(50)),
            "kind": "loyalty_accrual",
            "payload": {"points": 500, "reason": "purchase"},
        },
    )
    put(
        world.maker,
        {
            **registration("MA-1", occurred_at=world.days(49)),
            "kind": "loyalty_accrual",
            "payload": {"points": 100, "reason": "purchase"},
        },
    )
    give_consents(world)


def test_a_purchase_credited_twice_is_a_finding_only_where_one_programme_credits_it(world):
    _credit_twice(world)
    agree(world, purchase_points="both")
    run(world)
    assert kinds() == []
    agree(world, purchase_points="one")  # new terms: the next run is a full one
    assert run(world).from_record == 0
    assert kinds() == ["double_credit"]
    agree(world, purchase_points="both")
    run(world)
    assert kinds() == [] and kinds("resolved") == ["double_credit"]


def test_nothing_is_reconciled_without_consent_and_nothing_leaks(world):
    put(world.shop, sale("S-1", occurred_at=world.days(100)))
    run(world)  # no consent: the maker may not see the sale, so no finding mentions it
    assert kinds() == []
    give_consents(world)
    run(world, full=True)
    assert kinds() == ["sale_without_registration"]
    grant = ConsentGrant.objects.unscoped("test setup").get(grantee=world.maker, purpose="warranty")
    consent_services.consent_revoke(grant=grant)
    # The queue is read through visibility: the maker no longer sees the finding at all.
    assert discrepancies_visible(partner=world.maker).count() == 0
    assert discrepancies_visible(partner=world.shop).count() == 1


def test_runs_are_incremental_and_resolve_what_now_agrees(world):
    put(world.shop, sale("S-1", occurred_at=world.days(100)))
    give_consents(world)
    first = run(world)
    assert kinds() == ["sale_without_registration"] and first.from_record == 0
    put(
        world.maker,
        registration("W-1", occurred_at=world.days(99), payload={"warranty_months": 24}),
    )
    second = run(world)
    assert "units_rechecked" in second.counts and second.counts["auto_resolved"] == 1  # incremental
    assert kinds() == [] and kinds("resolved") == ["sale_without_registration"]
    note = Discrepancy.objects.unscoped("test setup").get().notes.last()
    assert note.action == "auto_resolved"


def test_running_twice_changes_nothing(world):
    put(
        world.shop,
        sale("S-1", occurred_at=world.days(100)),
        sale("S-2", serial="SN-2", occurred_at=world.days(100)),
    )
    put(world.maker, registration("W-1", occurred_at=world.days(40)))
    give_consents(world)
    run(world)
    snapshot = (
        sorted(Discrepancy.objects.unscoped("test setup").values_list("key", "status")),
        RecordLink.objects.count(),
    )
    run(world, full=True)
    run(world)
    assert (
        sorted(Discrepancy.objects.unscoped("test setup").values_list("key", "status")),
        RecordLink.objects.count(),
    ) == snapshot


def test_dismissed_findings_stay_dismissed(world):
    from clearinghouse.reconciliation.services import discrepancy_transition

    put(world.shop, sale("S-1", occurred_at=world.days(100)))
    give_consents(world)
    run(world)
    d = Discrepancy.objects.unscoped("test setup").get()
    discrepancy_transition(
        discrepancy=d,
        action="dismiss",
        partner=world.maker,
        reason="registered on paper",
        user=world.maker_admin,
    )
    run(world, full=True)
    assert kinds() == [] and kinds("dismissed") == ["sale_without_registration"]


@pytest.mark.django_db(transaction=True)
def test_a_busy_pair_is_skipped(world):
    import psycopg

    from tests.support.processes import test_database_url

    put(world.shop, sale("S-1", occurred_at=world.days(100)))
    give_consents(world)
    with psycopg.connect(test_database_url(), autocommit=False) as other:
        other.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
            [f"recon:{world.maker.pk}:{world.shop.pk}"],
        )
        busy = reconcile_pair(manufacturer=world.maker, retailer=world.shop, trigger="test")
        other.rollback()
    assert busy.status == "skipped" and not Discrepancy.objects.unscoped("test setup").exists()
    assert run(world).counts["opened"] == 1


def test_runs_are_recorded_with_counts_and_durations(world):
    put(world.shop, sale("S-1", occurred_at=world.days(100)))
    give_consents(world)
    r = run(world, trigger="manual")
    assert r.duration_ms is not None and r.counts["opened"] == 1
    assert ReconciliationRun.objects.unscoped("test setup").filter(status="done").count() == 1


def test_unit_key_uses_gtin14():
    assert len(GTIN) == 14


def _results():
    """Open findings with their evidence, and links: what a run leaves behind."""
    from clearinghouse.reconciliation.models import DiscrepancyEvidence, PairState

    assert PairState.objects.exists()
    return (
        sorted(
            Discrepancy.objects.unscoped("test setup")
            .filter(status="open")
            .values_list("kind", "key")
        ),
        sorted(
            DiscrepancyEvidence.objects.filter(discrepancy__status="open").values_list(
                "discrepancy__key", "record_id", "role"
            )
        ),
        sorted(RecordLink.objects.values_list("kind", "from_record_id", "to_record_id")),
    )


def test_a_sequence_of_incremental_runs_ends_where_one_full_run_does(world):
    from clearinghouse.reconciliation.models import PairState

    def row(make, ext, days, kind, payload, **kw):
        return {**make(ext, occurred_at=world.days(days), **kw), "kind": kind, "payload": payload}

    def redemption(ext, days, points, email="alice@example.org"):
        return {
            "external_id": ext,
            "kind": "loyalty_redemption",
            "occurred_at": world.days(days),
            "customer": {"kind": "email", "value": email},
            "payload": {"points": points},
        }

    bought_long_ago = (timezone.now() - timedelta(days=140)).date().isoformat()
    batches = [
        (
            world.shop,
            sale("S-1", occurred_at=world.days(100)),
            sale("S-2", serial="SN-2", occurred_at=world.days(100)),
            sale("S-3", serial="SN-3", occurred_at=world.days(60), email="bob@example.org"),
            row(sale, "A-1", 50, "loyalty_accrual", {"points": 500, "sale_reference": "S-1"}),
            redemption("RD-1", 30, 300),
        ),
        (
            world.maker,
            registration("W-1", occurred_at=world.days(99), payload={"warranty_months": 24}),
            registration(
                "W-2",
                serial="SN-2",
                occurred_at=world.days(99),
                payload={"warranty_months": 24, "purchase_date": bought_long_ago},
            ),
            registration("W-9", serial="SN-9", occurred_at=world.days(90)),
        ),
        (
            world.maker,
            row(registration, "C-1", 61, "warranty_claim", {"fault": "pump"}, serial="SN-3"),
            row(registration, "C-2", 10, "warranty_claim", {"fault": "pump"}, serial="SN-3"),
            row(
                registration,
                "K-1",
                35,
                "service_completion",
                {"reference": "CASE-1", "resolution": "fixed"},
            ),
            row(registration, "MA-1", 49, "loyalty_accrual", {"points": 100, "reason": "purchase"}),
        ),
        (
            world.shop,
            row(sale, "X-1", 20, "return", {"sale_reference": "S-1"}),
            row(
                sale,
                "R-1",
                40,
                "service_request",
                {"issue": "noise", "status": "open", "reference": "CASE-1"},
            ),
            redemption("RD-2", 10, 900),
            sale("S-9", serial="SN-9", occurred_at=world.days(95), email="bob@example.org"),
        ),
        (
            world.shop,
            row(sale, "A-2", 15, "loyalty_accrual", {"points": -500, "sale_reference": "S-1"}),
            redemption("RD-3", 5, 50, email="bob@example.org"),
        ),
    ]
    for n, (partner, *rows) in enumerate(batches):
        put(partner, *rows)
        if n == 0:  # the customers exist once a partner has sent their records
            give_consents(world)
            give_consents(world, email="bob@example.org")
        run(world)
    incremental = _results()
    assert {kind for kind, _ in incremental[0]} >= {
        "registration_date_mismatch",
        "claim_before_sale",
        "repeated_claims",
        "double_credit",
        "redemption_exceeds_balance",
    }
    assert (
        Discrepancy.objects.unscoped("test setup").filter(status="resolved").exists()
    )  # e.g. the registration's sale

    Discrepancy.objects.unscoped("test setup").all().delete()
    RecordLink.objects.all().delete()
    PairState.objects.all().delete()
    assert run(world, full=True).from_record == 0
    assert _results() == incremental


def _consented_long_ago():
    """Date the grants back beyond the window in which runs look again at consent changes."""
    ConsentGrant.objects.unscoped("test setup").update(
        granted_at=F("granted_at") - CHANGE_OVERLAP * 2
    )


def test_the_overlap_reads_again_only_what_the_last_run_could_not_see(world):
    from django.db import connection

    from clearinghouse.reconciliation.models import PairState

    put(world.shop, sale("S-1", occurred_at=world.days(100)))
    give_consents(world)
    _consented_long_ago()
    run(world)
    put(world.maker, registration("W-1", occurred_at=world.days(99)))
    with connection.cursor() as cursor:  # W-1's id, and the 64-bit id of the transaction wrote it
        cursor.execute(
            """SELECT id, (pg_current_xact_id()::text::bigint >> 32 << 32) + xmin::text::bigint
               FROM records_interactionrecord WHERE external_id = 'W-1'"""
        )
        record_id, writer = cursor.fetchone()
    # As if the last run had read up to W-1 after W-1's transaction committed: nothing to redo.
    PairState.objects.update(record_watermark=record_id, xact_horizon=writer + 1)
    run(world)
    assert not RecordLink.objects.exists()
    # As if W-1's transaction had still been open then: W-1 is read again from the overlap.
    PairState.objects.update(record_watermark=record_id, xact_horizon=writer)
    run(world)
    assert RecordLink.objects.filter(kind="sale_registration").count() == 1


def test_a_consent_given_after_a_run_brings_its_records_into_the_next_one(world):
    put(world.shop, sale("S-1", occurred_at=world.days(100)))
    first = run(world)  # no consent yet: the maker may not see the sale
    assert kinds() == [] and first.counts["records_considered"] == 0
    give_consents(world)  # Alice's consent, long after her sale arrived
    second = run(world)
    assert second.counts["consents_changed"] >= 1  # an incremental run
    assert kinds() == ["sale_without_registration"]


def _an_unregistered_sale_reconciled_twice(world):
    """S-1 is open as a sale without registration, after a full and an incremental run, with
    the consents dated back beyond the window of consent changes."""
    put(world.shop, sale("S-1", occurred_at=world.days(100)))
    give_consents(world)
    run(world)
    assert kinds() == ["sale_without_registration"]
    _consented_long_ago()
    run(world)


def test_a_withdrawn_consent_resolves_what_only_its_records_showed(world):
    _an_unregistered_sale_reconciled_twice(world)
    consent_services.consent_revoke(
        grant=ConsentGrant.objects.unscoped("test setup").get(
            grantee=world.maker, purpose="warranty"
        )
    )
    third = run(world)
    assert "units_rechecked" in third.counts and third.counts["auto_resolved"] == 1
    assert kinds() == [] and kinds("resolved") == ["sale_without_registration"]


def test_an_erasure_resolves_its_findings_in_the_next_incremental_run(world):
    """An erasure clears the customer from the records: the next run finds the units of the
    pair's open findings about that customer by the findings themselves."""
    from clearinghouse.reconciliation.engine import RECORD_OVERLAP
    from clearinghouse.reconciliation.models import PairState
    from consent import identity
    from consent.selectors import customer_by_identifier

    _an_unregistered_sale_reconciled_twice(world)
    # As if thousands of records had arrived since: the tombstoned sale is not in the overlap
    # that each run reads again.
    PairState.objects.update(record_watermark=F("record_watermark") + 2 * RECORD_OVERLAP)
    alice = customer_by_identifier(
        identity.parse_identifier(kind="email", value="alice@example.org")
    )
    consent_services.customer_erase(customer=alice)
    third = run(world)
    assert third.counts["units_rechecked"] == 1 and third.counts["auto_resolved"] == 1
    assert kinds() == [] and kinds("resolved") == ["sale_without_registration"]


# The run that follows an erasure: incremental, as if thousands of records had arrived since
# (the tombstones are not in the overlap that each run reads again); incremental, with the
# tombstones read again in the overlap (their rows were just rewritten); and full.
ERASURE_RUNS = ("incremental", "incremental_overlap", "full")


def _customer(email="alice@example.org"):
    from consent import identity
    from consent.selectors import customer_by_identifier

    return customer_by_identifier(identity.parse_identifier(kind="email", value=email))


def _erase_then_run(world, customer, how):
    from clearinghouse.reconciliation.engine import RECORD_OVERLAP
    from clearinghouse.reconciliation.models import PairState

    consent_services.customer_erase(customer=customer)
    if how == "incremental":
        PairState.objects.update(record_watermark=F("record_watermark") + 2 * RECORD_OVERLAP)
    after = run(world, full=how == "full")
    assert ("units_rechecked" in after.counts) == (how != "full")
    return after


def _names_no_erased_customer():
    """No finding, whatever its status, names a customer who is erased."""
    return (
        not Discrepancy.objects.unscoped("test setup")
        .filter(customer__erased_at__isnull=False)
        .exists()
    )


def _late(days=140):
    return (timezone.now() - timedelta(days=days)).date().isoformat()


@pytest.mark.parametrize("how", ERASURE_RUNS)
def test_an_erasure_opens_no_finding_on_its_tombstones_and_resolves_what_was_open(world, how):
    """Issue 17, item 5: Alice's sale (by the shop) and registration (by the maker) of SN-1
    agree. Of her other units, SN-2's registration is late (open), SN-3 was never registered
    (dismissed). After her erasure all of them are tombstones: the next run opens nothing — no
    registration without a sale on the maker's side — resolves what was open, and no finding of
    any status keeps her id."""
    from clearinghouse.reconciliation.services import discrepancy_transition

    put(
        world.shop,
        sale("S-1", occurred_at=world.days(100)),
        sale("S-2", serial="SN-2", occurred_at=world.days(100)),
        sale("S-3", serial="SN-3", occurred_at=world.days(100)),
    )
    put(world.maker, registration("W-1", occurred_at=world.days(99), payload=TERMS))
    give_consents(world)
    run(world)
    assert kinds() == ["sale_without_registration", "sale_without_registration"]
    discrepancy_transition(
        discrepancy=Discrepancy.objects.unscoped("test setup").get(serial="SN-3"),
        action="dismiss",
        partner=world.shop,
        reason="registered on paper",
        user=world.shop_admin,
    )
    put(
        world.maker,
        registration(
            "W-2",
            serial="SN-2",
            occurred_at=world.days(99),
            payload={"warranty_months": 24, "purchase_date": _late()},
        ),
    )
    run(world)
    assert kinds() == ["registration_date_mismatch"]
    assert kinds("resolved") == ["sale_without_registration"]
    alice = _customer()
    assert (
        Discrepancy.objects.unscoped("test setup").filter(customer=alice).count() == 3
    )  # open, resolved, dismissed

    after = _erase_then_run(world, alice, how)
    assert after.counts["opened"] == 0 and after.counts["auto_resolved"] == 1
    assert kinds() == []
    assert kinds("resolved") == ["registration_date_mismatch", "sale_without_registration"]
    assert kinds("dismissed") == ["sale_without_registration"]
    assert not Discrepancy.objects.unscoped("test setup").filter(customer=alice).exists()
    assert _names_no_erased_customer()
    run(world, full=True)  # and the nightly run after it agrees
    assert kinds() == [] and _names_no_erased_customer()


@pytest.mark.parametrize("how", ERASURE_RUNS)
def test_the_erasure_of_a_customer_who_never_consented_closes_the_makers_own_findings(world, how):
    """Bob never consented to anyone, so no consent of his changes when he is erased: the
    maker's own registration and claim of his unit, with no sale, are its own findings. The
    run after his erasure resolves them and forgets him."""
    put(
        world.maker,
        registration("W-9", email="bob@example.org", occurred_at=world.days(90)),
        {
            **registration("C-9", email="bob@example.org", occurred_at=world.days(10)),
            "kind": "warranty_claim",
            "payload": {"fault": "pump"},
        },
    )
    run(world)
    bob = _customer("bob@example.org")
    assert kinds() == ["claim_without_sale", "registration_without_sale"]
    assert set(Discrepancy.objects.unscoped("test setup").values_list("customer", flat=True)) == {
        bob.pk
    }
    assert not ConsentGrant.objects.unscoped("test setup").filter(customer=bob).exists()

    after = _erase_then_run(world, bob, how)
    assert after.counts["opened"] == 0 and after.counts["auto_resolved"] == 2
    assert kinds() == [] and kinds("resolved") == [
        "claim_without_sale",
        "registration_without_sale",
    ]
    assert not Discrepancy.objects.unscoped("test setup").filter(customer=bob).exists()
    assert _names_no_erased_customer()


@pytest.mark.parametrize("how", ERASURE_RUNS)
def test_no_rule_rests_a_finding_on_an_erased_customers_tombstones(world, how):
    """Alice's records in every rule family (sales and registrations, claims, service,
    loyalty, the maker's own): after her erasure no rule finds anything on them."""

    def row(make, ext, days, kind, payload, **kw):
        return {**make(ext, occurred_at=world.days(days), **kw), "kind": kind, "payload": payload}

    put(
        world.shop,
        sale("S-1", occurred_at=world.days(100)),
        row(sale, "A-1", 50, "loyalty_accrual", {"points": 500, "sale_reference": "S-1"}),
        row(
            sale,
            "R-1",
            40,
            "service_request",
            {"issue": "noise", "status": "open", "reference": "CASE-1"},
        ),
        row(sale, "X-1", 20, "return", {"sale_reference": "S-1"}),
        {
            "external_id": "RD-1",
            "kind": "loyalty_redemption",
            "occurred_at": world.days(10),
            "customer": {"kind": "email", "value": "alice@example.org"},
            "payload": {"points": 900},
        },
    )
    put(
        world.maker,
        registration(
            "W-1",
            occurred_at=world.days(99),
            payload={"warranty_months": 24, "purchase_date": _late()},
        ),
        row(registration, "C-1", 101, "warranty_claim", {"fault": "pump"}),
        row(registration, "C-2", 10, "warranty_claim", {"fault": "pump"}),
        row(
            registration,
            "K-1",
            35,
            "service_completion",
            {"reference": "CASE-1", "resolution": "fixed"},
        ),
        row(registration, "MA-1", 49, "loyalty_accrual", {"points": 100, "reason": "purchase"}),
        registration("W-9", serial="SN-9", occurred_at=world.days(90)),
        row(registration, "C-9", 10, "warranty_claim", {"fault": "pump"}, serial="SN-9"),
    )
    give_consents(world)
    run(world)
    assert set(kinds()) >= {
        "registration_date_mismatch",
        "claim_before_sale",
        "repeated_claims",
        "service_status_conflict",
        "accrual_not_reversed",
        "double_credit",
        "redemption_exceeds_balance",
        "registration_without_sale",
        "claim_without_sale",
    }

    after = _erase_then_run(world, _customer(), how)
    assert after.counts["opened"] == 0
    assert kinds() == [] and _names_no_erased_customer()


def test_a_change_to_the_agreement_makes_the_next_run_a_full_one(world):
    put(world.shop, sale("S-1", occurred_at=world.days(100)))
    give_consents(world)
    run(world)
    assert "units_rechecked" in run(world).counts  # incremental
    agreement = SharingAgreement.objects.unscoped("test setup").get()
    agreement_suspend(agreement=agreement, partner=world.maker, actor=world.maker_admin)
    suspended = run(world)
    assert "units_rechecked" not in suspended.counts and suspended.counts["auto_resolved"] == 1
    assert "units_rechecked" in run(world).counts  # incremental again while nothing changes


def test_a_run_opens_findings_without_a_note_each_and_the_history_starts_with_the_opening(world):
    from clearinghouse.reconciliation.models import DiscrepancyNote
    from clearinghouse.reconciliation.selectors import discrepancy_history

    put(world.shop, sale("S-1", occurred_at=world.days(100)))
    give_consents(world)
    run(world)
    d = Discrepancy.objects.unscoped("test setup").get()
    assert not DiscrepancyNote.objects.exists()  # no row per finding opened
    (opening,) = discrepancy_history(d)
    assert opening.action == "opened" and opening.created_at == d.opened_at


def test_the_makers_own_findings_are_opened_once_across_its_retailers(world, make_partner):
    """Every pair of a manufacturer sees its registrations: one that no retailer sold is one
    finding in the manufacturer's queue, whichever pair's run opens it; one that another
    retailer sold is no finding at all."""
    other, other_admin = make_partner(kind=Partner.Kind.RETAILER)
    version = agreement_propose(
        proposer=other, counterpart=world.maker, actor=other_admin, clauses=WIDE
    )
    agreement_countersign(version=version, partner=world.maker, actor=world.maker_admin)
    put(
        world.maker,
        registration("W-1", occurred_at=world.days(90), payload={"warranty_months": 24}),
        registration(
            "W-2", serial="SN-2", occurred_at=world.days(90), payload={"warranty_months": 24}
        ),
    )
    put(other, sale("S-2", serial="SN-2", occurred_at=world.days(91)))
    give_consents(world)
    for purpose in ALL:
        consent(other, purpose=purpose)
    for retailer in (world.shop, other, world.shop, other):
        result = reconcile_pair(manufacturer=world.maker, retailer=retailer, full=True)
        assert result.status == "done", result.error
    found = Discrepancy.objects.unscoped("test setup").values_list("kind", "serial", "retailer")
    assert list(found) == [("registration_without_sale", "SN-1", None)]
    assert Discrepancy.objects.unscoped("test setup").get().evidence.count() == 1
    assert RecordLink.objects.filter(kind="sale_registration").count() == 1


def test_the_nightly_round_forgets_erased_customers_of_pairs_that_no_longer_run(world, operator):
    """A pair whose agreement ended never runs again, so no run of its own clears the erased
    customer from its findings: the nightly full round does, once the erasure is a day old."""
    from datetime import timedelta

    from clearinghouse.reconciliation.tasks import reconcile_all
    from consent.models import Customer
    from partners.agreements.services import agreement_terminate

    put(world.maker, registration("W-9", email="bob@example.org", occurred_at=world.days(90)))
    run(world)
    bob = _customer("bob@example.org")
    assert Discrepancy.objects.unscoped("test setup").filter(customer=bob).exists()
    agreement_terminate(agreement=world.agreement, partner=world.maker, actor=world.maker_admin)
    consent_services.customer_erase(customer=bob)
    reconcile_all(full=True)  # the erasure is not a day old: the pairs in force go first
    assert Discrepancy.objects.unscoped("test setup").filter(customer=bob).exists()
    Customer.objects.filter(pk=bob.pk).update(erased_at=timezone.now() - timedelta(days=2))
    reconcile_all(full=True)
    assert not Discrepancy.objects.unscoped("test setup").filter(customer=bob).exists()
    assert _names_no_erased_customer()

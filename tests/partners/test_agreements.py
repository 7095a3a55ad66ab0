"""Sharing agreements: the lifecycle, clause validation, the diff, tenancy and the rules the core's
visibility decision reads (``rules_toward`` / ``rules_from``). State is built through the services."""

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError

from partners import services
from partners.agreements import (
    SharingRule,
    agreement_awaiting,
    agreement_countersign,
    agreement_diff,
    agreement_propose,
    agreement_reject,
    agreement_resume,
    agreement_suspend,
    agreement_terminate,
    agreement_withdraw,
    rules_from,
    rules_toward,
)
from partners.models import (
    AgreementEvent,
    AgreementVersion,
    Partner,
    PartnerEvent,
    SharingAgreement,
)
from partners.tenancy import TenancyError

M2R, R2M = "manufacturer_to_retailer", "retailer_to_manufacturer"
SALE = {"kind": "sale", "purpose": "warranty", "direction": R2M, "fields": ["product", "customer"]}
SERVICE = {
    "kind": "service_visit",
    "purpose": "service",
    "direction": M2R,
    "fields": ["reference", "outcome"],
}
CLAUSES = [SALE, SERVICE]


@pytest.fixture
def pair(make_partner):
    maker, maker_admin = make_partner(kind=Partner.Kind.MANUFACTURER, name="Maker")
    shop, shop_admin = make_partner(kind=Partner.Kind.RETAILER, name="Shop")
    return maker, maker_admin, shop, shop_admin


@pytest.fixture
def in_force(pair):
    """Version 1 proposed by the maker and countersigned by the shop."""
    maker, maker_admin, shop, shop_admin = pair
    v1 = agreement_propose(proposer=maker, counterpart=shop, clauses=CLAUSES, actor=maker_admin)
    agreement_countersign(version=v1, partner=shop, actor=shop_admin)
    v1.refresh_from_db()
    return v1


def state(version):
    version.refresh_from_db()
    version.agreement.refresh_from_db()
    return version.agreement.status, version.status


def test_a_proposal_applies_only_once_the_other_party_countersigns(pair):
    maker, maker_admin, shop, shop_admin = pair
    v1 = agreement_propose(proposer=maker, counterpart=shop, clauses=CLAUSES, actor=maker_admin)
    assert v1.number == 1 and state(v1) == ("proposed", "proposed")
    assert agreement_awaiting(partner=shop) == 1 and agreement_awaiting(partner=maker) == 0
    for p in (maker, shop):
        assert rules_toward(partner=p) == [] and rules_from(partner=p) == []

    agreement_countersign(version=v1, partner=shop, actor=shop_admin)

    assert state(v1) == ("active", "active") and agreement_awaiting(partner=shop) == 0
    assert v1.countersigned_by_user == shop_admin and v1.countersigned_at is not None
    sale = SharingRule(shop.pk, "sale", "warranty", frozenset({"product", "customer"}))
    visit = SharingRule(shop.pk, "service_visit", "service", frozenset({"reference", "outcome"}))
    assert rules_toward(partner=maker) == [sale]  # the shop shares sales with the maker
    assert rules_from(partner=maker) == [visit]  # the maker shares visits with the shop
    assert rules_toward(partner=shop) == [
        SharingRule(maker.pk, "service_visit", "service", frozenset({"reference", "outcome"}))
    ]
    assert rules_from(partner=shop) == [
        SharingRule(maker.pk, "sale", "warranty", frozenset({"product", "customer"}))
    ]


def test_the_proposer_cannot_countersign_its_own_version(pair):
    maker, maker_admin, shop, _ = pair
    v1 = agreement_propose(proposer=maker, counterpart=shop, clauses=CLAUSES, actor=maker_admin)
    with pytest.raises(ValidationError, match="other party"):
        agreement_countersign(version=v1, partner=maker, actor=maker_admin)
    assert state(v1) == ("proposed", "proposed")
    assert rules_toward(partner=maker) == []


def test_a_new_version_leaves_the_old_in_force_until_countersigned(pair, in_force):
    maker, maker_admin, shop, shop_admin = pair
    wider = [{**SALE, "fields": ["product", "customer", "store"]}, SERVICE]
    v2 = agreement_propose(proposer=shop, counterpart=maker, clauses=wider, actor=shop_admin)
    assert v2.number == 2 and v2.agreement_id == in_force.agreement_id
    assert state(v2) == ("active", "proposed")
    assert rules_toward(partner=maker)[0].fields == {"product", "customer"}

    agreement_countersign(version=v2, partner=maker, actor=maker_admin)

    assert state(v2) == ("active", "active")
    assert state(in_force) == ("active", "superseded") and in_force.closed_at is not None
    assert rules_toward(partner=maker)[0].fields == {"product", "customer", "store"}


def test_a_new_proposal_replaces_the_pending_one(pair, in_force):
    maker, maker_admin, shop, shop_admin = pair
    v2 = agreement_propose(proposer=shop, counterpart=maker, clauses=[SALE], actor=shop_admin)
    v3 = agreement_propose(proposer=maker, counterpart=shop, clauses=[SERVICE], actor=maker_admin)
    assert state(v2) == ("active", "withdrawn")
    assert v3.number == 3 and state(v3) == ("active", "proposed")
    assert in_force.agreement.versions.filter(status="proposed").count() == 1
    withdrawn = AgreementEvent.objects.unscoped("test setup").get(action="agreement.withdrawn")
    assert withdrawn.version == v2 and withdrawn.detail["replaced_by"] == 3
    assert SharingAgreement.objects.for_partner(maker).count() == 1


def test_reject_is_for_the_other_party_and_withdraw_for_the_proposer(pair, in_force):
    maker, maker_admin, shop, shop_admin = pair
    v2 = agreement_propose(proposer=shop, counterpart=maker, clauses=[SALE], actor=shop_admin)
    with pytest.raises(ValidationError, match="withdraw"):
        agreement_reject(version=v2, partner=shop, actor=shop_admin)
    with pytest.raises(ValidationError, match="proposer"):
        agreement_withdraw(version=v2, partner=maker, actor=maker_admin)
    agreement_reject(version=v2, partner=maker, actor=maker_admin, reason="too little")
    assert state(v2) == ("active", "rejected")
    assert len(rules_toward(partner=shop)) == 1  # version 1 still applies
    with pytest.raises(ValidationError, match="no longer awaiting"):
        agreement_countersign(version=v2, partner=maker, actor=maker_admin)

    v3 = agreement_propose(proposer=shop, counterpart=maker, clauses=[SALE], actor=shop_admin)
    agreement_withdraw(version=v3, partner=shop, actor=shop_admin)
    assert state(v3) == ("active", "withdrawn")


def test_suspension_stops_sharing_and_only_the_suspender_resumes(pair, in_force):
    maker, maker_admin, shop, shop_admin = pair
    agreement = in_force.agreement
    agreement_suspend(agreement=agreement, partner=shop, actor=shop_admin, reason="audit")
    agreement.refresh_from_db()
    assert agreement.status == "suspended" and agreement.suspended_by == shop
    for p in (maker, shop):
        assert rules_toward(partner=p) == [] and rules_from(partner=p) == []
    with pytest.raises(ValidationError, match="Only Shop"):
        agreement_resume(agreement=agreement, partner=maker, actor=maker_admin)
    with pytest.raises(ValidationError, match="only an agreement in force"):
        agreement_suspend(agreement=agreement, partner=maker, actor=maker_admin)

    agreement_resume(agreement=agreement, partner=shop, actor=shop_admin)

    agreement.refresh_from_db()
    assert agreement.status == "active" and agreement.suspended_by is None
    assert len(rules_toward(partner=maker)) == 1


def test_countersigning_while_suspended_keeps_the_agreement_suspended(pair, in_force):
    maker, maker_admin, shop, shop_admin = pair
    agreement_suspend(agreement=in_force.agreement, partner=maker, actor=maker_admin)
    v2 = agreement_propose(proposer=maker, counterpart=shop, clauses=[SALE], actor=maker_admin)
    agreement_countersign(version=v2, partner=shop, actor=shop_admin)
    assert state(v2) == ("suspended", "active")
    assert rules_toward(partner=maker) == []
    agreement_resume(agreement=in_force.agreement, partner=maker, actor=maker_admin)
    assert rules_from(partner=maker) == []  # version 2 has no manufacturer → retailer clause
    assert [r.kind for r in rules_toward(partner=maker)] == ["sale"]


def test_termination_is_final_and_frees_the_pair(pair, in_force):
    maker, maker_admin, shop, shop_admin = pair
    agreement = in_force.agreement
    v2 = agreement_propose(proposer=shop, counterpart=maker, clauses=[SALE], actor=shop_admin)
    agreement_terminate(agreement=agreement, partner=maker, actor=maker_admin, reason="ended")
    agreement.refresh_from_db()
    assert agreement.status == "terminated" and agreement.terminated_by == maker
    assert state(v2) == ("terminated", "withdrawn")
    assert rules_toward(partner=maker) == [] and rules_toward(partner=shop) == []
    for attempt in (
        lambda: agreement_terminate(agreement=agreement, partner=shop, actor=shop_admin),
        lambda: agreement_suspend(agreement=agreement, partner=shop, actor=shop_admin),
        lambda: agreement_resume(agreement=agreement, partner=shop, actor=shop_admin),
        lambda: agreement_countersign(version=v2, partner=maker, actor=maker_admin),
    ):
        with pytest.raises(ValidationError):
            attempt()

    fresh = agreement_propose(proposer=shop, counterpart=maker, clauses=[SALE], actor=shop_admin)
    assert fresh.number == 1 and fresh.agreement_id != agreement.pk
    assert rules_toward(partner=maker) == []


def test_a_suspended_partner_shares_nothing(pair, in_force, operator):
    maker, _, shop, _ = pair
    services.partner_suspend(partner=shop, actor=operator)
    assert rules_toward(partner=maker) == [] and rules_from(partner=maker) == []
    assert rules_toward(partner=shop) == [] and rules_from(partner=shop) == []
    services.partner_approve(partner=shop, actor=operator)
    assert len(rules_toward(partner=maker)) == 1 and len(rules_from(partner=maker)) == 1


def test_a_suspended_partner_cannot_take_part(pair, operator):
    maker, maker_admin, shop, shop_admin = pair
    v1 = agreement_propose(proposer=maker, counterpart=shop, clauses=CLAUSES, actor=maker_admin)
    services.partner_suspend(partner=maker, actor=operator)
    with pytest.raises(ValidationError, match="Maker is suspended"):
        agreement_countersign(version=v1, partner=shop, actor=shop_admin)
    with pytest.raises(ValidationError, match="Maker is suspended"):
        agreement_propose(proposer=shop, counterpart=maker, clauses=[SALE], actor=shop_admin)
    assert state(v1) == ("proposed", "proposed")


def test_rules_reach_only_the_partners_own_agreements(pair, in_force, make_partner):
    maker, maker_admin, shop, _ = pair
    other_shop, other_admin = make_partner(kind=Partner.Kind.RETAILER)
    v = agreement_propose(
        proposer=other_shop, counterpart=maker, clauses=[SERVICE], actor=other_admin
    )
    agreement_countersign(version=v, partner=maker, actor=maker_admin)
    assert {r.counterpart_id for r in rules_from(partner=maker)} == {shop.pk, other_shop.pk}
    assert [r.counterpart_id for r in rules_toward(partner=other_shop)] == [maker.pk]
    assert all(r.counterpart_id == maker.pk for r in rules_toward(partner=shop))
    assert SharingAgreement.objects.for_partner(shop).count() == 1
    assert AgreementVersion.objects.for_partner(other_shop).get() == v
    assert not AgreementEvent.objects.for_partner(other_shop).filter(agreement=in_force.agreement)


def test_agreement_querysets_fail_closed(db):
    for model in (SharingAgreement, AgreementVersion, AgreementEvent):
        with pytest.raises(TenancyError):
            model.objects.for_partner(None)


@pytest.mark.parametrize(
    "clauses,message",
    [
        ("sale", "must be a list"),
        ([], "at least one"),
        (["sale"], "must be an object"),
        ([{**SALE, "kind": "haircut"}], "not a record kind"),
        ([{**SALE, "purpose": "advertising"}], "not a purpose"),
        ([{**SALE, "direction": "both"}], "not a direction"),
        ([{**SALE, "fields": []}], "at least one field"),
        ([{**SALE, "fields": "product"}], "list of field names"),
        ([{**SALE, "fields": ["product", "email"]}], "no shareable field email"),
        ([{**SALE, "extra": 1}], "unknown keys extra"),
        ([SALE, {**SALE, "fields": ["store"]}], "repeats clause 1"),
    ],
)
def test_bad_clauses_are_refused_and_store_nothing(pair, clauses, message):
    maker, maker_admin, shop, _ = pair
    with pytest.raises(ValidationError, match=message) as refused:
        agreement_propose(proposer=maker, counterpart=shop, clauses=clauses, actor=maker_admin)
    assert "clauses" in refused.value.message_dict
    assert not SharingAgreement.objects.for_partner(maker).exists()
    assert not AgreementEvent.objects.for_partner(maker).exists()
    assert not PartnerEvent.objects.for_partner(maker).filter(action__startswith="agreement.")


def test_clauses_are_stored_normalised(pair):
    maker, maker_admin, shop, _ = pair
    v1 = agreement_propose(
        proposer=maker,
        counterpart=shop,
        clauses=[SERVICE, {**SALE, "fields": ["customer", "product", "customer"]}],
        actor=maker_admin,
    )
    assert v1.clauses == [
        {
            "kind": "sale",
            "purpose": "warranty",
            "direction": R2M,
            "fields": ["customer", "product"],
        },
        {**SERVICE, "fields": ["outcome", "reference"]},
    ]


def test_parties_are_one_active_manufacturer_and_one_active_retailer(pair, make_partner):
    maker, maker_admin, shop, _ = pair
    other_maker, _ = make_partner(kind=Partner.Kind.MANUFACTURER)
    pending_shop, _ = make_partner(kind=Partner.Kind.RETAILER, status=Partner.Status.PENDING)
    with pytest.raises(ValidationError, match="manufacturer and a retailer"):
        agreement_propose(
            proposer=maker, counterpart=other_maker, clauses=CLAUSES, actor=maker_admin
        )
    with pytest.raises(ValidationError, match="another partner"):
        agreement_propose(proposer=maker, counterpart=maker, clauses=CLAUSES, actor=maker_admin)
    with pytest.raises(ValidationError, match="pending approval"):
        agreement_propose(
            proposer=maker, counterpart=pending_shop, clauses=CLAUSES, actor=maker_admin
        )
    with pytest.raises(ValidationError, match="does not act for"):
        agreement_propose(proposer=shop, counterpart=maker, clauses=CLAUSES, actor=maker_admin)
    assert not SharingAgreement.objects.for_partner(maker).exists()


def test_proposing_the_terms_already_in_force_or_pending_is_refused(pair, in_force):
    maker, maker_admin, shop, shop_admin = pair
    with pytest.raises(ValidationError, match="exactly the terms in force"):
        agreement_propose(proposer=shop, counterpart=maker, clauses=CLAUSES, actor=shop_admin)
    agreement_propose(proposer=shop, counterpart=maker, clauses=[SALE], actor=shop_admin)
    with pytest.raises(ValidationError, match="awaiting countersignature"):
        agreement_propose(proposer=maker, counterpart=shop, clauses=[SALE], actor=maker_admin)
    assert in_force.agreement.versions.count() == 2


def test_who_credits_a_purchase_is_part_of_the_terms(pair, in_force):
    maker, maker_admin, shop, shop_admin = pair
    assert in_force.purchase_points == "one"
    with pytest.raises(ValidationError, match="one programme or both"):
        agreement_propose(
            proposer=shop, counterpart=maker, clauses=CLAUSES, actor=shop_admin, purchase_points="x"
        )
    # The same clauses, with both programmes crediting a purchase: a change of terms.
    version = agreement_propose(
        proposer=shop, counterpart=maker, clauses=CLAUSES, actor=shop_admin, purchase_points="both"
    )
    assert (version.number, version.purchase_points) == (2, "both")
    with pytest.raises(ValidationError, match="awaiting countersignature"):
        agreement_propose(
            proposer=maker,
            counterpart=shop,
            clauses=CLAUSES,
            actor=maker_admin,
            purchase_points="both",
        )


def test_every_change_is_recorded_with_who_and_when(pair, in_force):
    maker, maker_admin, shop, shop_admin = pair
    agreement = in_force.agreement
    agreement_suspend(agreement=agreement, partner=shop, actor=shop_admin, reason="audit")
    agreement_resume(agreement=agreement, partner=shop, actor=shop_admin)
    agreement_terminate(agreement=agreement, partner=maker, actor=maker_admin)
    history = list(
        AgreementEvent.objects.for_partner(shop).filter(agreement=agreement).order_by("id")
    )
    assert [(e.action, e.partner, e.actor) for e in history] == [
        ("agreement.proposed", maker, maker_admin),
        ("agreement.countersigned", shop, shop_admin),
        ("agreement.suspended", shop, shop_admin),
        ("agreement.resumed", shop, shop_admin),
        ("agreement.terminated", maker, maker_admin),
    ]
    assert all(e.created_at for e in history) and history[2].detail["reason"] == "audit"
    assert history[0].version == in_force and history[0].detail["version"] == 1
    own = PartnerEvent.objects.for_partner(shop).filter(action__startswith="agreement.")
    assert sorted(own.values_list("action", flat=True)) == [
        "agreement.countersigned",
        "agreement.resumed",
        "agreement.suspended",
    ]
    assert own.get(action="agreement.suspended").detail["counterpart"] == "Maker"


def test_diff_names_added_removed_and_changed_clauses(pair, in_force):
    maker, _, shop, shop_admin = pair
    feedback = {
        "kind": "feedback",
        "purpose": "product_improvement",
        "direction": R2M,
        "fields": ["rating"],
    }
    v2 = agreement_propose(
        proposer=shop,
        counterpart=maker,
        clauses=[{**SALE, "fields": ["product", "store"]}, feedback],
        actor=shop_admin,
    )
    assert agreement_diff(in_force, v2) == {
        "added": [feedback],
        "removed": [{**SERVICE, "fields": ["outcome", "reference"]}],
        "changed": [
            {
                "clause": ("sale", "warranty", R2M),
                "fields_added": ["store"],
                "fields_removed": ["customer"],
            }
        ],
    }
    assert agreement_diff(v2, v2) == {"added": [], "removed": [], "changed": []}
    assert agreement_diff(None, in_force)["added"] == in_force.clauses


def test_the_database_holds_one_open_agreement_per_pair(pair, in_force):
    maker, _, shop, _ = pair
    with pytest.raises(IntegrityError):
        SharingAgreement.objects.create(manufacturer=maker, retailer=shop)


def test_the_demo_has_an_agreement_in_force_and_a_change_to_review(db):
    from clearinghouse.demo import partners as demo

    for _ in range(2):  # idempotent
        partners, _ = demo.load(lambda text: None)
        demo.load_agreements(partners, lambda text: None)
    agreement = SharingAgreement.objects.for_partner(partners["maker"]).get()
    assert agreement.retailer == partners["shop"] and agreement.status == "active"
    assert [(v.number, v.status) for v in agreement.versions.all()] == [
        (2, "proposed"),
        (1, "active"),
    ]
    assert not SharingAgreement.objects.for_partner(partners["pending"]).exists()

"""The customer's dashboard offers the registration of a purchase that was never registered,
and only then: a registration the retailer may not see still counts. The manufacturer's queue
does not tell it that a unit it registered is unregistered either."""

from clearinghouse.reconciliation.models import Discrepancy
from clearinghouse.reconciliation.selectors import customer_prompts, discrepancies_visible
from tests.records.conftest import registration, sale

from .conftest import WIDE, agree, give_consents, put, run


def _registered_but_not_shared(world):
    """The maker does not share registrations with the shop; it registered SN-1, not SN-2."""
    agree(world, clauses=[c for c in WIDE if c["kind"] != "warranty_registration"])
    put(
        world.shop,
        sale("S-1", occurred_at=world.days(60)),
        sale("S-2", serial="SN-2", occurred_at=world.days(60)),
    )
    put(
        world.maker,
        registration("W-1", occurred_at=world.days(59), payload={"warranty_months": 24}),
    )
    give_consents(world)
    run(world)
    findings = Discrepancy.objects.unscoped("test setup").filter(
        kind="sale_without_registration", status="open"
    )
    assert sorted(findings.values_list("serial", flat=True)) == ["SN-1", "SN-2"]
    return findings


def test_a_purchase_is_offered_for_registration_only_when_it_is_not_registered(world):
    findings = _registered_but_not_shared(world)
    (alice,) = {d.customer_id for d in findings}
    prompts = customer_prompts(customer_id=alice)
    assert [p["kind"] for p in prompts] == ["register_warranty"]
    assert "serial SN-2" in prompts[0]["text"]


def test_the_maker_is_not_told_that_a_unit_it_registered_is_unregistered(world):
    """The shop sees both sales without a registration it may see (it learns nothing of W-1);
    the maker sees only SN-2, the unit it did not register."""
    _registered_but_not_shared(world)
    shop_sees = discrepancies_visible(partner=world.shop).filter(kind="sale_without_registration")
    maker_sees = discrepancies_visible(partner=world.maker).filter(kind="sale_without_registration")
    assert sorted(shop_sees.values_list("serial", flat=True)) == ["SN-1", "SN-2"]
    assert list(maker_sees.values_list("serial", flat=True)) == ["SN-2"]


def test_a_registration_of_another_customer_does_not_hide_the_finding(world):
    """Bob's registration of the unit Alice bought is not hers: the maker still sees it."""
    agree(world, clauses=[c for c in WIDE if c["kind"] != "warranty_registration"])
    put(world.shop, sale("S-1", occurred_at=world.days(60)))
    put(world.maker, registration("W-1", email="bob@example.org", occurred_at=world.days(59)))
    give_consents(world)
    give_consents(world, email="bob@example.org")
    run(world)
    maker_sees = discrepancies_visible(partner=world.maker).filter(kind="sale_without_registration")
    assert list(maker_sees.values_list("serial", flat=True)) == ["SN-1"]

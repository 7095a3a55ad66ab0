"""The customer's dashboard offers the registration of a purchase that was never registered,
and only then: a registration the retailer may not see still counts."""

from clearinghouse.reconciliation.models import Discrepancy
from clearinghouse.reconciliation.selectors import customer_prompts
from tests.records.conftest import registration, sale

from .conftest import WIDE, agree, give_consents, put, run


def test_a_purchase_is_offered_for_registration_only_when_it_is_not_registered(world):
    # The maker does not share registrations with the shop.
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
    findings = Discrepancy.objects.filter(kind="sale_without_registration", status="open")
    assert sorted(findings.values_list("serial", flat=True)) == ["SN-1", "SN-2"]
    (alice,) = {d.customer_id for d in findings}
    prompts = customer_prompts(customer_id=alice)
    assert [p["kind"] for p in prompts] == ["register_warranty"]
    assert "serial SN-2" in prompts[0]["text"]

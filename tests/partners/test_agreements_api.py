"""The read-only sharing agreements API: both parties read the agreement, anyone else gets 404."""

import pytest

from partners.agreements import agreement_countersign, agreement_propose
from partners.models import Partner, Role, Scope

from .test_api import assert_problem

R2M = "retailer_to_manufacturer"
SALE = {"kind": "sale", "purpose": "warranty", "direction": R2M, "fields": ["product"]}
FEEDBACK = {
    "kind": "feedback",
    "purpose": "product_improvement",
    "direction": R2M,
    "fields": ["rating"],
}


@pytest.fixture
def world(make_partner, issue_key):
    """Maker and shop with version 1 in force and version 2 pending; a third partner (another
    manufacturer) with an agreement of its own."""
    maker, maker_admin = make_partner(kind=Partner.Kind.MANUFACTURER, name="Maker")
    shop, shop_admin = make_partner(kind=Partner.Kind.RETAILER, name="Shop")
    third, third_admin = make_partner(kind=Partner.Kind.MANUFACTURER, name="Third")
    v1 = agreement_propose(proposer=maker, counterpart=shop, clauses=[SALE], actor=maker_admin)
    agreement_countersign(version=v1, partner=shop, actor=shop_admin)
    agreement_propose(proposer=shop, counterpart=maker, clauses=[SALE, FEEDBACK], actor=shop_admin)
    agreement_propose(proposer=third, counterpart=shop, clauses=[SALE], actor=third_admin)
    return {
        "agreement": v1.agreement,
        "maker_key": issue_key(maker, maker_admin, scopes=[Scope.AGREEMENTS_READ])[1],
        "shop_key": issue_key(shop, shop_admin, scopes=[Scope.AGREEMENTS_READ])[1],
        "third_key": issue_key(third, third_admin, scopes=[Scope.AGREEMENTS_READ])[1],
        "third_unscoped_key": issue_key(third, third_admin, scopes=[Scope.PARTNER_READ])[1],
        "shop": shop,
        "shop_admin": shop_admin,
    }


def test_both_parties_read_the_agreement(world, api):
    agreement = world["agreement"]
    for key in ("maker_key", "shop_key"):
        body = api(world[key]).get(f"/api/v1/agreements/{agreement.pk}").json()
        assert body["id"] == str(agreement.pk) and body["status"] == "active"
        assert body["manufacturer"] == {"name": "Maker", "slug": "maker", "kind": "manufacturer"}
        assert body["retailer"] == {"name": "Shop", "slug": "shop", "kind": "retailer"}
        active = body["active_version"]
        assert active["number"] == 1 and active["clauses"] == [SALE]
        assert active["countersigned_at"] and active["proposed_by"] == "maker"
        pending = body["pending_version"]
        assert pending["number"] == 2 and pending["proposed_by"] == "shop"
        assert pending["clauses"] == [FEEDBACK, SALE] and pending["countersigned_at"] is None
        assert [(v["number"], v["status"]) for v in body["versions"]] == [
            (2, "proposed"),
            (1, "active"),
        ]


def test_list_holds_only_the_partners_own_agreements(world, api):
    maker_list = api(world["maker_key"]).get("/api/v1/agreements").json()["results"]
    assert [row["id"] for row in maker_list] == [str(world["agreement"].pk)]
    shop_list = api(world["shop_key"]).get("/api/v1/agreements").json()["results"]
    assert len(shop_list) == 2  # with the maker, and the third partner's proposal
    third_list = api(world["third_key"]).get("/api/v1/agreements").json()["results"]
    assert len(third_list) == 1 and third_list[0]["status"] == "proposed"
    assert third_list[0]["active_version"] is None
    assert str(world["agreement"].pk) not in {row["id"] for row in third_list}


def test_another_partners_agreement_is_404_like_a_missing_one(world, api):
    foreign = assert_problem(
        api(world["third_key"]).get(f"/api/v1/agreements/{world['agreement'].pk}"), 404
    )
    missing = assert_problem(
        api(world["third_key"]).get("/api/v1/agreements/00000000-0000-0000-0000-000000000000"),
        404,
    )
    assert {k: v for k, v in foreign.items() if k != "instance"} == {
        k: v for k, v in missing.items() if k != "instance"
    }
    assert_problem(api(world["third_key"]).get("/api/v1/agreements/not-a-uuid"), 404)


def test_reading_agreements_needs_the_scope(world, api):
    body = assert_problem(
        api(world["third_unscoped_key"]).get("/api/v1/agreements"), 403, "insufficient_scope"
    )
    assert "agreements:read" in body["detail"]
    assert_problem(api().get("/api/v1/agreements"), 401, "not_authenticated")


def test_the_api_is_read_only(world, api):
    url = f"/api/v1/agreements/{world['agreement'].pk}"
    client = api(world["maker_key"])
    assert_problem(client.post("/api/v1/agreements", {}, format="json"), 405)
    assert_problem(client.put(url, {}, format="json"), 405)
    assert_problem(client.delete(url), 405)


@pytest.mark.parametrize("role", [Role.ANALYST, Role.VIEWER])
def test_staff_of_every_role_read_agreements_on_the_browsable_api(world, add_staff, client, role):
    user = add_staff(world["shop"], role, world["shop_admin"])
    client.force_login(user)
    response = client.get("/api/v1/agreements", HTTP_ACCEPT="application/json")
    assert response.status_code == 200 and len(response.json()["results"]) == 2


def test_listing_costs_the_same_few_queries_for_many_agreements(
    world, api, make_partner, django_assert_max_num_queries
):
    shop = world["shop"]
    for _ in range(5):
        maker, admin = make_partner(kind=Partner.Kind.MANUFACTURER)
        agreement_propose(proposer=maker, counterpart=shop, clauses=[SALE], actor=admin)
    with django_assert_max_num_queries(8):
        response = api(world["shop_key"]).get("/api/v1/agreements")
    assert len(response.json()["results"]) == 7


def test_the_schema_documents_the_agreements_api(db, client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    assert "/api/v1/agreements" in schema["paths"]
    assert "/api/v1/agreements/{id}" in schema["paths"]

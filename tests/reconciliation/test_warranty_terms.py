"""A manufacturer's warranty terms per product model, in the portal."""

from clearinghouse.reconciliation.models import WarrantyTerms
from partners.models import PartnerEvent, Role
from tests.records.conftest import GTIN

URL = "/portal/warranty-terms/"


def test_a_manufacturer_sets_updates_and_removes_the_terms_of_a_model(pair, client):
    client.force_login(pair.maker_admin)
    page = client.get(URL).content.decode()
    assert "No terms yet" in page and "24 months" in page
    data = {"gtin": GTIN[1:], "model_name": "Dishwasher 45", "warranty_months": "36"}
    response = client.post(URL, data, follow=True)
    assert "Dishwasher 45: 36 months" in response.content.decode()
    client.post(URL, {**data, "gtin": GTIN, "warranty_months": "48"})  # the same model
    terms = WarrantyTerms.objects.unscoped("test setup").get()
    assert (terms.manufacturer, terms.gtin, terms.warranty_months) == (pair.maker, GTIN, 48)
    assert f"<code>{GTIN}</code>" in client.get(URL).content.decode()
    assert (
        PartnerEvent.objects.unscoped("test setup")
        .filter(partner=pair.maker, action="warranty_terms.set")
        .count()
        == 2
    )

    client.post(f"{URL}{terms.pk}/delete/")
    assert not WarrantyTerms.objects.unscoped("test setup").exists()
    assert (
        PartnerEvent.objects.unscoped("test setup").filter(action="warranty_terms.deleted").exists()
    )


def test_a_bad_gtin_or_period_is_shown_on_the_form(pair, client):
    client.force_login(pair.maker_admin)
    for data, error in (
        ({"gtin": "4012345000011", "warranty_months": "12"}, "wrong check digit"),
        ({"gtin": GTIN, "warranty_months": "0"}, "greater than or equal to 1"),
    ):
        response = client.post(URL, {"model_name": "Dryer", **data})
        assert response.status_code == 400
        assert error in response.content.decode()
    assert not WarrantyTerms.objects.unscoped("test setup").exists()


def test_retailers_and_viewers_change_nothing(pair, client, add_staff):
    client.force_login(pair.shop_admin)
    page = client.get(URL).content.decode()
    assert (
        "Manufacturers state the warranty period" in page and "<form" not in page.split("<main")[-1]
    )
    client.post(URL, {"gtin": GTIN, "model_name": "Dryer", "warranty_months": "12"})
    assert not WarrantyTerms.objects.unscoped("test setup").exists()

    viewer = add_staff(pair.maker, Role.VIEWER, pair.maker_admin)
    client.force_login(viewer)
    assert "Set the terms" not in client.get(URL).content.decode()
    response = client.post(URL, {"gtin": GTIN, "model_name": "Dryer", "warranty_months": "12"})
    assert response.status_code == 403 and not WarrantyTerms.objects.unscoped("test setup").exists()
    terms = WarrantyTerms.objects.create(
        manufacturer=pair.maker, gtin=GTIN, model_name="Dryer", warranty_months=12
    )
    assert client.post(f"{URL}{terms.pk}/delete/").status_code == 403
    client.force_login(pair.shop_admin)  # another partner's terms are not found
    assert client.post(f"{URL}{terms.pk}/delete/").status_code == 404
    assert WarrantyTerms.objects.unscoped("test setup").filter(pk=terms.pk).exists()


def test_partner_systems_keep_the_terms_over_the_api(pair, issue_key, api):
    from partners.models import Scope

    write = [Scope.RECORDS_READ, Scope.RECORDS_WRITE]
    maker = api(issue_key(pair.maker, pair.maker_admin, scopes=write)[1])
    body = {"gtin": GTIN[1:], "model_name": "Dishwasher 45", "warranty_months": 36}
    response = maker.post("/api/v1/warranty-terms", body, format="json")
    assert response.status_code == 200, response.content
    terms = response.json()
    assert terms["gtin"] == GTIN and terms["warranty_months"] == 36
    again = maker.post("/api/v1/warranty-terms", {**body, "warranty_months": 48}, format="json")
    assert again.json()["id"] == terms["id"]  # the same model, replaced
    url = f"/api/v1/warranty-terms/{terms['id']}"
    assert maker.get(url).json()["warranty_months"] == 48
    assert [t["gtin"] for t in maker.get("/api/v1/warranty-terms").json()] == [GTIN]
    bad = maker.post("/api/v1/warranty-terms", {**body, "warranty_months": 999}, format="json")
    assert bad.status_code == 400
    assert [e["field"] for e in bad.json()["errors"]] == ["warranty_months"]
    wrong = maker.post("/api/v1/warranty-terms", {**body, "gtin": "4012345000011"}, format="json")
    assert wrong.status_code == 400 and "check digit" in str(wrong.json())

    reader = api(issue_key(pair.maker, pair.maker_admin, scopes=[Scope.RECORDS_READ])[1])
    assert reader.delete(url).status_code == 403
    shop = api(issue_key(pair.shop, pair.shop_admin, scopes=write)[1])
    assert shop.get("/api/v1/warranty-terms").json() == []
    assert shop.get(url).status_code == 404 and shop.delete(url).status_code == 404
    refused = shop.post("/api/v1/warranty-terms", body, format="json")
    assert refused.status_code == 400 and "Only a manufacturer" in str(refused.json())
    assert maker.delete(url).status_code == 204
    assert maker.get(url).status_code == 404
    assert not WarrantyTerms.objects.unscoped("test setup").exists()

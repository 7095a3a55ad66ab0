"""Portal pages for sharing agreements: proposing with the clause editor, countersigning,
suspending and terminating, the history and the diff; roles and tenancy."""

import re

import pytest

from partners.agreements import agreement_countersign, agreement_propose, rules_toward
from partners.models import AgreementVersion, Partner, Role, SharingAgreement

R2M, M2R = "retailer_to_manufacturer", "manufacturer_to_retailer"
SALE = {"kind": "sale", "purpose": "warranty", "direction": R2M, "fields": ["customer", "product"]}
VISIT = {"kind": "service_visit", "purpose": "service", "direction": M2R, "fields": ["outcome"]}


@pytest.fixture
def pair(make_partner):
    maker, maker_admin = make_partner(kind=Partner.Kind.MANUFACTURER, name="Maker Co")
    shop, shop_admin = make_partner(kind=Partner.Kind.RETAILER, name="Shop Ltd")
    return maker, maker_admin, shop, shop_admin


@pytest.fixture
def in_force(pair):
    maker, maker_admin, shop, shop_admin = pair
    v1 = agreement_propose(
        proposer=maker, counterpart=shop, clauses=[SALE, VISIT], actor=maker_admin
    )
    agreement_countersign(version=v1, partner=shop, actor=shop_admin)
    return v1.agreement


def editor_post(**cells):
    """Form data: cells as kind__slot__direction=(purpose, [fields])."""
    data = {}
    for name, (purpose, fields) in cells.items():
        kind, slot, direction = name.split("__")
        data[f"{kind}-{slot}-{direction}-purpose"] = purpose
        data[f"{kind}-{slot}-{direction}-fields"] = fields
    return data


def test_an_admin_proposes_an_agreement_with_the_clause_editor(pair, client):
    maker, maker_admin, shop, _ = pair
    client.force_login(maker_admin)
    page = client.get("/portal/agreements/new/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Shop Ltd" in html and "Maker Co (you) shares with the retailer" in html
    data = {
        "counterpart": str(shop.pk),
        "note": "Let us start",
        **editor_post(
            sale__0__retailer_to_manufacturer=("warranty", ["product", "customer"]),
            service_visit__0__manufacturer_to_retailer=("service", ["outcome"]),
        ),
    }
    response = client.post("/portal/agreements/new/", data)
    agreement = SharingAgreement.objects.for_partner(maker).get()
    assert response.status_code == 302
    assert response["Location"] == f"/portal/agreements/{agreement.pk}/"
    version = agreement.versions.get()
    assert version.clauses == [SALE, VISIT] and version.note == "Let us start"
    assert version.proposed_by == maker and version.proposed_by_user == maker_admin
    assert agreement.status == "proposed" and rules_toward(partner=maker) == []


@pytest.mark.parametrize(
    "data,error",
    [
        (editor_post(sale__0__retailer_to_manufacturer=("warranty", [])), "at least one field"),
        (editor_post(sale__0__retailer_to_manufacturer=("", ["product"])), "Choose a purpose"),
        (editor_post(sale__0__retailer_to_manufacturer=("warranty", ["email"])), "valid choice"),
        (editor_post(sale__0__retailer_to_manufacturer=("spying", ["product"])), "valid choice"),
        ({}, "at least one record kind"),
        ({"counterpart": ""}, "required"),
    ],
)
def test_a_bad_proposal_shows_errors_and_stores_nothing(pair, client, data, error):
    maker, maker_admin, shop, _ = pair
    client.force_login(maker_admin)
    response = client.post("/portal/agreements/new/", {"counterpart": str(shop.pk), **data})
    assert response.status_code == 200
    assert error in response.content.decode()
    assert not SharingAgreement.objects.for_partner(maker).exists()


def test_only_active_partners_of_the_other_kind_can_be_chosen(pair, make_partner, client):
    maker, maker_admin, _, _ = pair
    other_maker, _ = make_partner(kind=Partner.Kind.MANUFACTURER, name="Rival Maker")
    pending, _ = make_partner(kind=Partner.Kind.RETAILER, status=Partner.Status.PENDING)
    client.force_login(maker_admin)
    html = client.get("/portal/agreements/new/").content.decode()
    assert "Rival Maker" not in html and pending.name not in html
    data = {
        "counterpart": str(other_maker.pk),
        **editor_post(sale__0__retailer_to_manufacturer=("warranty", ["product"])),
    }
    response = client.post("/portal/agreements/new/", data)
    assert response.status_code == 200 and "valid choice" in response.content.decode()
    assert not SharingAgreement.objects.for_partner(maker).exists()


def test_add_a_purpose_adds_a_row_and_keeps_what_was_entered(pair, client):
    maker, maker_admin, shop, _ = pair
    client.force_login(maker_admin)
    data = {
        "counterpart": str(shop.pk),
        "add_row": "sale",
        **editor_post(sale__0__retailer_to_manufacturer=("warranty", ["product"])),
    }
    response = client.post("/portal/agreements/new/", data)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="sale-1-retailer_to_manufacturer-purpose"' in html
    assert re.search(r'value="product"[^>]*checked', html)
    assert not SharingAgreement.objects.for_partner(maker).exists()
    data.pop("add_row")
    data["sale-slots"] = "2"
    data.update(editor_post(sale__1__retailer_to_manufacturer=("loyalty", ["customer"])))
    assert client.post("/portal/agreements/new/", data).status_code == 302
    clauses = SharingAgreement.objects.for_partner(maker).get().versions.get().clauses
    assert [(c["kind"], c["purpose"]) for c in clauses] == [
        ("sale", "loyalty"),
        ("sale", "warranty"),
    ]


@pytest.mark.parametrize("role", [Role.ANALYST, Role.VIEWER])
def test_analysts_and_viewers_read_but_change_nothing(pair, in_force, add_staff, client, role):
    maker, maker_admin, shop, shop_admin = pair
    pending = agreement_propose(proposer=maker, counterpart=shop, clauses=[SALE], actor=maker_admin)
    user = add_staff(shop, role, shop_admin)
    client.force_login(user)
    assert client.get("/portal/agreements/").status_code == 200
    detail = client.get(f"/portal/agreements/{in_force.pk}/")
    assert detail.status_code == 200 and b"Countersign version" not in detail.content
    assert client.get(f"/portal/agreements/{in_force.pk}/diff/").status_code == 200
    assert client.get("/portal/agreements/new/").status_code == 403
    assert client.get(f"/portal/agreements/{in_force.pk}/propose/").status_code == 403
    for action in ("countersign", "reject", "suspend", "terminate"):
        response = client.post(
            f"/portal/agreements/{in_force.pk}/{action}/", {"version": "2", "confirm": "on"}
        )
        assert response.status_code == 403
    pending.refresh_from_db()
    in_force.refresh_from_db()
    assert pending.status == "proposed" and in_force.status == "active"


def test_the_other_party_countersigns_in_the_portal(pair, client):
    maker, maker_admin, shop, shop_admin = pair
    v1 = agreement_propose(proposer=maker, counterpart=shop, clauses=[SALE], actor=maker_admin)
    url = f"/portal/agreements/{v1.agreement_id}/"
    client.force_login(maker_admin)
    own = client.get(url).content.decode()
    assert "Withdraw version 1" in own and "Countersign version 1" not in own
    response = client.post(f"{url}countersign/", {"version": "1"}, follow=True)
    assert "its proposer cannot countersign" in response.content.decode()
    v1.refresh_from_db()
    assert v1.status == "proposed"

    client.force_login(shop_admin)
    assert "Countersign version 1" in client.get(url).content.decode()
    response = client.post(f"{url}countersign/", {"version": "1"}, follow=True)
    assert (
        response.status_code == 200 and "You countersigned version 1" in response.content.decode()
    )
    v1.refresh_from_db()
    assert v1.status == "active" and v1.countersigned_by_user == shop_admin
    assert [r.kind for r in rules_toward(partner=maker)] == ["sale"]


def test_a_proposal_replaced_since_the_page_was_opened_is_not_countersigned(pair, in_force, client):
    maker, maker_admin, shop, shop_admin = pair
    agreement_propose(proposer=maker, counterpart=shop, clauses=[SALE], actor=maker_admin)
    agreement_propose(proposer=maker, counterpart=shop, clauses=[VISIT], actor=maker_admin)
    client.force_login(shop_admin)
    response = client.post(
        f"/portal/agreements/{in_force.pk}/countersign/", {"version": "2"}, follow=True
    )
    html = response.content.decode()
    assert "The proposal changed" in html and "replaced version 2 with version 3" in html
    assert in_force.versions.get(status="active").number == 1
    assert in_force.versions.get(status="proposed").number == 3


def test_proposing_a_change_starts_from_the_current_terms(pair, in_force, client):
    _, _, shop, shop_admin = pair
    client.force_login(shop_admin)
    page = client.get(f"/portal/agreements/{in_force.pk}/propose/")
    assert page.status_code == 200
    assert 'name="counterpart"' not in page.content.decode()
    form = page.context["form"]
    assert form.initial["sale-0-retailer_to_manufacturer-purpose"] == "warranty"
    assert form.initial["sale-0-retailer_to_manufacturer-fields"] == ["customer", "product"]
    data = editor_post(
        sale__0__retailer_to_manufacturer=("warranty", ["customer", "product", "store"]),
        service_visit__0__manufacturer_to_retailer=("service", ["outcome"]),
    )
    response = client.post(f"/portal/agreements/{in_force.pk}/propose/", data)
    assert response.status_code == 302
    pending = in_force.versions.get(status="proposed")
    assert pending.number == 2 and pending.proposed_by == shop
    assert in_force.versions.get(status="active").number == 1


def test_who_credits_a_purchase_is_proposed_and_shown_with_the_terms(pair, in_force, client):
    _, _, _, shop_admin = pair
    client.force_login(shop_admin)
    base = f"/portal/agreements/{in_force.pk}"
    page = client.get(f"{base}/propose/")
    assert page.context["form"].initial["purchase_points"] == "one"
    html = page.content.decode()
    assert 'type="radio" name="purchase_points" value="one"' in html and "checked" in html
    data = editor_post(
        sale__0__retailer_to_manufacturer=("warranty", ["customer", "product"]),
        service_visit__0__manufacturer_to_retailer=("service", ["outcome"]),
    )
    # The same clauses, both programmes crediting a purchase: a change of terms.
    response = client.post(f"{base}/propose/", {**data, "purchase_points": "both"})
    assert response.status_code == 302
    pending = in_force.versions.get(status="proposed")
    active = in_force.versions.get(status="active")
    assert pending.clauses == active.clauses and pending.purchase_points == "both"
    detail = client.get(f"{base}/").content.decode()
    assert "Both programmes may credit the same purchase" in detail and "(changed)" in detail
    diff = client.get(f"{base}/diff/").content.decode()
    assert "<del>One programme credits a purchase, not both</del>" in diff


def test_suspend_resume_and_terminate_in_the_portal(pair, in_force, client):
    maker, maker_admin, shop, shop_admin = pair
    base = f"/portal/agreements/{in_force.pk}"
    client.force_login(shop_admin)
    client.post(f"{base}/suspend/", {"reason": "data audit"})
    in_force.refresh_from_db()
    assert in_force.status == "suspended" and in_force.suspended_by == shop

    client.force_login(maker_admin)
    page = client.post(f"{base}/resume/", follow=True).content.decode()
    assert "which suspended the agreement, can resume it" in page
    in_force.refresh_from_db()
    assert in_force.status == "suspended"

    client.force_login(shop_admin)
    client.post(f"{base}/resume/")
    in_force.refresh_from_db()
    assert in_force.status == "active"

    page = client.post(f"{base}/terminate/", {"reason": "bye"}, follow=True).content.decode()
    assert "Tick the box" in page
    in_force.refresh_from_db()
    assert in_force.status == "active"
    client.post(f"{base}/terminate/", {"reason": "bye", "confirm": "on"})
    in_force.refresh_from_db()
    assert in_force.status == "terminated" and rules_toward(partner=maker) == []
    response = client.get(f"{base}/propose/")
    assert response.status_code == 302 and response["Location"] == f"{base}/"


def test_the_history_shows_who_did_what_and_when(pair, in_force, client):
    _, maker_admin, _, shop_admin = pair
    client.force_login(shop_admin)
    client.post(f"/portal/agreements/{in_force.pk}/suspend/", {"reason": "data audit"})
    html = client.get(f"/portal/agreements/{in_force.pk}/").content.decode()
    history = html[html.index('id="history"') :]
    rows = re.findall(r"<tr><td><time datetime=\"([^\"]+)\">.*?</tr>", history, re.S)
    assert len(rows) == 3
    assert "Maker Co · " + maker_admin.full_name in history
    assert "Shop Ltd · " + shop_admin.full_name in history
    for what in ("proposed", "countersigned", "suspended the agreement", "data audit"):
        assert what in history
    activity = client.get("/portal/activity/").content.decode()
    assert "agreement.suspended" in activity and "agreement.countersigned" in activity


def test_the_diff_page_marks_added_removed_and_changed_clauses(pair, in_force, client):
    maker, maker_admin, shop, shop_admin = pair
    feedback = {
        "kind": "feedback",
        "purpose": "product_improvement",
        "direction": R2M,
        "fields": ["rating"],
    }
    agreement_propose(
        proposer=shop,
        counterpart=maker,
        clauses=[{**SALE, "fields": ["product", "store"]}, feedback],
        actor=shop_admin,
    )
    client.force_login(maker_admin)
    response = client.get(f"/portal/agreements/{in_force.pk}/diff/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Changes from version 1 to version 2" in html
    assert "1 clause added, 1 removed, 1 changed, 0 unchanged" in html
    added = html[html.index('id="added"') : html.index('id="removed"')]
    removed = html[html.index('id="removed"') : html.index('id="changed"')]
    changed = html[html.index('id="changed"') :]
    assert "Feedback" in added and "<ins>rating</ins>" in added
    assert "Service visit" in removed and "<del>outcome</del>" in removed
    assert "<ins>+ store</ins>" in changed and "<del>− customer</del>" in changed
    assert "Shop Ltd → Maker Co" in changed
    earlier = client.get(f"/portal/agreements/{in_force.pk}/diff/?from=0&to=1").content.decode()
    assert "2 clauses added, 0 removed" in earlier


@pytest.mark.parametrize(
    "query,error",
    [("?from=1&to=9", "valid choice"), ("?from=x&to=1", "valid choice"), ("?to=", "required")],
)
def test_a_bad_version_choice_on_the_diff_page_is_a_clear_400(pair, in_force, client, query, error):
    _, maker_admin, _, _ = pair
    client.force_login(maker_admin)
    response = client.get(f"/portal/agreements/{in_force.pk}/diff/{query}")
    assert response.status_code == 400 and error in response.content.decode()


def test_the_list_says_whose_countersignature_is_awaited(pair, in_force, client):
    maker, maker_admin, shop, shop_admin = pair
    agreement_propose(proposer=maker, counterpart=shop, clauses=[SALE], actor=maker_admin)
    client.force_login(shop_admin)
    html = client.get("/portal/agreements/").content.decode()
    assert "Maker Co" in html and "awaiting your countersignature" in html
    assert 'aria-current="page">Agreements<' in html
    client.force_login(maker_admin)
    assert "awaiting Shop Ltd" in client.get("/portal/agreements/").content.decode()


def test_another_partners_agreement_is_404_in_the_portal(pair, in_force, make_partner, client):
    maker, maker_admin, shop, _ = pair
    agreement_propose(proposer=maker, counterpart=shop, clauses=[SALE], actor=maker_admin)
    _, outsider_admin = make_partner(kind=Partner.Kind.RETAILER)
    client.force_login(outsider_admin)
    base = f"/portal/agreements/{in_force.pk}"
    for url in (f"{base}/", f"{base}/diff/", f"{base}/propose/"):
        assert client.get(url).status_code == 404
    for action in ("countersign", "reject", "withdraw", "suspend", "resume", "terminate"):
        assert (
            client.post(f"{base}/{action}/", {"version": "2", "confirm": "on"}).status_code == 404
        )
    assert client.get("/portal/agreements/00000000-0000-0000-0000-000000000000/").status_code == 404
    assert "Maker Co" not in client.get("/portal/agreements/").content.decode()
    in_force.refresh_from_db()
    assert in_force.status == "active"
    assert AgreementVersion.objects.for_partner(maker).filter(status="proposed").count() == 1


def test_the_operator_reads_agreements_in_the_admin_but_cannot_change_them(
    in_force, operator, client
):
    client.force_login(operator)
    listing = client.get("/admin/partners/sharingagreement/")
    assert listing.status_code == 200 and b"Maker Co" in listing.content
    page = client.get(f"/admin/partners/sharingagreement/{in_force.pk}/change/")
    assert page.status_code == 200 and b"agreement.countersigned" in page.content
    assert client.get("/admin/partners/sharingagreement/add/").status_code == 403
    response = client.post(
        f"/admin/partners/sharingagreement/{in_force.pk}/delete/", {"post": "yes"}
    )
    assert response.status_code == 403
    assert SharingAgreement.objects.for_partner(in_force.manufacturer).exists()

"""The shared discrepancy queue over the API and in the portal."""

import pytest

from clearinghouse.reconciliation.engine import reconcile_pair
from clearinghouse.reconciliation.models import Discrepancy
from clearinghouse.records.services import records_ingest
from partners.models import Role, Scope
from tests.partners.test_api import assert_problem
from tests.records.conftest import consent, sale


@pytest.fixture
def opened(pair):
    from django.utils import timezone

    records_ingest(
        partner=pair.shop,
        rows=[sale("S-1", occurred_at=(timezone.now() - timezone.timedelta(days=90)).isoformat())],
        max_rows=10,
    )
    consent(pair.maker)
    run = reconcile_pair(manufacturer=pair.maker, retailer=pair.shop, trigger="test")
    assert run.counts["opened"] == 1
    return pair, Discrepancy.objects.unscoped("test setup").get()


@pytest.fixture
def keys(pair, issue_key):
    scopes = [Scope.DISCREPANCIES_READ, Scope.DISCREPANCIES_WRITE]
    return {
        "maker": issue_key(pair.maker, pair.maker_admin, scopes=scopes)[1],
        "shop": issue_key(pair.shop, pair.shop_admin, scopes=scopes)[1],
    }


def test_both_parties_see_the_finding_with_their_own_projection(opened, keys, api):
    _pair, d = opened
    for side in ("maker", "shop"):
        rows = api(keys[side]).get("/api/v1/discrepancies").json()["results"]
        assert [r["id"] for r in rows] == [str(d.pk)]
    detail = api(keys["maker"]).get(f"/api/v1/discrepancies/{d.pk}").json()
    [evidence] = detail["evidence"]
    assert (
        evidence["role"] == "sale"
        and not evidence["own"]
        and "price_cents" not in evidence["payload"]
    )
    own = api(keys["shop"]).get(f"/api/v1/discrepancies/{d.pk}").json()["evidence"][0]
    assert own["own"] and own["payload"]["price_cents"] == 49900


def test_a_third_partner_gets_404(opened, make_partner, issue_key, api):
    _, d = opened
    third, admin = make_partner(name="Third")
    _, key = issue_key(third, admin, scopes=[Scope.DISCREPANCIES_READ, Scope.DISCREPANCIES_WRITE])
    assert api(key).get("/api/v1/discrepancies").json()["results"] == []
    assert_problem(api(key).get(f"/api/v1/discrepancies/{d.pk}"), 404)
    assert_problem(
        api(key).post(f"/api/v1/discrepancies/{d.pk}/resolve", {"reason": "x"}, format="json"), 404
    )


def test_resolve_dismiss_reopen_and_comment_with_history(opened, keys, api):
    _pair, d = opened
    maker = api(keys["maker"])
    assert_problem(
        maker.post(f"/api/v1/discrepancies/{d.pk}/resolve", {}, format="json"), 400, "validation"
    )
    body = maker.post(
        f"/api/v1/discrepancies/{d.pk}/dismiss", {"reason": "registered on paper"}, format="json"
    ).json()
    assert body["status"] == "dismissed"
    # A dismissed finding cannot be resolved: the state refuses it (409), not the input.
    assert_problem(
        maker.post(f"/api/v1/discrepancies/{d.pk}/resolve", {"reason": "x"}, format="json"),
        409,
        "wrong_state",
    )
    shop = api(keys["shop"])
    assert (
        shop.post(
            f"/api/v1/discrepancies/{d.pk}/reopen", {"reason": "no, it was not"}, format="json"
        ).json()["status"]
        == "open"
    )
    notes = shop.post(
        f"/api/v1/discrepancies/{d.pk}/comments", {"text": "checking <b>now</b>"}, format="json"
    ).json()["notes"]
    assert [(n["action"], n["partner"]) for n in notes] == [
        ("opened", None),
        ("dismissed", "Maker"),
        ("reopened", "Shop"),
        ("comment", "Shop"),
    ]
    # Who: each party's system, with an API key (a person in the portal is named by e-mail).
    assert [(n["user"], n["via_api"]) for n in notes] == [(None, False)] + [(None, True)] * 3


def test_filters_and_bad_filters(opened, keys, api):
    _, _d = opened
    client = api(keys["maker"])
    assert (
        len(
            client.get(
                "/api/v1/discrepancies", {"status": "open", "kind": "sale_without_registration"}
            ).json()["results"]
        )
        == 1
    )
    assert client.get("/api/v1/discrepancies", {"status": "resolved"}).json()["results"] == []
    assert_problem(client.get("/api/v1/discrepancies", {"status": "weird"}), 400)


def test_working_the_queue_needs_the_write_scope(opened, issue_key, api):
    pair, d = opened
    _, key = issue_key(pair.maker, pair.maker_admin, scopes=[Scope.DISCREPANCIES_READ])
    assert_problem(
        api(key).post(f"/api/v1/discrepancies/{d.pk}/dismiss", {"reason": "x"}, format="json"), 403
    )


def test_runs_are_listed_for_both_parties(opened, keys, api):
    for side in ("maker", "shop"):
        runs = api(keys[side]).get("/api/v1/reconciliation/runs").json()["results"]
        assert runs[0]["status"] == "done" and runs[0]["counts"]["opened"] == 1


def test_portal_queue_detail_and_transition(opened, client, add_staff):
    pair, d = opened
    client.force_login(pair.maker_admin)
    queue = client.get("/portal/discrepancies/").content.decode()
    assert "Sale without registration" in queue
    page = client.get(f"/portal/discrepancies/{d.pk}/").content.decode()
    assert "recorded by Shop" in page and "49900" not in page
    response = client.post(
        f"/portal/discrepancies/{d.pk}/",
        {"action": "resolve", "text": "Registered by phone"},
        follow=True,
    )
    assert b"Registered by phone" in response.content
    d.refresh_from_db()
    assert d.status == "resolved"
    viewer = add_staff(pair.shop, Role.VIEWER, pair.shop_admin)
    client.force_login(viewer)
    assert (
        client.post(f"/portal/discrepancies/{d.pk}/", {"action": "reopen", "text": "x"}).status_code
        == 403
    )
    assert client.get("/portal/reconciliation/").status_code == 200


def test_portal_hides_a_foreign_discrepancy(opened, make_partner, client):
    _, d = opened
    _third, admin = make_partner(name="Third")
    client.force_login(admin)
    assert client.get(f"/portal/discrepancies/{d.pk}/").status_code == 404


def test_the_customer_is_offered_the_missing_registration(opened, client):
    import time

    _, d = opened
    session = client.session
    session["consent_customer"] = str(d.customer_id)
    session["consent_customer_until"] = time.time() + 600
    session.save()
    page = client.get("/me/overview/").content.decode()
    assert "not registered" in page and d.serial in page


def test_the_portal_queue_pages_keep_the_filters(pair, client):
    from django.utils import timezone

    sold = (timezone.now() - timezone.timedelta(days=90)).isoformat()
    rows = [sale(f"S-{n}", serial=f"SN-{n}", occurred_at=sold) for n in range(51)]
    records_ingest(partner=pair.shop, rows=rows, max_rows=100)
    consent(pair.maker)
    reconcile_pair(manufacturer=pair.maker, retailer=pair.shop, trigger="test")
    client.force_login(pair.maker_admin)
    page = client.get(
        "/portal/discrepancies/", {"kind": "sale_without_registration", "severity": "low"}
    )
    html = page.content.decode()
    assert page.context["page"].paginator.count == 51
    assert 'href="?kind=sale_without_registration&amp;severity=low&amp;page=2"' in html


def test_listing_a_finding_on_a_counterparts_record_is_in_the_customers_access_log(
    opened, client, keys, api
):
    from consent.models import AccessLogEntry

    pair, d = opened  # the shop's sale, which the maker may see
    client.force_login(pair.shop_admin)
    client.get("/portal/discrepancies/")  # the shop's own record: not a counterpart read
    assert not AccessLogEntry.objects.filter(partner=pair.shop).exists()
    client.force_login(pair.maker_admin)
    client.get("/portal/discrepancies/")
    api(keys["maker"]).get("/api/v1/discrepancies")
    entries = AccessLogEntry.objects.filter(partner=pair.maker, customer_id=d.customer_id)
    assert sorted(entries.values_list("channel", flat=True)) == ["api", "portal"]
    assert all(e.categories == ["purchase"] and e.purposes == ["warranty"] for e in entries)

"""Links on the unit timeline: each record shows the records reconciliation matched it with,
in the portal and over the API, only where the reader may see both ends."""

from datetime import UTC, datetime

from clearinghouse.records import visibility
from clearinghouse.timelines.api.schema import TimelineRecordSerializer, represent
from clearinghouse.timelines.selectors import attach_links
from consent import services as consent_services
from consent.models import ConsentGrant
from partners.models import Scope
from tests.reconciliation.conftest import give_consents, put, run
from tests.records.conftest import GTIN, registration, sale

UNIT = f"/portal/units/{GTIN}/SN-1/"
API_UNIT = f"/api/v1/units/{GTIN}/SN-1/timeline"


def matched(world):
    [sale_ref] = put(world.shop, sale("S-1", occurred_at=world.days(40)))
    [registration_ref] = put(world.maker, registration("W-1", occurred_at=world.days(39)))
    give_consents(world)
    run(world)
    return str(sale_ref), str(registration_ref)


def api_links(api, key, url=API_UNIT):
    body = api(key).get(url).json()
    return {item["ref"]: item["links"] for item in body["results"]}, body


def test_both_parties_see_the_link_in_the_portal(world, client):
    sale_ref, registration_ref = matched(world)
    for user in (world.shop_admin, world.maker_admin):
        client.force_login(user)
        response = client.get(UNIT)
        page = response.content.decode()
        events = {e["ref"]: e for e in response.context["events"]}
        assert [link["ref"] for link in events[sale_ref]["links"]] == [registration_ref]
        assert [link["ref"] for link in events[registration_ref]["links"]] == [sale_ref]
        assert f'href="#r-{registration_ref}"' in page and f'id="r-{registration_ref}"' in page
        assert "Warranty registration of" in page and "Sale ↔ warranty registration" in page


def test_the_api_timeline_names_the_matched_record(world, api, issue_key):
    sale_ref, registration_ref = matched(world)
    key = issue_key(world.shop, world.shop_admin, scopes=[Scope.RECORDS_READ])[1]
    links, _ = api_links(api, key)
    assert [(x["kind"], x["ref"]) for x in links[sale_ref]] == [
        ("sale_registration", registration_ref)
    ]
    assert [x["ref"] for x in links[registration_ref]] == [sale_ref]
    assert links[sale_ref][0]["matched_at"].endswith("Z")
    # One record per page: the other end is on the next page, and still named.
    first, body = api_links(api, key, f"{API_UNIT}?page_size=1")
    assert list(first) == [sale_ref] and body["next"]
    assert [x["ref"] for x in first[sale_ref]] == [registration_ref]


def test_a_link_never_names_a_record_the_reader_may_not_see(world, api, issue_key):
    """Alice withdraws the retailer's warranty consent: the retailer no longer sees the
    registration, and its sale shows no link (nor the registration's ref) any more."""
    sale_ref, registration_ref = matched(world)
    grant = ConsentGrant.objects.unscoped("test setup").get(
        grantee=world.shop, purpose="warranty", revoked_at=None
    )
    consent_services.consent_revoke(grant=grant)
    key = issue_key(world.shop, world.shop_admin, scopes=[Scope.RECORDS_READ])[1]
    links, body = api_links(api, key)
    assert links == {sale_ref: []}
    assert registration_ref not in str(body)
    # The manufacturer still sees both, and the link.
    key = issue_key(world.maker, world.maker_admin, scopes=[Scope.RECORDS_READ])[1]
    links, _ = api_links(api, key)
    assert [x["ref"] for x in links[registration_ref]] == [sale_ref]


def test_other_timelines_carry_no_links(world, api, issue_key):
    matched(world)
    key = issue_key(world.shop, world.shop_admin, scopes=[Scope.RECORDS_READ])[1]
    body = api(key).get("/api/v1/records").json()
    assert body["results"] and all("links" not in item for item in body["results"])


def test_pages_say_what_the_timeline_record_serializer_says(world):
    """A timeline page is written by ``represent`` rather than by a serializer per row: with
    links, with none, and on a timeline that carries none, the two agree."""
    matched(world)
    when = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)
    visible = visibility.unit_timeline(partner=world.shop, gtin=GTIN, serial="SN-1")
    seen = list(attach_links(visible.read(channel="test")))
    assert [len(item["links"]) for item in seen] == [1, 1]
    seen += [
        {**seen[0], "links": []},
        {
            **seen[0],
            "links": [
                {"kind": "sale_registration", "ref": seen[1]["ref"], "matched_at": when},
                {"kind": "request_visit", "ref": seen[0]["ref"], "matched_at": when, "label": "x"},
            ],
        },
        {k: v for k, v in seen[0].items() if k != "links"},
    ]
    for item in seen:
        assert represent(item) == TimelineRecordSerializer(item).data
        assert list(represent(item)) == list(TimelineRecordSerializer(item).data)

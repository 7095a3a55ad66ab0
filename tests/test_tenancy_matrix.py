"""The tenancy matrix, generated from the URL configuration.

Every route of the API, the partner portal and the customer dashboard whose URL names an object
(an id, a ref, a serial, a GTIN) is found by walking ``get_resolver()``. For each, REGISTRY below
makes (or finds) such an object owned by partner A — the demo's manufacturer — and names strings
that only the object holds. Then every method the route supports is sent by each actor that must
not reach the object:

- API: an all-scope key of an unrelated manufacturer and of an unrelated retailer, A's revoked
  key, A's key lacking the scope the route needs, and A's own key once A is suspended;
- portal: the admins of the unrelated manufacturer and retailer, and A's admin once A is
  suspended;
- dashboard: another customer.

Each must get 401, 403 or 404, the answer must hold none of the object's strings, and an unsafe
method must leave the object as it was. The owner (A's key, A's admin, the customer) must get
200 on GET and no 401/403/404 on the unsafe methods, so the matrix cannot pass by refusing
everyone. Timelines are keyed by values, not rows: for them a foreign actor may get the answer
a key with no data gets (an empty timeline), as long as nothing of A's shows.

A route with an object in its URL that REGISTRY does not know fails the test: add it.
"""

import time
from dataclasses import dataclass
from urllib.parse import urlencode

from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

from tests.support import summary

REFUSED = {401, 403, 404}
METHODS = ("get", "post", "put", "patch", "delete")

# Routes with a key in the URL that are not a partner's or a customer's object, and why.
EXEMPT = {
    "portal:invitation-accept": "the token is the invitation itself (a secret sent by e-mail)",
    "dashboard:link": "the token is the magic sign-in link itself",
    "password_reset_confirm": "Django's password reset: the token is the secret",
}
EXEMPT_NAMESPACES = {
    "admin": "the operator's Django admin: staff superusers only, not partners or customers",
}


@dataclass
class Target:
    """An object of A as one route names it."""

    kwargs: dict
    secrets: list  # strings only the object holds (not in its URL)
    state: object  # () -> the object's rows, which a refused unsafe request must not change
    timeline: bool = False  # keyed by values: a foreign actor may get an empty answer


@dataclass
class World:
    maker: object
    admin: object
    shop: object
    operator: object
    strangers: list  # [(partner, admin, key)]
    owner_key: str
    revoked_key: str
    keys_without: dict  # scope -> A's key with every scope but that one
    alice: object
    bob: object


def walk(resolver=None, prefix="", namespace=""):
    """(path pattern, full route name, URLPattern) of every route."""
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from walk(entry, prefix + str(entry.pattern), inner)
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), f"{namespace}{entry.name or ''}", entry


def object_kwargs(entry):
    pattern = entry.pattern
    names = set(getattr(pattern, "converters", {}) or {}) | set(pattern.regex.groupindex)
    return names - {"action", "format"}


def methods_of(entry):
    callback = entry.callback
    if getattr(callback, "actions", None):  # a DRF viewset route
        return [m for m in METHODS if m in callback.actions]  # GET first: DELETE last
    view = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
    if view is None:
        return ["get"]
    return [m for m in METHODS if hasattr(view, m)]


def required_scope(entry, method):
    view = getattr(entry.callback, "cls", None)
    scopes = getattr(view, "required_scopes", None) or {}
    return scopes.get(method.upper())


def routes_with_objects():
    found = []
    for path, name, entry in walk():
        if not object_kwargs(entry) or name in EXEMPT:
            continue
        if name.split(":")[0] in EXEMPT_NAMESPACES:
            continue
        found.append((path, name, entry))
    return found


# --- the world ------------------------------------------------------------------------------


def build_world(operator, make_partner, issue_key):
    from consent.models import ConsentGrant
    from partners import services as partner_services
    from partners.models import Partner, Scope
    from tests.support.demo import load_small_demo

    demo = load_small_demo()
    maker, shop = demo.partners["maker"], demo.partners["shop"]
    strangers = []
    for kind, name in (
        (Partner.Kind.MANUFACTURER, "Stranger Works"),
        (Partner.Kind.RETAILER, "Stranger Mart"),
    ):
        partner, admin = make_partner(kind=kind, name=name)
        strangers.append((partner, admin, issue_key(partner, admin)[1]))
    revoked, revoked_key = issue_key(maker, demo.admin)
    partner_services.credential_revoke(credential=revoked, actor=demo.admin)
    keys_without = {
        scope: issue_key(maker, demo.admin, scopes=[s for s in Scope.values if s != scope])[1]
        for scope in Scope.values
    }
    alice = demo.customers["alice@example.org"]
    bob = demo.customers["bob@example.org"]
    assert ConsentGrant.objects.unscoped("test setup").filter(customer=alice).exists()
    return World(
        maker=maker,
        admin=demo.admin,
        shop=shop,
        operator=operator,
        strangers=strangers,
        owner_key=issue_key(maker, demo.admin)[1],
        revoked_key=revoked_key,
        keys_without=keys_without,
        alice=alice,
        bob=bob,
    )


def rows(model, **lookup):
    """() -> the rows, read past any tenancy manager (this is the test's own look)."""
    return lambda: list(model._base_manager.filter(**lookup).values())


# --- the registry: route name -> factory(world) -> Target -------------------------------------


def agreement(w):
    from partners.agreements import agreement_list

    found = agreement_list(partner=w.maker).filter(retailer=w.shop).first()
    from partners.models import SharingAgreement

    return Target({"pk": found.pk}, [w.shop.name, w.shop.slug], rows(SharingAgreement, pk=found.pk))


def consent_grant(w):
    from consent.models import ConsentGrant

    grant = ConsentGrant.objects.for_partner(w.maker).filter(customer=w.alice).first()
    return Target({"pk": grant.pk}, [str(grant.customer_id)], rows(ConsentGrant, pk=grant.pk))


def credential(w):
    from partners import services
    from partners.models import ApiCredential, Scope

    issued = services.credential_create(
        partner=w.maker, name="Matrix victim key", scopes=[Scope.PARTNER_READ], created_by=w.admin
    )
    c = issued.credential
    return Target({"pk": c.pk}, ["Matrix victim key", c.prefix], rows(ApiCredential, pk=c.pk))


def discrepancy(w):
    from clearinghouse.reconciliation import selectors
    from clearinghouse.reconciliation.models import Discrepancy

    d = selectors.discrepancies_visible(partner=w.maker).exclude(serial="").first()
    return Target({"pk": d.pk}, [d.serial], rows(Discrepancy, pk=d.pk))


def notice(w):
    from consent.models import RecipientNotice
    from tests.support.notices import notice_for

    found = notice_for(w.maker)
    return Target({"pk": found.pk}, [str(found.customer_id)], rows(RecipientNotice, pk=found.pk))


def record(w):
    from clearinghouse.records.models import InteractionRecord

    r = InteractionRecord.objects.for_partner(w.maker).order_by("id").first()
    return Target(
        {"ref": r.ref}, [r.external_id, str(r.customer_id)], rows(InteractionRecord, pk=r.pk)
    )


def device(w):
    from telemetry.models import Device

    d = Device.objects.for_partner(w.maker).order_by("serial").first()
    return Target({"serial": d.serial}, [d.gtin, d.firmware], rows(Device, pk=d.pk))


def rule(w):
    from telemetry.models import ServiceRule

    r = ServiceRule.objects.for_partner(w.maker).first()
    return Target(
        {"pk": r.pk, "action": "deactivate"}, [r.name, r.issue], rows(ServiceRule, pk=r.pk)
    )


def signal(w, action=None):
    from telemetry.models import ServiceSignal

    s = ServiceSignal.objects.for_partner(w.maker).select_related("rule", "device").first()
    kwargs = {"pk": s.pk} | ({"action": action} if action else {})
    return Target(kwargs, [s.rule.name, s.device.serial], rows(ServiceSignal, pk=s.pk))


def unit(w):
    from clearinghouse.records.models import InteractionRecord

    own = InteractionRecord.objects.for_partner(w.maker).order_by("occurred_at", "id")
    r = own.exclude(serial="").first()
    refs = [x.external_id for x in own.filter(gtin=r.gtin, serial=r.serial)[:20]]
    return Target({"gtin": r.gtin, "serial": r.serial}, refs, lambda: None, timeline=True)


def customer_timeline(w):
    from clearinghouse.records.models import InteractionRecord

    mine = InteractionRecord.objects.for_partner(w.maker).filter(customer_id=w.alice.pk)
    refs = [x.external_id for x in mine.order_by("occurred_at", "id")[:20]]
    assert refs, "Alice has no records of the manufacturer"
    return Target({"ref": w.alice.pk}, refs, lambda: None, timeline=True)


def new_endpoint(w):
    from partners import webhooks

    return webhooks.endpoint_create(
        partner=w.maker,
        url="https://hooks.nordwind.example/matrix-hook-path",
        description="Matrix receiver",
        event_types=["discrepancy.opened"],
        actor=w.admin,
    ).endpoint


HOOK_SECRETS = ["matrix-hook-path", "Matrix receiver"]


def endpoint(w):
    from partners.models import WebhookEndpoint

    found = new_endpoint(w)
    return Target({"pk": found.pk}, HOOK_SECRETS, rows(WebhookEndpoint, pk=found.pk))


def delivery(w):
    from partners import webhooks
    from partners.models import WebhookDelivery

    d = webhooks.webhook_ping(endpoint=new_endpoint(w), actor=w.admin)
    return Target({"pk": d.pk}, [*HOOK_SECRETS, str(d.event_id)], rows(WebhookDelivery, pk=d.pk))


def membership(w):
    from partners.models import Membership, Role

    m = Membership.objects.for_partner(w.maker).filter(role=Role.ANALYST).select_related("user")[0]
    return Target({"pk": m.pk}, [m.user.email], rows(Membership, pk=m.pk))


def invitation(w):
    from partners import services
    from partners.models import Invitation, Role

    i = services.staff_invite(
        partner=w.maker,
        email="invitee-matrix@nordwind.example",
        role=Role.VIEWER,
        invited_by=w.admin,
    )
    return Target({"pk": i.pk}, ["invitee-matrix"], rows(Invitation, pk=i.pk))


def upload(w):
    from clearinghouse.records.models import RecordUpload
    from clearinghouse.records.services import upload_create

    u = upload_create(
        partner=w.maker,
        user=w.admin,
        filename="matrix-upload.csv",
        content=b"external_id,kind\nMATRIX-ROW-1,sale\n",
    )
    return Target({"pk": u.pk}, ["matrix-upload.csv"], rows(RecordUpload, pk=u.pk))


def receipt(w):
    from consent.models import Receipt

    r = Receipt.objects.filter(customer=w.alice).first()
    return Target({"pk": r.pk}, [r.signature[:32]], rows(Receipt, pk=r.pk))


def prompt(w):
    from telemetry.models import CustomerPrompt

    p = CustomerPrompt.objects.filter(customer=w.alice).first()
    assert p is not None, "the demo's pump rule made no prompt for Alice"
    return Target({"pk": p.pk, "action": "decline"}, [p.text], rows(CustomerPrompt, pk=p.pk))


API, PORTAL, CUSTOMER = "api", "portal", "customer"


def warranty_terms(w):
    from clearinghouse.reconciliation.models import WarrantyTerms

    t = WarrantyTerms.objects.for_partner(w.maker).first()
    return Target({"pk": t.pk}, [t.gtin], rows(WarrantyTerms, pk=t.pk))


REGISTRY = {
    "api:agreement-detail": (API, agreement),
    "api:consent-detail": (API, consent_grant),
    "api:consent-revoke": (API, consent_grant),
    "api:credential-detail": (API, credential),
    "api:credential-revoke": (API, credential),
    "api:discrepancy-detail": (API, discrepancy),
    "api:discrepancy-comments": (API, discrepancy),
    "api:discrepancy-dismiss": (API, discrepancy),
    "api:discrepancy-reopen": (API, discrepancy),
    "api:discrepancy-resolve": (API, discrepancy),
    "api:notice-detail": (API, notice),
    "api:notice-acknowledge": (API, notice),
    "api:warranty-terms-detail": (API, warranty_terms),
    "api:record-detail": (API, record),
    "api:telemetry-device-detail": (API, device),
    "api:telemetry-rule-active": (API, rule),
    "api:telemetry-signal": (API, signal),
    "api:telemetry-signal-action": (API, lambda w: signal(w, "acknowledge")),
    "api:unit-timeline": (API, unit),
    "api:webhook-detail": (API, endpoint),
    "api:webhook-ping": (API, endpoint),
    "api:webhook-rotate-secret": (API, endpoint),
    "api:webhook-delivery-detail": (API, delivery),
    "api:webhook-delivery-redeliver": (API, delivery),
    "portal:staff-update": (PORTAL, membership),
    "portal:invitation-revoke": (PORTAL, invitation),
    "portal:credential-revoke": (PORTAL, credential),
    "portal:agreement-detail": (PORTAL, agreement),
    "portal:agreement-propose": (PORTAL, agreement),
    "portal:agreement-diff": (PORTAL, agreement),
    **{
        f"portal:agreement-{action}": (PORTAL, agreement)
        for action in ("countersign", "reject", "withdraw", "suspend", "resume", "terminate")
    },
    "portal:webhook-detail": (PORTAL, endpoint),
    **{
        f"portal:webhook-{action}": (PORTAL, endpoint)
        for action in ("test", "rotate", "disable", "enable")
    },
    "portal:webhook-delivery": (PORTAL, delivery),
    "portal:webhook-redeliver": (PORTAL, delivery),
    "records:upload-status": (PORTAL, upload),
    "records:upload-errors": (PORTAL, upload),
    "records:unit": (PORTAL, unit),
    "records:customer": (PORTAL, customer_timeline),
    "reconciliation:detail": (PORTAL, discrepancy),
    "reconciliation:warranty-terms-delete": (PORTAL, warranty_terms),
    "notices:confirm": (PORTAL, notice),
    "telemetry:device": (PORTAL, device),
    "telemetry:signal-action": (PORTAL, lambda w: signal(w, "acknowledge")),
    "telemetry:rule-active": (PORTAL, rule),
    "dashboard:receipt": (CUSTOMER, receipt),
    "telemetry:prompt-decide": (CUSTOMER, prompt),
}

API_BODY = {"reason": "matrix", "text": "matrix"}
FORM_BODY = {"reason": "matrix", "text": "matrix", "role": "viewer", "confirm": "on", "note": "m"}


# --- actors ---------------------------------------------------------------------------------


def api_client(key):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def staff_client(user):
    client = APIClient()  # a session, which may also call the (browsable) API
    client.force_login(user)
    return client


def customer_client(customer):
    from consent.dashboard.views import SESSION_KEY, SESSION_UNTIL

    client = Client()
    session = client.session
    session[SESSION_KEY] = str(customer.pk)
    session[SESSION_UNTIL] = time.time() + 600
    session.save()
    return client


def send(client, audience, method, url):
    if method == "get":
        return client.get(url)
    if audience == API:
        return getattr(client, method)(url, API_BODY, format="json")
    form = "application/x-www-form-urlencoded"
    return client.generic(method.upper(), url, urlencode(FORM_BODY), content_type=form)


def foreign_actors(w, audience, entry, method):
    """(label, client) of everyone who must not reach A's object by this method."""
    if audience == API:
        actors = [(f"key of {p.name}", api_client(key)) for p, _, key in w.strangers]
        actors += [(f"staff session of {p.name}", staff_client(a)) for p, a, _ in w.strangers]
        actors.append(("A's revoked key", api_client(w.revoked_key)))
        scope = required_scope(entry, method)
        if scope:
            actors.append((f"A's key without {scope}", api_client(w.keys_without[scope])))
        return actors
    if audience == PORTAL:
        return [(f"admin of {p.name}", staff_client(admin)) for p, admin, _ in w.strangers]
    return [("another customer", customer_client(w.bob))]


def owner(w, audience):
    if audience == API:
        return api_client(w.owner_key)
    if audience == PORTAL:
        return staff_client(w.admin)
    return customer_client(w.alice)


# --- the test -------------------------------------------------------------------------------


def test_every_route_with_an_object_in_its_url_is_in_the_matrix():
    unknown = [
        f"{name} ({path})" for path, name, _ in routes_with_objects() if name not in REGISTRY
    ]
    assert not unknown, (
        "routes that name an object but escape the tenancy matrix — add them to REGISTRY in "
        f"tests/test_tenancy_matrix.py: {unknown}"
    )
    gone = set(REGISTRY) - {name for _, name, _ in routes_with_objects()}
    assert not gone, f"REGISTRY names routes that no longer exist: {sorted(gone)}"


def test_foreign_suspended_revoked_and_out_of_scope_actors_reach_no_object(
    operator, make_partner, issue_key
):
    from django.urls import reverse

    from partners import services as partner_services

    world = build_world(operator, make_partner, issue_key)
    problems, cells, owner_cells = [], 0, 0
    routes = [(name, entry) for _, name, entry in routes_with_objects() if name in REGISTRY]
    for name, entry in routes:
        audience, factory = REGISTRY[name]
        with transaction.atomic():
            target = factory(world)
            url = reverse(name, kwargs=target.kwargs)
            secrets = [s for s in target.secrets if s and s not in url]
            assert target.timeline or secrets, f"{name}: no distinctive string to look for"

            def check(label, response, method, before, target=target, url=url, secrets=secrets):
                body = response.content.decode(errors="replace")
                leaked = [s for s in secrets if s in body]
                if leaked:
                    problems.append(f"{method.upper()} {url} as {label}: leaks {leaked}")
                allowed = REFUSED | ({200} if target.timeline and method == "get" else set())
                if response.status_code not in allowed:
                    problems.append(
                        f"{method.upper()} {url} as {label}: {response.status_code}, "
                        f"expected one of {sorted(allowed)}"
                    )
                if method != "get" and target.state() != before:
                    problems.append(f"{method.upper()} {url} as {label}: changed the object")

            for method in methods_of(entry):
                for label, client in foreign_actors(world, audience, entry, method):
                    before = target.state()
                    check(label, send(client, audience, method, url), method, before)
                    cells += 1
            for method in methods_of(entry):
                response = send(owner(world, audience), audience, method, url)
                owner_cells += 1
                expected_ok = (
                    response.status_code == 200
                    if method == "get"
                    else (response.status_code not in REFUSED)
                )
                if not expected_ok:
                    problems.append(
                        f"{method.upper()} {url} as its owner: {response.status_code} "
                        "(the matrix must see the owner reach it)"
                    )
            if audience in (API, PORTAL):
                partner_services.partner_suspend(partner=world.maker, actor=world.operator)
                for method in methods_of(entry):
                    before = target.state()
                    check(
                        "suspended A",
                        send(owner(world, audience), audience, method, url),
                        method,
                        before,
                    )
                    cells += 1
            transaction.set_rollback(True)
    summary.report(
        "Tenancy matrix",
        [
            f"{len(routes)} routes with an object in the URL, {cells} refused requests "
            f"(route x actor x method) and {owner_cells} owner requests"
        ],
    )
    assert not problems, "\n".join(problems)

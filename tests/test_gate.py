"""The sharing gate by construction: every path that can carry a counterpart's data, found by
walking the URL conf and the webhook event registry (not by a list someone keeps), shows exactly
what the rules allow and writes each read to the customer's access log.

Two halves:

* **Discovery.** Every partner-facing route (API, portal, dashboard) and every webhook event type
  is either *gated* — named with the check of the property test below that reads through it —
  or says why it carries no counterpart data. A new route, page or event type that is neither
  fails ``test_every_route_is_accounted_for`` / ``test_every_event_type_is_accounted_for``; a
  check that never ran fails the property test.
* **The property.** Hypothesis draws worlds of partners, agreements, clauses, consents,
  withdrawals, erasures and records (``tests.records.test_properties``: the oracle there never
  asks the code under test). On top of the record reads that test covers, each partner here
  also searches the portal's units, hears of the records shared with it (``record.shared``),
  works the discrepancy queue after a reconciliation (API, portal, ``discrepancy.*``), receives
  service prompts (``service.signal``), and reads its webhook delivery log (API and portal).
  Every record shown must be the oracle's projection, every finding must rest only on records
  the oracle lets it see and show only the fields their clauses share, and every read must be
  in the access log. Then a consent behind a shared record ends, and each of those paths must
  stop showing it on the very next read.
"""

import itertools

from django.db import transaction
from django.test import override_settings
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from clearinghouse.reconciliation.engine import reconcile_pair
from clearinghouse.reconciliation.models import Discrepancy, DiscrepancyEvidence
from clearinghouse.reconciliation.notify import discrepancies_opened
from clearinghouse.reconciliation.selectors import DETAIL_SOURCES
from clearinghouse.records.announce import records_announce
from partners import webhooks
from partners.models import WEBHOOK_PING, Scope, WebhookEvent, WebhookEventType
from partners.webhooks import payloads
from telemetry.models import CustomerPrompt, Device, ServiceRule, ServiceSignal
from tests.records import test_properties as world_of
from tests.records.test_properties import GTIN, NAMES, SERIALS, Builder, Reader

# --- what each route and event type is --------------------------------------------------------

# Views that show a counterpart's data: the property test's check that reads through each.
GATED_VIEWS = {
    "clearinghouse.records.api.views.RecordsView": "records list",
    "clearinghouse.records.api.views.RecordDetailView": "record detail",
    "clearinghouse.timelines.api.views.UnitTimelineView": "unit timeline",
    "clearinghouse.timelines.api.views.CustomerTimelineView": "customer timeline",
    "clearinghouse.timelines.views.UnitTimelineView": "unit timeline",
    "clearinghouse.timelines.views.CustomerTimelineView": "customer page",
    "clearinghouse.records.views.SearchView": "unit search",
    "clearinghouse.reconciliation.api.views.DiscrepancyViewSet": "discrepancy queue",
    "clearinghouse.reconciliation.views.QueueView": "discrepancy queue",
    "clearinghouse.reconciliation.views.DetailView": "discrepancy queue",
    "partners.webhooks.api.WebhookDeliveryViewSet": "delivery log",
    "partners.webhooks.views.DeliveryDetailView": "delivery log",
}
# Views that show no counterpart data, and why.
OWN_VIEWS = {
    "partners.views.DashboardView": "counts and the partner's own cards, no record or customer",
    "partners.views.RegisterView": "a registration form",
    "partners.views.ActivityView": "the partner's own audit trail",
    "partners.views.StaffListView": "the partner's own staff",
    "partners.views.StaffInviteView": "the partner's own staff",
    "partners.views.MembershipUpdateView": "the partner's own staff",
    "partners.views.InvitationRevokeView": "the partner's own staff",
    "partners.views.InvitationAcceptView": "an invitation to the partner",
    "partners.views.CredentialListView": "the partner's own API keys",
    "partners.views.CredentialCreateView": "the partner's own API keys",
    "partners.views.CredentialRevokeView": "the partner's own API keys",
    "partners.views.SignInView": "staff sign-in",
    "partners.views.PasswordResetView": "staff password reset",
    "partners.agreements.views.AgreementListView": "agreements: the clauses both parties signed",
    "partners.agreements.views.AgreementProposeView": "agreements: the clauses both parties signed",
    "partners.agreements.views.AgreementDetailView": "agreements: the clauses both parties signed",
    "partners.agreements.views.AgreementDiffView": "agreements: the clauses both parties signed",
    "partners.agreements.views.AgreementActionView": "agreements: the clauses both parties signed",
    "partners.webhooks.views.WebhookListView": "endpoints, and deliveries by type and answer only",
    "partners.webhooks.views.WebhookCreateView": "the partner's own endpoints",
    "partners.webhooks.views.WebhookDetailView": "an endpoint, its deliveries by type and answer",
    "partners.webhooks.views.WebhookActionView": "the partner's own endpoints",
    "partners.webhooks.views.DeliveryRedeliverView": "a redirect; the data goes when it is sent",
    "clearinghouse.records.views.UploadView": "the partner's own upload",
    "clearinghouse.records.views.UploadStatusView": "the partner's own upload",
    "clearinghouse.records.views.UploadErrorsView": "the partner's own rows that were refused",
    "clearinghouse.reconciliation.views.RunsView": "run counts of the partner's own pairs",
    "clearinghouse.reconciliation.views.WarrantyTermsView": "the manufacturer's own terms",
    "clearinghouse.reconciliation.views.WarrantyTermsDeleteView": "the manufacturer's own terms",
    "telemetry.views.FleetView": "the manufacturer's own devices",
    "telemetry.views.DeviceView": "the manufacturer's own device and readings",
    "telemetry.views.SignalsView": "the manufacturer's own signals",
    "telemetry.views.SignalActionView": "the manufacturer's own signals",
    "telemetry.views.RulesView": "the manufacturer's own rules",
    "telemetry.views.RuleActiveView": "the manufacturer's own rules",
    "telemetry.views.PromptDecideView": "the customer answers their own prompt",
    "consent.views.NoticesView": "the partner's own Art. 19 notices: an id and a date",
    "consent.views.NoticeConfirmView": "the partner's own Art. 19 notices",
    "consent.dashboard.views.SignInView": "the customer's own dashboard",
    "consent.dashboard.views.link_sent": "the customer's own dashboard",
    "consent.dashboard.views.MagicLinkView": "the customer's own dashboard",
    "consent.dashboard.views.SignOutView": "the customer's own dashboard",
    "consent.dashboard.views.OverviewView": "the customer's own dashboard",
    "consent.dashboard.views.ConsentsView": "the customer's own dashboard",
    "consent.dashboard.views.ReceiptDownloadView": "the customer's own receipts",
    "consent.dashboard.views.AccessLogView": "the customer's own access log",
    "consent.dashboard.views.ExportView": "the customer's own data",
    "consent.dashboard.views.EraseView": "the customer's own erasure",
    "consent.dashboard.views.receipt_keys": "public keys",
    "partners.api.views.PartnerMeView": "the partner itself",
    "partners.api.views.CredentialViewSet": "the partner's own API keys",
    "partners.agreements.api.AgreementViewSet": "agreements: the clauses both parties signed",
    "partners.webhooks.api.WebhookEndpointViewSet": "the partner's own endpoints",
    "consent.api.views.ConsentStatusView": "whether a customer the partner names consented to it",
    "consent.api.views.CatalogueView": "the purposes and categories",
    "consent.api.views.ConsentViewSet": "consents given to the partner itself",
    "consent.api.notices.NoticeViewSet": "the partner's own Art. 19 notices: an id and a date",
    "clearinghouse.reconciliation.api.views.RunViewSet": "run counts of the partner's own pairs",
    "clearinghouse.reconciliation.api.views.WarrantyTermsListView": "a manufacturer's own terms",
    "clearinghouse.reconciliation.api.views.WarrantyTermsDetailView": "a manufacturer's own terms",
    "telemetry.api.views.ReadingsView": "the manufacturer's own readings",
    "telemetry.api.views.DevicesView": "the manufacturer's own devices",
    "telemetry.api.views.DeviceDetailView": "the manufacturer's own device",
    "telemetry.api.views.RulesView": "the manufacturer's own rules",
    "telemetry.api.views.RuleActiveView": "the manufacturer's own rules",
    "telemetry.api.views.SignalsView": "the manufacturer's own signals",
    "telemetry.api.views.SignalDetailView": "the manufacturer's own signals",
    "telemetry.api.views.SignalActionView": "the manufacturer's own signals",
    "clearinghouse.views.api_not_found": "a 404 problem",
    "clearinghouse.views.home": "the front page",
    "clearinghouse.views.favicon": "an icon",
    "clearinghouse.views.healthz": "whether the service is up",
    "drf_spectacular.views.SpectacularAPIView": "the OpenAPI schema",
    "drf_spectacular.views.SpectacularSwaggerSplitView": "the API's documentation",
    "django.views.generic.base.RedirectView": "a redirect",
}
# Django's own account views (staff password change and reset).
FRAMEWORK = ("django.contrib.auth.views.",)
# The operator's admin: not a partner's path (the operator runs the clearinghouse).
OPERATOR = "admin/"

GATED_EVENTS = {
    WebhookEventType.RECORD_SHARED.value: "record webhooks",
    WebhookEventType.DISCREPANCY_OPENED.value: "discrepancy queue",
    WebhookEventType.DISCREPANCY_UPDATED.value: "discrepancy queue",
    WebhookEventType.SERVICE_SIGNAL.value: "service prompts",
}
OWN_EVENTS = {
    WebhookEventType.CONSENT_REVOKED.value: "the partner's own Art. 19 notice: an id and a date",
    WebhookEventType.CUSTOMER_ERASED.value: "the partner's own Art. 19 notice: an id and a date",
    WEBHOOK_PING: "the endpoint's own test event",
}


def _views(resolver=None):
    """(route, dotted view name) of every URL pattern, walked from the root URL conf."""
    for pattern in (resolver or get_resolver()).url_patterns:
        if isinstance(pattern, URLResolver):
            for route, view in _views(pattern):
                yield str(pattern.pattern) + route, view
        elif isinstance(pattern, URLPattern):
            callback = pattern.callback
            view = getattr(callback, "view_class", None) or getattr(callback, "cls", None)
            view = view or callback
            yield str(pattern.pattern), f"{view.__module__}.{view.__qualname__}"


def test_every_route_is_accounted_for():
    found = {
        view: route
        for route, view in _views()
        if not view.startswith(FRAMEWORK) and not route.startswith(OPERATOR)
    }
    unknown = sorted(
        f"{route} → {view}" for view, route in found.items() if view not in GATED_VIEWS | OWN_VIEWS
    )
    assert not unknown, (
        "Routes the gate test does not know. A route that can show a counterpart's data needs "
        "a check in tests/test_gate.py (GATED_VIEWS); one that cannot says why (OWN_VIEWS):\n"
        + "\n".join(unknown)
    )
    stale = sorted((set(GATED_VIEWS) | set(OWN_VIEWS)) - set(found))
    assert not stale, f"No route serves these any more: {stale}"
    assert not set(GATED_VIEWS) & set(OWN_VIEWS)


def test_every_event_type_is_accounted_for():
    types = set(WebhookEventType.values) | {WEBHOOK_PING}
    assert set(payloads.registered()) == types, "every event type has one payload builder"
    assert set(GATED_EVENTS) | set(OWN_EVENTS) == types, (
        "A new event type needs a check in tests/test_gate.py (GATED_EVENTS) or a reason why "
        "it carries no counterpart data (OWN_EVENTS)"
    )
    assert not set(GATED_EVENTS) & set(OWN_EVENTS)


# --- reading through every gated path -----------------------------------------------------------


def _refs_in(data):
    """The record refs a webhook's data shows."""
    if not data:
        return []
    items = [*data.get("records", []), *data.get("evidence", [])]
    refs = [item["ref"] for item in items]
    if data.get("service_request"):
        refs.append(data["service_request"])
    return refs


class GateReader(Reader):
    """``Reader`` (records list, details, timelines, portal pages) and the other gated paths."""

    def __init__(self, ctx, oracle, viewer, ran):
        super().__init__(ctx, oracle, viewer)
        self.ran = ran
        self.hooks = ctx.hooks[viewer]

    def shared(self):
        return {ref for ref, seen in self.oracle.visible(self.viewer).items() if not seen["own"]}

    def check_item(self, item, where):
        super().check_item(item, where)
        self.ran.add("records list" if "/records?" in where else "record detail")

    def check_unit(self, serial):
        super().check_unit(serial)
        self.ran.add("unit timeline")

    def check_customer(self, index, how):
        super().check_customer(index, how)
        self.ran.add("customer timeline")

    def check_subject(self, subject, api=True):
        super().check_subject(subject, api)
        self.ran.add("customer page")

    def check_search(self, serial):
        """The portal lists a unit only when it is shown the product of one of its records,
        counting only those; the counterpart customers behind it are logged."""
        visible = self.oracle.visible(self.viewer)
        shown = [
            ref
            for ref, seen in visible.items()
            if self.oracle.records[ref].serial == serial and "product" in seen
        ]
        with self.audited(f"search {serial}"):
            html = self.get(self.portal, f"/portal/records/?q={serial}").content.decode()
            self.expected_log += self.oracle.logged(self.viewer, shown)
        link = f"/portal/units/{GTIN}/{serial}/"
        assert (link in html) == bool(shown), f"{self.name} searching {serial}: {shown}"
        if shown:
            assert f"<td>{len(shown)}</td>" in html, f"{self.name}: events of unit {serial}"
        self.ran.add("unit search")

    def check_record_data(self, item, where):
        """A record inside a webhook's data: exactly the oracle's projection (and the label of
        its kind)."""
        self.check_item({k: v for k, v in item.items() if k not in ("role", "kind_label")}, where)

    def check_record_webhooks(self):
        """Each ``record.shared`` event, built now, shows the oracle's projection of the
        records it names that the partner may still see; together they show every record
        shared with it; each build is logged."""
        seen = set()
        events = WebhookEvent.objects.for_partner(self.partner).filter(
            event_type=WebhookEventType.RECORD_SHARED
        )
        with self.audited("record.shared"):
            for event in events:
                data = webhooks.event_data(event, channel="webhook")
                if data is None:
                    continue
                data = webhooks.jsonable(data)
                for item in data["records"]:
                    self.check_record_data(item, f"record.shared {event.pk}")
                refs = _refs_in(data)
                seen.update(refs)
                self.expected_log += self.oracle.logged(self.viewer, refs)
        assert seen == self.shared(), f"record.shared to {self.name}"
        self.ran.add("record webhooks")

    def check_finding(self, item, evidence, where):
        """A finding the partner is shown rests only on records it may see, each shown as the
        oracle projects it, and shows a figure only where the field it comes from is shared."""
        visible = self.oracle.visible(self.viewer)
        roles = {}
        for shown in evidence:
            assert shown["ref"] in visible, f"{where}: {self.name} shown evidence it may not see"
            expected = visible[shown["ref"]]
            for key in ("kind", "own", "recorded_by", "payload"):
                assert shown[key] == expected[key], f"{where}: evidence {key}"
            assert shown.get("product") == expected.get("product"), f"{where}: evidence product"
            roles[shown["role"]] = expected
        products = [e.get("product") for e in roles.values() if e.get("product")]
        assert item["product"] is None or item["product"] in products, f"{where}: product"
        for key, (candidates, field) in DETAIL_SOURCES.get(item["kind"], {}).items():
            role = next((r for r in candidates if r in roles), None)
            # A figure from a record that has no such field is null, and shows nothing.
            if item["detail"].get(key) is not None and role is not None:
                expected = roles[role]
                assert expected["own"] or field in expected["payload"], (
                    f"{where}: {self.name} shown {key}, from {field} it is not shared"
                )

    def _party_findings(self):
        side = "manufacturer" if world_of.is_maker(self.viewer) else "retailer"
        return Discrepancy.objects.unscoped("the test's own oracle").filter(**{side: self.partner})

    def check_discrepancies(self):
        """The queue (API list and detail, portal queue and detail) and the discrepancy
        webhooks: a finding is shown only while every record it rests on is visible, and then
        as ``check_finding`` says."""
        visible = self.oracle.visible(self.viewer)
        evidence_of, customer_of = {}, {}
        for d_id, ref in DiscrepancyEvidence.objects.values_list("discrepancy_id", "record__ref"):
            evidence_of.setdefault(str(d_id), set()).add(str(ref))
        for d_id, customer in self._party_findings().values_list("pk", "customer_id"):
            customer_of[str(d_id)] = customer

        def queue_read(ids):
            """Access-log rows a page of the queue writes: one per customer of a finding that
            rests on a counterpart's record."""
            return len(
                {
                    customer_of[d_id]
                    for d_id in ids
                    if customer_of[d_id] is not None
                    and any(
                        self.oracle.records[ref].submitter != self.viewer
                        for ref in evidence_of.get(d_id, ())
                    )
                }
            )

        listed = []
        with self.audited("discrepancy queue"):
            url = "/api/v1/discrepancies?status=open&page_size=50"
            while url:
                body = self.get(self.api, url).json()
                page = [item["id"] for item in body["results"]]
                listed += page
                self.expected_log += queue_read(page)
                url = body["next"]
        for discrepancy in self._party_findings().filter(status="open"):
            rests_on = evidence_of.get(str(discrepancy.pk), set())
            if not rests_on <= set(visible):
                assert str(discrepancy.pk) not in listed, (
                    f"{self.name} shown {discrepancy.kind}, resting on a record it may not see"
                )
            elif discrepancy.kind != "sale_without_registration":
                assert str(discrepancy.pk) in listed, f"{self.name} not shown {discrepancy.kind}"
        for d_id in listed:
            url = f"/api/v1/discrepancies/{d_id}"
            with self.audited(url):
                item = self.get(self.api, url).json()
                self.check_finding(item, item["evidence"], url)
                self.expected_log += self.oracle.logged(
                    self.viewer, [e["ref"] for e in item["evidence"]]
                )
            page = f"/portal/discrepancies/{d_id}/"
            with self.audited(page):
                self.get(self.portal, page)
                self.expected_log += self.oracle.logged(
                    self.viewer, [e["ref"] for e in item["evidence"]]
                )
        with self.audited("portal queue"):
            self.get(self.portal, "/portal/discrepancies/?status=open")
            self.expected_log += queue_read(listed[:50])
        events = WebhookEvent.objects.for_partner(self.partner).filter(
            event_type__startswith="discrepancy."
        )
        with self.audited("discrepancy webhooks"):
            for event in events:
                data = webhooks.event_data(event, channel="webhook")
                shown = event.subject["discrepancy"] in listed
                assert (data is not None) == shown, f"discrepancy webhook to {self.name}"
                if data is not None:
                    data = webhooks.jsonable(data)
                    evidence = [
                        {
                            **e,
                            "product": visible[e["ref"]].get("product"),
                            "payload": visible[e["ref"]]["payload"],
                            "own": visible[e["ref"]]["own"],
                        }
                        if e["ref"] in visible
                        else e
                        for e in data["evidence"]
                    ]
                    for e in data["evidence"]:
                        assert set(e) <= {"ref", "kind", "role", "occurred_at", "recorded_by"}
                    self.check_finding(data, evidence, f"webhook {event.pk}")
                    self.expected_log += self.oracle.logged(self.viewer, _refs_in(data))
        self.ran.add("discrepancy queue")

    def check_service_prompts(self, signals):
        """A retailer told of an accepted service prompt reads the service request through the
        gate: its fields as the clause shares them, nothing once it may not see it."""
        visible = self.oracle.visible(self.viewer)
        with self.audited("service.signal"):
            for signal, ref in signals.get(self.viewer, ()):
                event = WebhookEvent(
                    partner=self.partner,
                    event_type=WebhookEventType.SERVICE_SIGNAL,
                    subject={"signal": str(signal)},
                )
                data = webhooks.event_data(event, channel="webhook")
                expected = visible.get(ref)
                assert (data is None) == (expected is None), f"service.signal to {self.name}"
                if data is None:
                    continue
                assert data["service_request"] == ref
                assert data["product"] == expected.get("product")
                assert data["customer"] == expected.get("customer")
                assert data["issue"] == expected["payload"].get("issue")
                self.expected_log += self.oracle.logged(self.viewer, [ref])
        self.ran.add("service prompts")

    def check_delivery_log(self):
        """The delivery log builds each event's data now, like an attempt: the API's list and
        details, and the portal's delivery page."""
        visible = self.oracle.visible(self.viewer)
        deliveries = []
        with self.audited("delivery log"):
            url = "/api/v1/webhook-deliveries"
            while url:
                body = self.get(self.api, url).json()
                for delivery in body["results"]:
                    data = delivery["event"]["data"]
                    refs = _refs_in(data)
                    assert set(refs) <= set(visible), f"{self.name}'s delivery log"
                    for item in (data or {}).get("records", []):
                        self.check_record_data(item, f"delivery {delivery['id']}")
                    self.expected_log += self.oracle.logged(self.viewer, refs)
                    deliveries.append((delivery["id"], refs))
                url = body["next"]
        for delivery_id, refs in deliveries[:3]:
            with self.audited("delivery detail"):
                self.get(self.api, f"/api/v1/webhook-deliveries/{delivery_id}")
                self.get(self.portal, f"/portal/webhooks/deliveries/{delivery_id}/")
                self.expected_log += 2 * self.oracle.logged(self.viewer, refs)
        self.ran.add("delivery log")

    def check_gated(self, signals):
        self.check_everything()  # the records list, details, timelines and portal pages
        for serial in SERIALS:
            self.check_search(serial)
        self.check_record_webhooks()
        self.check_discrepancies()
        self.check_service_prompts(signals)
        self.check_delivery_log()


def announce(ctx, oracle):
    """What the product does after the world's ingests and a reconciliation: announce each
    partner's records to the counterparts that listen, open findings, announce them."""
    for p, partner in enumerate(ctx.partners):
        refs = [ref for ref, rec in oracle.records.items() if rec.submitter == p]
        if refs:
            records_announce(submitter=partner, refs=refs)
    for m, r in itertools.product(world_of.MAKERS, world_of.SHOPS):
        run = reconcile_pair(manufacturer=ctx.partners[m], retailer=ctx.partners[r], full=True)
        opened = run.pending_opened or list(
            Discrepancy.objects.unscoped("the test's own oracle")
            .filter(manufacturer=ctx.partners[m], retailer=ctx.partners[r])
            .values_list("pk", flat=True)
        )
        if opened:
            discrepancies_opened([str(pk) for pk in opened])


def prompts(ctx, oracle):
    """An accepted service prompt, told to each retailer, for every service request a
    manufacturer recorded: {retailer: [(signal id, the request's ref)]}."""
    told = {}
    now = timezone.now()
    for ref, rec in oracle.records.items():
        if rec.kind != "service_request" or not world_of.is_maker(rec.submitter):
            continue
        maker = ctx.partners[rec.submitter]
        device, _ = Device.objects.unscoped("test setup").get_or_create(
            manufacturer=maker, serial=rec.serial, defaults={"gtin": GTIN, "model_name": "M"}
        )
        for shop in world_of.SHOPS:  # a rule each: one live signal per device and rule
            rule = ServiceRule.objects.create(
                manufacturer=maker, model_name="M", name="r", issue="x", conditions=[]
            )
            signal = ServiceSignal.objects.create(device=device, rule=rule, service_request_ref=ref)
            if rec.tombstoned:
                continue  # its customer's prompt went with the erasure
            CustomerPrompt.objects.create(
                customer_id=rec.subject,
                signal=signal,
                retailer=ctx.partners[shop],
                text="check?",
                status=CustomerPrompt.Status.ACCEPTED,
                decided_at=now,
            )
            told.setdefault(shop, []).append((signal.pk, ref))
    return told


class _Rollback(Exception):
    pass


def test_every_gated_path_shows_exactly_what_the_rules_allow(
    make_partner, issue_key, api, operator
):
    scopes = [
        Scope.RECORDS_READ,
        Scope.RECORDS_WRITE,
        Scope.DISCREPANCIES_READ,
        Scope.WEBHOOKS_MANAGE,
    ]
    ctx = world_of.make_context(make_partner, issue_key, api, operator, scopes)
    ctx.hooks = [  # every partner listens to every event type
        webhooks.endpoint_create(
            partner=partner,
            url=f"https://{partner.slug}.example.org/hooks",
            event_types=list(WebhookEventType.values),
            actor=admin,
        )
        for partner, admin in zip(ctx.partners, ctx.admins, strict=True)
    ]
    ran, stats = set(), {"examples": 0, "withdrawals": 0, "shared": 0}

    @settings(
        max_examples=8,
        deadline=None,
        database=None,
        # A failure names the record and the path; shrinking a world of this size takes longer
        # than reading the message.
        phases=[Phase.explicit, Phase.reuse, Phase.generate],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(world=world_of.worlds(), data=st.data())
    def check(world, data):
        stats["examples"] += 1
        try:
            with transaction.atomic():
                oracle = Builder(ctx, world).build()
                announce(ctx, oracle)
                signals = prompts(ctx, oracle)
                readers = {v: GateReader(ctx, oracle, v, ran) for v in range(len(NAMES))}
                for reader in readers.values():
                    reader.check_gated(signals)
                    stats["shared"] += len(reader.shared())
                withdraw_and_read_again(oracle, readers, signals, data, stats)
                raise _Rollback
        except _Rollback:
            pass

    with override_settings(API_RATE_LIMIT_PER_MINUTE=10**9):
        check()
    # Every gated path was read, with something shared, and a withdrawal was tried.
    assert set(GATED_VIEWS.values()) | set(GATED_EVENTS.values()) <= ran, ran
    assert stats["shared"] and stats["withdrawals"], stats


def withdraw_and_read_again(oracle, readers, signals, data, stats):
    """End every consent behind one shared record: on the very next read no gated path shows
    it any more (webhooks built now included)."""
    candidates = sorted(
        (viewer, ref) for viewer, reader in readers.items() for ref in reader.shared()
    )
    if not candidates:
        return
    stats["withdrawals"] += 1
    viewer, ref = data.draw(st.sampled_from(candidates), label="shared record")
    reader, rec = readers[viewer], oracle.records[ref]
    for purpose in oracle.view(viewer, rec)["shared_for"]:
        world_of.end_consent(oracle, reader, rec, purpose, "revoke")
    assert ref not in reader.shared()
    reader.check_detail(ref)  # the very next read: a 404
    assert ref not in reader.check_list()
    reader.check_unit(rec.serial)
    reader.check_search(rec.serial)
    reader.check_record_webhooks()
    reader.check_discrepancies()
    reader.check_service_prompts(signals)
    reader.check_delivery_log()

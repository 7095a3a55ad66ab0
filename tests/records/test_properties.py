"""Property-based test of THE visibility decision, through every path that shows records.

Hypothesis generates a world of two manufacturers and two retailers: sharing agreements whose
versions are countersigned or left pending, then suspended, resumed, terminated or renewed;
customers' consent grants (open-ended, expiring later, expired, revoked, superseded) and erasures;
records of three kinds, before the erasures and after them. The world is built through the real
services and the records API, and what every partner reads — the records list (every cursor
page), every record's detail, the unit and customer timelines, the portal's unit and customer
pages — is compared with a plain-Python oracle of DESIGN.md's invariants 1, 2, 3 and 7 (the oracle
never asks ``visibility.py``): the same records, the same projection, no customer identifier or
counterpart id anywhere, one access-log row per request and customer shown. Then the consent
behind one shared record is revoked (or lapses), and the very next read must no longer show what
it shared; last, the operator may suspend a partner, whose records must vanish from the very next
read of its counterparts.

Each example runs in a savepoint that is rolled back; the partners, their keys and their staff's
portal sessions (made once per test) are all that examples share.
"""

import hashlib
import itertools
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import orjson
from django.db import transaction
from django.test import Client, override_settings
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clearinghouse.records.models import InteractionRecord
from clearinghouse.records.services import records_ingest
from consent import identity
from consent import services as consent_services
from consent.catalogue import PURPOSES as CONSENT_PURPOSES
from consent.models import AccessLogEntry, ConsentGrant, Customer
from consent.selectors import customer_by_identifier
from partners import services as partner_services
from partners.agreements.services import (
    agreement_countersign,
    agreement_propose,
    agreement_resume,
    agreement_suspend,
    agreement_terminate,
)
from partners.models import Partner, Scope
from tests.partners.test_api import assert_problem

# --- the space the worlds are drawn from ----------------------------------------------------------

GTIN = "04012345678901"
SERIALS = ("U1", "U2", "U3")
EMAILS = tuple(f"prop.customer{i}@example.net" for i in range(4))
EMAIL_SHA256 = tuple(hashlib.sha256(e.encode()).hexdigest() for e in EMAILS)
NAMES = ("Maker Alpha", "Maker Beta", "Shop Gamma", "Shop Delta")
MAKERS, SHOPS = (0, 1), (2, 3)
PAIRS = tuple((m, r) for m in MAKERS for r in SHOPS)
M2R, R2M = "manufacturer_to_retailer", "retailer_to_manufacturer"
PURPOSE_KEYS = ("warranty", "service")
CONSENT_CATEGORIES = ("identity", "purchase", "warranty", "service")
# The rule's data category of each kind, written down here rather than read from the catalogue.
CATEGORY = {"sale": "purchase", "warranty_registration": "warranty", "service_request": "service"}
KIND_KEYS = tuple(CATEGORY)
REQUIRED = {
    "sale": {"price_cents": 49900},
    "warranty_registration": {"warranty_months": 24},
    "service_request": {"issue": "x"},
}
OPTIONAL = {
    "sale": {"currency": "EUR", "channel": "store", "store": "Main Street"},
    "warranty_registration": {"purchase_date": "2025-03-01", "registered_via": "app"},
    "service_request": {"status": "open", "proactive": True, "reference": "case-7"},
}
ENDS = ("none",) * 5 + ("absent", "suspend", "suspend_resume", "terminate", "renew")
FATES = ("open", "open", "later", "expired", "revoked")
PAGE = 5
# The API's RecordSerializer declares ``product`` and ``customer`` with allow_null=True, so a field
# that the clause does not share (and that ``visibility.project`` leaves out) comes back as null
# instead of missing. Null shows nothing, so it is accepted; an unshared value never is.
UNSHARED_AS_NULL = set()  # the API leaves unshared fields out
LINKS = ("next", "previous")


def is_maker(index):
    return index in MAKERS


def shareable(kind):
    return ("product", "customer", *REQUIRED[kind], *OPTIONAL[kind])


@dataclass(frozen=True)
class Clause:
    kind: str
    purpose: str
    direction: str
    fields: frozenset

    def as_dict(self):
        return {
            "kind": self.kind,
            "purpose": self.purpose,
            "direction": self.direction,
            "fields": sorted(self.fields),
        }


@dataclass(frozen=True)
class Plan:
    """One pair's agreement: proposals in order (clauses, proposer side, countersigned?), then
    how it ends."""

    proposals: tuple
    end: str
    renewal: frozenset
    ended_by_maker: bool


@dataclass(frozen=True)
class RecordSpec:
    kind: str
    customer: int
    serial: int
    day: int
    optional: frozenset
    form: str  # how the partner names the customer: "raw", "upper" or "sha256"


@dataclass(frozen=True)
class GrantSpec:
    customer: int
    grantee: int
    purpose: str
    categories: tuple | None  # None: the purpose's default categories
    fate: str  # open | later (expires in a month) | expired | revoked
    supersedes: bool  # first grant something else, then this (which ends the first)


@dataclass(frozen=True)
class World:
    agreements: dict  # (maker, shop) -> Plan
    records: tuple  # per partner, a tuple of RecordSpec
    grants: tuple
    erased: frozenset  # customer indexes
    late: tuple  # (partner, RecordSpec) ingested after the erasures
    suspend: bool  # at the end, the operator suspends a partner (one that shares, if any)


@st.composite
def clauses(draw):
    def clause(key):
        kind, purpose, direction = key
        fields = draw(st.sets(st.sampled_from(shareable(kind)), min_size=1))
        return Clause(kind, purpose, direction, frozenset(fields))

    keys = draw(
        st.lists(
            st.tuples(
                st.sampled_from(KIND_KEYS),
                st.sampled_from(PURPOSE_KEYS),
                st.sampled_from((M2R, R2M)),
            ),
            min_size=1,
            max_size=4,
            unique=True,
        )
    )
    return frozenset(clause(key) for key in keys)


sides = st.sampled_from(("maker", "shop"))
plans = st.builds(
    Plan,
    # Versions proposed in turn, most of them countersigned, and often one more proposal left
    # pending at the end.
    proposals=st.builds(
        lambda signed, pending: (*signed, *pending),
        st.lists(
            st.tuples(clauses(), sides, st.sampled_from((True, True, False))),
            min_size=1,
            max_size=2,
        ),
        st.lists(st.tuples(clauses(), sides, st.just(False)), max_size=1),
    ),
    end=st.sampled_from(ENDS),
    renewal=clauses(),
    ended_by_maker=st.booleans(),
)


@st.composite
def record_specs(draw, kinds=KIND_KEYS):
    kind = draw(st.sampled_from(kinds))
    return RecordSpec(
        kind=kind,
        customer=draw(st.integers(0, len(EMAILS) - 1)),
        serial=draw(st.integers(0, len(SERIALS) - 1)),
        day=draw(st.integers(1, 4)),
        optional=frozenset(draw(st.sets(st.sampled_from(tuple(OPTIONAL[kind]))))),
        form=draw(st.sampled_from(("raw", "upper", "sha256"))),
    )


categories = st.none() | st.sets(st.sampled_from(CONSENT_CATEGORIES), min_size=1).map(
    lambda s: tuple(sorted(s))
)
grant_specs = st.builds(
    GrantSpec,
    customer=st.integers(0, len(EMAILS) - 1),
    grantee=st.integers(0, len(NAMES) - 1),
    purpose=st.sampled_from(PURPOSE_KEYS),
    categories=categories,
    fate=st.sampled_from(FATES),
    supersedes=st.booleans(),
)


@st.composite
def worlds(draw):
    """A world in which sharing, and near misses, are likely: records are often of a kind that
    their submitter's agreements name (in any version, in either direction), and grants often
    name a customer of a record, a partner with an agreement with its submitter, and a purpose
    (besides records and grants drawn from the whole space)."""
    agreements = draw(st.fixed_dictionaries({pair: plans for pair in PAIRS}))
    named = {p: set() for p in range(len(NAMES))}  # kinds named by p's agreements
    partners_of = {p: set() for p in range(len(NAMES))}
    for (m, r), plan in agreements.items():
        if plan.end == "absent":
            continue
        mentioned = {c for clause_set, _, _ in plan.proposals for c in clause_set}
        if plan.end == "renew":
            mentioned |= plan.renewal
        for clause in mentioned:
            named[m].add(clause.kind)
            named[r].add(clause.kind)
            partners_of[m].add(r)
            partners_of[r].add(m)
    records = []
    for p in range(len(NAMES)):
        kinds = sorted(named[p])
        specs = record_specs(kinds) | record_specs() if kinds else record_specs()
        records.append(tuple(draw(st.lists(specs, min_size=1, max_size=4))))
    near = sorted(
        {
            (spec.customer, other, purpose, spec.kind)
            for p, specs in enumerate(records)
            for spec in specs
            for other in partners_of[p]
            for purpose in PURPOSE_KEYS
        }
    )
    grants = []
    for customer, grantee, purpose, kind in near:
        if not draw(st.sampled_from((True, True, False))):
            continue
        chosen = draw(categories)
        if chosen is not None and draw(st.integers(0, 2)):
            chosen = tuple(sorted({*chosen, CATEGORY[kind]}))
        grants.append(
            GrantSpec(
                customer=customer,
                grantee=grantee,
                purpose=purpose,
                categories=chosen,
                fate=draw(st.sampled_from(FATES)),
                supersedes=draw(st.booleans()),
            )
        )
    grants += draw(st.lists(grant_specs, max_size=6))
    unique = {}
    for grant in grants:
        unique.setdefault((grant.customer, grant.grantee, grant.purpose), grant)
    return World(
        agreements=agreements,
        records=tuple(records),
        grants=tuple(unique.values()),
        erased=draw(st.frozensets(st.integers(0, len(EMAILS) - 1), max_size=2)),
        late=tuple(
            draw(st.lists(st.tuples(st.integers(0, len(NAMES) - 1), record_specs()), max_size=3))
        ),
        suspend=draw(st.sampled_from((True, True, True, False))),
    )


def applied(plan):
    """The proposals that the services accept: one that repeats the clauses in force or the
    pending ones is refused (and skipped here)."""
    active = pending = None
    out = []
    for clause_set, side, signed in plan.proposals:
        if clause_set in (active, pending):
            continue
        out.append((clause_set, side, signed))
        active, pending = (clause_set, None) if signed else (active, clause_set)
    return out


def in_force(plan):
    """The clauses of the pair's active version while the agreement is in force, else None."""
    if plan.end == "absent":
        return None
    if plan.end == "renew":
        return plan.renewal
    signed = [clause_set for clause_set, _, was_signed in applied(plan) if was_signed]
    if plan.end in ("suspend", "terminate") or not signed:
        return None
    return signed[-1]


def occurred(day):
    return datetime(2025, 3, day, 12, 0, tzinfo=UTC)


# --- the oracle -----------------------------------------------------------------------------------


@dataclass
class Rec:
    ref: str
    submitter: int
    external_id: str
    kind: str
    email: int
    subject: object  # the customer's UUID
    serial: str
    occurred_at: datetime
    payload: dict
    tombstoned: bool = False
    id: int = 0
    received_at: datetime | None = None

    def __str__(self):
        erased = " (customer erased)" if self.tombstoned else ""
        return (
            f"{self.kind} {self.external_id} by {NAMES[self.submitter]} for customer "
            f"{self.email}{erased}, unit {self.serial}"
        )


@dataclass
class Oracle:
    """What the rules say each partner sees, from the world's description alone."""

    partner_refs: list
    clauses: dict = field(default_factory=dict)  # (maker, shop) -> clauses in force
    records: dict = field(default_factory=dict)  # ref -> Rec
    grants: dict = field(default_factory=dict)  # (subject, grantee, purpose) -> categories (live)
    live_subject: dict = field(default_factory=dict)  # email index -> live customer UUID or None
    erased_subjects: set = field(default_factory=set)
    suspended: int | None = None

    def view(self, viewer, rec):
        """The record as ``viewer`` should read it through the API, or None when hidden."""
        if rec.submitter == viewer:
            return {
                "ref": rec.ref,
                "kind": rec.kind,
                "recorded_by": self.partner_refs[rec.submitter],
                "own": True,
                "external_id": rec.external_id,
                "product": {"gtin": GTIN, "serial": rec.serial},
                "customer": None if rec.tombstoned else str(rec.subject),
                "payload": {} if rec.tombstoned else rec.payload,
                "erased": rec.tombstoned,
                "shared_for": [],
            }
        if self.suspended in (viewer, rec.submitter) or rec.tombstoned:
            return None
        if is_maker(viewer) == is_maker(rec.submitter):
            return None  # two manufacturers (or two retailers) never share
        pair = (rec.submitter, viewer) if is_maker(rec.submitter) else (viewer, rec.submitter)
        direction = M2R if is_maker(rec.submitter) else R2M
        fields, purposes = set(), set()
        for clause in self.clauses.get(pair) or ():
            if clause.kind != rec.kind or clause.direction != direction:
                continue
            if CATEGORY[rec.kind] in self.grants.get((rec.subject, viewer, clause.purpose), ()):
                fields |= clause.fields
                purposes.add(clause.purpose)
        if not purposes:
            return None
        out = {
            "ref": rec.ref,
            "kind": rec.kind,
            "recorded_by": self.partner_refs[rec.submitter],
            "own": False,
            "payload": {k: v for k, v in rec.payload.items() if k in fields},
            "shared_for": sorted(purposes),
        }
        if "product" in fields:
            out["product"] = {"gtin": GTIN, "serial": rec.serial}
        if "customer" in fields:
            out["customer"] = str(rec.subject)
        return out

    def visible(self, viewer):
        out = {}
        for ref, rec in self.records.items():
            seen = self.view(viewer, rec)
            if seen is not None:
                out[ref] = seen
        return out

    def listed(self, refs):
        """Newest received first (the records list)."""
        recs = [self.records[r] for r in refs]
        return [r.ref for r in sorted(recs, key=lambda r: (r.received_at, r.id), reverse=True)]

    def timeline(self, refs):
        """Oldest first (both timelines)."""
        recs = [self.records[r] for r in refs]
        return [r.ref for r in sorted(recs, key=lambda r: (r.occurred_at, r.id))]

    def logged(self, viewer, refs):
        """Access-log rows one read of these refs writes: one per customer of a shared row."""
        return len({self.records[r].subject for r in refs if self.records[r].submitter != viewer})


# --- building the world through the services and the API ------------------------------------------


class Builder:
    def __init__(self, ctx, world):
        self.ctx = ctx
        self.world = world
        self.oracle = Oracle(partner_refs=ctx.partner_refs)
        self.next_id = itertools.count(1)

    def row(self, spec, external_id):
        email = EMAILS[spec.customer]
        customer = (
            {"kind": "email", "sha256": EMAIL_SHA256[spec.customer]}
            if spec.form == "sha256"
            else {"kind": "email", "value": email.upper() if spec.form == "upper" else email}
        )
        return {
            "external_id": external_id,
            "kind": spec.kind,
            "occurred_at": occurred(spec.day).isoformat(),
            "customer": customer,
            "product": {"gtin": GTIN, "serial": SERIALS[spec.serial]},
            "payload": {
                **REQUIRED[spec.kind],
                **{k: OPTIONAL[spec.kind][k] for k in spec.optional},
            },
        }

    def remember(self, partner, spec, external_id, ref, subject):
        self.oracle.records[ref] = Rec(
            ref=ref,
            submitter=partner,
            external_id=external_id,
            kind=spec.kind,
            email=spec.customer,
            subject=subject,
            serial=SERIALS[spec.serial],
            occurred_at=occurred(spec.day),
            payload={**REQUIRED[spec.kind], **{k: OPTIONAL[spec.kind][k] for k in spec.optional}},
        )

    def build(self):
        ctx, world, oracle = self.ctx, self.world, self.oracle
        partners = ctx.partners
        for (m, r), plan in world.agreements.items():
            oracle.clauses[(m, r)] = in_force(plan)
            if plan.end != "absent":
                self.agree(m, r, plan)
        subjects = {}
        for i, email in enumerate(EMAILS):
            parsed = identity.parse_identifier(kind="email", value=email)
            subjects[i] = consent_services.customer_resolve(identifier=parsed, partner=None).pk
        for p, specs in enumerate(world.records):
            if not specs:
                continue
            ids = [f"XID-{p}-{next(self.next_id):03d}" for _ in specs]
            response = ctx.api[p].post(
                "/api/v1/records",
                orjson.dumps([self.row(s, x) for s, x in zip(specs, ids, strict=True)]),
                content_type="application/json",
            )
            assert response.status_code == 200, response.content
            results = response.json()["results"]
            assert [r["status"] for r in results] == ["created"] * len(specs), results
            for spec, x, result in zip(specs, ids, results, strict=True):
                self.remember(p, spec, x, result["ref"], subjects[spec.customer])
        now = timezone.now()
        for g in world.grants:
            self.grant(g, Customer.objects.get(pk=subjects[g.customer]), now)
        for i in sorted(world.erased):
            consent_services.customer_erase(customer=Customer.objects.get(pk=subjects[i]))
            oracle.erased_subjects.add(subjects[i])
            oracle.grants = {k: v for k, v in oracle.grants.items() if k[0] != subjects[i]}
            for rec in oracle.records.values():
                if rec.subject == subjects[i]:
                    rec.tombstoned = True
        for p, spec in world.late:
            x = f"XID-{p}-{next(self.next_id):03d}"
            [result] = records_ingest(partner=partners[p], rows=[self.row(spec, x)], max_rows=10)
            assert result.status == "created", result.as_dict()
            live = customer_by_identifier(
                identity.parse_identifier(kind="email", value=EMAILS[spec.customer])
            )
            self.remember(p, spec, x, result.ref, live.pk)
        for i, email in enumerate(EMAILS):
            live = customer_by_identifier(identity.parse_identifier(kind="email", value=email))
            oracle.live_subject[i] = live.pk if live else None
            assert (live is None or live.pk != subjects[i]) == (i in world.erased)
        rows = InteractionRecord.objects.unscoped("test setup").filter(ref__in=list(oracle.records))
        for ref, pk, received_at in rows.values_list("ref", "id", "received_at"):
            oracle.records[str(ref)].id, oracle.records[str(ref)].received_at = pk, received_at
        return oracle

    def agree(self, m, r, plan):
        partners, admins = self.ctx.partners, self.ctx.admins
        version, signed_once = None, False
        for clause_set, side, signed in applied(plan):
            proposer, other = (m, r) if side == "maker" else (r, m)
            version = agreement_propose(
                proposer=partners[proposer],
                counterpart=partners[other],
                actor=admins[proposer],
                clauses=[c.as_dict() for c in sorted(clause_set, key=repr)],
            )
            if signed:
                agreement_countersign(version=version, partner=partners[other], actor=admins[other])
                signed_once = True
        agreement = version.agreement
        party = m if plan.ended_by_maker else r
        if plan.end in ("suspend", "suspend_resume") and signed_once:
            agreement_suspend(
                agreement=agreement, partner=partners[party], actor=admins[party], reason="audit"
            )
            if plan.end == "suspend_resume":
                agreement_resume(agreement=agreement, partner=partners[party], actor=admins[party])
        elif plan.end in ("terminate", "renew"):
            agreement_terminate(
                agreement=agreement, partner=partners[party], actor=admins[party], reason="end"
            )
            if plan.end == "renew":
                renewed = agreement_propose(
                    proposer=partners[m],
                    counterpart=partners[r],
                    actor=admins[m],
                    clauses=[c.as_dict() for c in sorted(plan.renewal, key=repr)],
                )
                agreement_countersign(version=renewed, partner=partners[r], actor=admins[r])

    def grant(self, g, customer, now):
        grantee = self.ctx.partners[g.grantee]
        if g.supersedes:
            consent_services.consent_grant(
                customer=customer,
                grantee=grantee,
                purpose=g.purpose,
                source="customer",
                categories=list(CONSENT_CATEGORIES),
                expires_at=now + timedelta(days=400),
            )
        expires_at = {"later": now + timedelta(days=30), "expired": now + timedelta(hours=1)}
        grant = consent_services.consent_grant(
            customer=customer,
            grantee=grantee,
            purpose=g.purpose,
            source="customer",
            categories=list(g.categories) if g.categories else None,
            expires_at=expires_at.get(g.fate),
        )
        if g.fate == "expired":  # what an expired grant looks like at read time
            ConsentGrant.objects.unscoped("test setup").filter(pk=grant.pk).update(
                granted_at=now - timedelta(days=2), expires_at=now - timedelta(days=1)
            )
        elif g.fate == "revoked":
            consent_services.consent_revoke(grant=grant)
        else:
            categories = g.categories or CONSENT_PURPOSES[g.purpose].default_categories
            self.oracle.grants[(customer.pk, g.grantee, g.purpose)] = frozenset(categories)


# --- reading it back through every endpoint ------------------------------------------------------


class Reader:
    """One partner's API client and portal session, checking every answer against the oracle."""

    def __init__(self, ctx, oracle, viewer):
        self.oracle = oracle
        self.viewer = viewer
        self.partner = ctx.partners[viewer]
        self.api = ctx.api[viewer]
        self.portal = ctx.portal[viewer]
        self.expected_log = None

    @property
    def name(self):
        return NAMES[self.viewer]

    @contextmanager
    def audited(self, what):
        """Invariant 7: the reads inside wrote exactly the access-log rows that the oracle
        expects (one per request and customer whose shared records it showed)."""
        if self.expected_log is not None:  # nested: the outer block counts
            yield
            return
        before = AccessLogEntry.objects.filter(partner=self.partner).count()
        self.expected_log = 0
        try:
            yield
            written = AccessLogEntry.objects.filter(partner=self.partner).count() - before
            assert written == self.expected_log, f"{what}: access-log rows for {self.name}"
        finally:
            self.expected_log = None

    def get(self, client, url, status=200):
        """GET ``url``; nothing in the answer names a customer or another partner's ids."""
        response = client.get(url)
        assert response.status_code == status, (url, response.status_code, response.content[:500])
        body = response.content
        if response["Content-Type"] == "application/json":
            # The cursor links repeat the request's own query (say, the SHA-256 it sent).
            data = response.json()
            if isinstance(data, dict) and "next" in data:
                body = orjson.dumps({k: v for k, v in data.items() if k not in LINKS})
        body = body.lower()
        for email, digest in zip(EMAILS, EMAIL_SHA256, strict=True):
            assert email.encode() not in body, f"{self.name} was shown {email} by {url}"
            assert digest.encode() not in body, f"{self.name} was shown {email}'s SHA-256 by {url}"
        for rec in self.oracle.records.values():
            if rec.submitter != self.viewer:
                assert rec.external_id.lower().encode() not in body, (
                    f"{self.name} was shown the external id of {rec} by {url}"
                )
        return response

    def walk(self, url):
        """Every cursor page of a list, each item checked; each page logs one access-log row
        per customer whose shared records it shows."""
        refs, start = [], url
        while url:
            body = self.get(self.api, url).json()
            assert len(body["results"]) <= PAGE
            for item in body["results"]:
                self.check_item(item, url)
                refs.append(item["ref"])
            self.expected_log += self.oracle.logged(
                self.viewer, [item["ref"] for item in body["results"]]
            )
            url = body["next"]
        assert len(refs) == len(set(refs)), f"{start}: a record appears twice"
        return refs

    def check_item(self, item, where):
        rec = self.oracle.records.get(item["ref"])
        assert rec is not None, f"{where}: {self.name} got an unknown record {item}"
        expected = self.oracle.view(self.viewer, rec)
        assert expected is not None, f"{where}: {self.name} was shown {rec}, which the rules hide"
        item = dict(item)
        assert datetime.fromisoformat(item.pop("occurred_at")) == rec.occurred_at
        received = item.pop("received_at", None)
        assert (received is not None) == expected["own"], f"{where}: received_at of {rec}"
        # Unit timelines name matched records; nothing here was reconciled.
        assert item.pop("links", []) == [], f"{where}: links of {rec}, though nothing was matched"
        if not expected["own"]:
            for key in UNSHARED_AS_NULL - set(expected):
                if key in item and item[key] is None:
                    del item[key]
        assert item == expected, f"{where}: {self.name}'s projection of {rec}"

    def check_list(self):
        with self.audited("records list"):
            refs = self.walk(f"/api/v1/records?page_size={PAGE}")
        assert refs == self.oracle.listed(self.oracle.visible(self.viewer)), (
            f"records list of {self.name}"
        )
        return refs

    def check_detail(self, ref):
        """A visible record's detail is its projection, and its read is logged with the
        purposes and category it was shared for; any other record is a problem+json 404."""
        rec = self.oracle.records[ref]
        expected = self.oracle.view(self.viewer, rec)
        url = f"/api/v1/records/{ref}"
        with self.audited(url):
            if expected is None:
                assert_problem(self.get(self.api, url, status=404), 404)
                return
            since = timezone.now()
            self.check_item(self.get(self.api, url).json(), url)
            if expected["own"]:
                return
            self.expected_log += 1
            entry = AccessLogEntry.objects.get(
                partner=self.partner, customer_id=rec.subject, accessed_at__gte=since
            )
            assert (entry.channel, entry.record_count) == ("api", 1), url
            assert entry.purposes == expected["shared_for"], url
            assert entry.categories == [CATEGORY[rec.kind]], url

    def check_unit(self, serial):
        mine = [
            r for r in self.oracle.visible(self.viewer) if self.oracle.records[r].serial == serial
        ]
        with self.audited(f"unit {serial}"):
            refs = self.walk(f"/api/v1/units/{GTIN}/{serial}/timeline?page_size={PAGE}")
            assert refs == self.oracle.timeline(mine), f"unit {serial} timeline of {self.name}"
            self.check_page(f"/portal/units/{GTIN}/{serial}/", mine)

    def check_customer(self, index, how):
        """The customer timeline named by e-mail (raw or SHA-256): the live customer's."""
        live = self.oracle.live_subject[index]
        visible = self.oracle.visible(self.viewer)
        mine = [r for r in visible if live and self.oracle.records[r].subject == live]
        by = {"value": EMAILS[index]} if how == "value" else {"sha256": EMAIL_SHA256[index]}
        query = urlencode({"kind": "email", **by, "page_size": PAGE})
        with self.audited(f"customer {index}"):
            refs = self.walk(f"/api/v1/customers/timeline?{query}")
        assert refs == self.oracle.timeline(mine), f"customer {index} timeline of {self.name}"

    def check_subject(self, subject, api=True):
        """The customer timeline named by the pseudonymous reference: API and portal."""
        visible = self.oracle.visible(self.viewer)
        recs = self.oracle.records
        # A tombstone no longer names its customer: an erased customer's timeline is empty.
        mine = [r for r in visible if recs[r].subject == subject and not recs[r].tombstoned]
        with self.audited(f"customer {subject}"):
            if api:
                query = urlencode({"customer": str(subject), "page_size": PAGE})
                refs = self.walk(f"/api/v1/customers/timeline?{query}")
                assert refs == self.oracle.timeline(mine), f"customer {subject} of {self.name}"
            self.check_page(f"/portal/customers/{subject}/", mine)

    def check_page(self, url, refs):
        """A portal timeline shows exactly these records: count them by who recorded them."""
        response = self.get(self.portal, url)
        self.expected_log += self.oracle.logged(self.viewer, refs)
        html = response.content.decode()
        recs = [self.oracle.records[r] for r in refs]
        own = [r for r in recs if r.submitter == self.viewer]
        assert html.count('class="event event-own"') == len(own), f"{url} for {self.name}"
        assert html.count('class="event event-theirs"') == len(recs) - len(own), url
        for other, name in enumerate(NAMES):
            if other != self.viewer:
                shown = html.count(f"recorded by {name}</span>")
                assert shown == sum(r.submitter == other for r in recs), f"{url}: {name}"
        assert html.count("<dt>Your id</dt>") == len(own), url
        assert html.count(">customer erased</span>") == sum(r.tombstoned for r in own), url

    def check_everything(self):
        self.check_list()
        with self.audited("record details"):
            for ref in self.oracle.records:
                self.check_detail(ref)
        for serial in SERIALS:
            self.check_unit(serial)
        for index in range(len(EMAILS)):
            self.check_customer(index, "value" if (index + self.viewer) % 2 else "sha256")
        # By reference: the API for erased customers (by e-mail they are unknown now), and the
        # portal page of each customer for every other partner (all of them between the four).
        erased = self.oracle.erased_subjects
        subjects = sorted({r.subject for r in self.oracle.records.values()} | erased, key=str)
        for i, subject in enumerate(subjects):
            if subject in erased or (i + self.viewer) % 2:
                self.check_subject(subject, api=subject in erased)

    def check_refused(self):
        """A suspended partner's keys and staff read nothing at all."""
        assert_problem(self.api.get("/api/v1/records"), 403)
        assert self.portal.get(f"/portal/units/{GTIN}/U1/").status_code == 403


def end_consent(oracle, reader, rec, purpose, how):
    """End the viewer's consent for ``purpose`` over ``rec``'s customer, in the app and in the
    oracle."""
    grant = ConsentGrant.objects.unscoped("test setup").get(
        customer_id=rec.subject, grantee=reader.partner, purpose=purpose, revoked_at__isnull=True
    )
    if how == "revoke":
        consent_services.consent_revoke(grant=grant)
    else:  # it lapses: its expiry has just passed
        now = timezone.now()
        ConsentGrant.objects.unscoped("test setup").filter(pk=grant.pk).update(
            granted_at=now - timedelta(days=1), expires_at=now - timedelta(seconds=1)
        )
    del oracle.grants[(rec.subject, reader.viewer, purpose)]


def check_next_read(oracle, readers, data, stats):
    """Invariant 1: a revocation applies to the very next read, on every path."""
    candidates = sorted(
        (viewer, ref)
        for viewer, reader in readers.items()
        for ref, seen in oracle.visible(viewer).items()
        if not seen["own"]
    )
    if not candidates:
        return
    stats["revocations"] += 1
    viewer, ref = data.draw(st.sampled_from(candidates), label="shared record")
    reader, rec = readers[viewer], oracle.records[ref]
    purposes = oracle.view(viewer, rec)["shared_for"]
    first = data.draw(st.sampled_from(purposes), label="purpose")
    how = data.draw(st.sampled_from(("revoke", "revoke", "lapse")), label="how")
    end_consent(oracle, reader, rec, first, how)
    reader.check_detail(ref)  # the very next read
    reader.check_list()
    reader.check_unit(rec.serial)
    reader.check_subject(rec.subject)
    if purposes == [first]:
        assert oracle.view(viewer, rec) is None
    for purpose in purposes:
        if purpose != first:
            end_consent(oracle, reader, rec, purpose, "revoke")
    assert oracle.view(viewer, rec) is None
    reader.check_detail(ref)  # the very next read: a 404
    assert ref not in reader.check_list()
    reader.check_unit(rec.serial)
    reader.check_customer(rec.email, "value")


def check_suspension(ctx, oracle, readers, data):
    """An operator's suspension applies to the next read too: the partner reads nothing, and
    nothing it recorded is shared any more."""
    sharing = sorted(
        {
            oracle.records[ref].submitter
            for viewer in readers
            for ref, seen in oracle.visible(viewer).items()
            if not seen["own"]
        }
    )
    suspended = data.draw(st.sampled_from(sharing or sorted(readers)), label="suspended")
    partner_services.partner_suspend(
        partner=ctx.partners[suspended], actor=ctx.operator, reason="property test"
    )
    oracle.suspended = suspended
    readers[suspended].check_refused()
    for viewer, reader in readers.items():
        if viewer == suspended:
            continue
        reader.check_list()
        with reader.audited("details after a suspension"):
            for ref, rec in oracle.records.items():
                if rec.submitter == suspended:
                    reader.check_detail(ref)


# --- the test -------------------------------------------------------------------------------------


class _Rollback(Exception):
    pass


@dataclass
class Context:
    operator: object
    partners: list
    admins: list
    api: list
    portal: list
    partner_refs: list


def make_context(make_partner, issue_key, api, operator, scopes):
    """The four partners, an admin of each with a portal session, and an API key of each with
    ``scopes``: made once per test, shared by its examples."""
    partners, admins, keys, portals = [], [], [], []
    for i, name in enumerate(NAMES):
        kind = Partner.Kind.MANUFACTURER if is_maker(i) else Partner.Kind.RETAILER
        partner, admin = make_partner(kind=kind, name=name)
        partners.append(partner)
        admins.append(admin)
        keys.append(issue_key(partner, admin, scopes=scopes)[1])
        portal = Client()
        portal.force_login(admin)
        portals.append(portal)
    return Context(
        operator=operator,
        partners=partners,
        admins=admins,
        api=[api(key) for key in keys],
        portal=portals,
        partner_refs=[{"name": p.name, "slug": p.slug, "kind": p.kind} for p in partners],
    )


def test_every_endpoint_shows_exactly_what_the_rules_allow(make_partner, issue_key, api, operator):
    scopes = [Scope.RECORDS_READ, Scope.RECORDS_WRITE]
    ctx = make_context(make_partner, issue_key, api, operator, scopes)
    stats = {"examples": 0, "revocations": 0}

    @settings(
        max_examples=15,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(world=worlds(), data=st.data())
    def check(world, data):
        stats["examples"] += 1
        try:
            with transaction.atomic():
                oracle = Builder(ctx, world).build()
                readers = {v: Reader(ctx, oracle, v) for v in range(len(NAMES))}
                for reader in readers.values():
                    reader.check_everything()
                check_next_read(oracle, readers, data, stats)
                if world.suspend:
                    check_suspension(ctx, oracle, readers, data)
                raise _Rollback
        except _Rollback:
            pass

    with override_settings(API_RATE_LIMIT_PER_MINUTE=10**9):
        check()
    assert stats["revocations"] >= 1, stats  # the revocation property was exercised

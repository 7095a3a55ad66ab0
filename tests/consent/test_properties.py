"""Property-based tests of the consent check and of identifier normalisation.

Random sequences of grants, revocations, erasures and the passing of time are run through the real
services and compared after every step with a plain-Python oracle of what should be allowed. Time
is virtual: grants expire at ``t + n hours`` for a clock ``t`` that starts a day after the real now
and only moves forward, and every check is asked ``at=t`` — nothing sleeps.
"""

import itertools
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.test import override_settings
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consent import identity, selectors, services
from consent.catalogue import CATEGORIES, PURPOSES
from consent.ledger import ledger_verify
from consent.models import ConsentGrant, Customer, LedgerEntry, Receipt
from partners.models import Partner

PURPOSE_KEYS = ("warranty", "service", "marketing")
CATEGORY_KEYS = tuple(CATEGORIES)
MAX_CUSTOMERS, MAX_PARTNERS = 3, 3
HOUR = timedelta(hours=1)
TICK = timedelta(microseconds=1)
ZERO = timedelta(0)

_addresses = itertools.count(1)


# --- operations --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Grant:
    customer: int
    partner: int
    purpose: str
    categories: tuple | None  # None: the purpose's default categories
    expires_in_hours: int | None


@dataclass(frozen=True)
class GrantAgain:
    """Send the most recent successful grant again, with the same absolute expiry."""


@dataclass(frozen=True)
class Revoke:
    customer: int
    partner: int
    purpose: str


@dataclass(frozen=True)
class RevokeOpen:
    """Revoke the ``pick``-th open grant (modulo their number), so that revocations hit."""

    pick: int


@dataclass(frozen=True)
class Advance:
    by: timedelta


@dataclass(frozen=True)
class AdvanceToExpiry:
    """Move the clock to an open grant's expiry, or a microsecond either side of it."""

    pick: int
    offset: timedelta


@dataclass(frozen=True)
class Erase:
    customer: int


@dataclass(frozen=True)
class World:
    customers: int
    partners: int
    ops: tuple


@st.composite
def worlds(draw):
    n_customers = draw(st.integers(1, MAX_CUSTOMERS))
    n_partners = draw(st.integers(2, MAX_PARTNERS))
    customer = st.integers(0, n_customers - 1)
    partner = st.integers(0, n_partners - 1)
    purpose = st.sampled_from(PURPOSE_KEYS)
    grant = st.builds(
        Grant,
        customer=customer,
        partner=partner,
        purpose=purpose,
        categories=st.none()
        | st.lists(st.sampled_from(CATEGORY_KEYS), min_size=1, max_size=3).map(tuple),
        expires_in_hours=st.sampled_from([None, 1, 2, 3]),
    )
    op = st.one_of(
        grant,
        st.just(GrantAgain()),
        st.builds(Revoke, customer=customer, partner=partner, purpose=purpose),
        st.builds(RevokeOpen, pick=st.integers(0, 5)),
        st.builds(Advance, by=st.sampled_from([TICK, HOUR, 2 * HOUR])),
        st.builds(
            AdvanceToExpiry, pick=st.integers(0, 5), offset=st.sampled_from([ZERO, -TICK, TICK])
        ),
        st.builds(Erase, customer=customer),
    )
    # Start from a few grants, so that revocations, expiries and repeats have something to hit.
    opening = draw(st.lists(grant, min_size=1, max_size=3))
    ops = draw(st.lists(op, min_size=2, max_size=6))
    return World(customers=n_customers, partners=n_partners, ops=(*opening, *ops))


# --- the oracle --------------------------------------------------------------------------------


class Oracle:
    """What should be allowed: open grants by (customer, partner, purpose) → (categories,
    expires_at), and the erased customers. Counts the ledger entries the services should write."""

    def __init__(self):
        self.open = {}
        self.erased = set()
        self.granted = 0
        self.ended = 0
        self.last_grant = None

    def allows(self, customer, partner, purpose, category, at):
        if customer in self.erased:
            return False
        grant = self.open.get((customer, partner, purpose))
        if grant is None:
            return False
        categories, expires_at = grant
        return category in categories and (expires_at is None or expires_at > at)


class _Rollback(Exception):
    """Raised at the end of an example to undo everything it wrote."""


class Run:
    """One example: the customers, the virtual clock, and each operation applied to both the real
    services and the oracle."""

    def __init__(self, partners, n_customers):
        self.partners = partners
        self.customers = [
            services.customer_resolve(
                identifier=identity.parse_identifier(
                    kind="email", value=f"Person.{next(_addresses)}@Example.org"
                ),
                partner=partners[0],
            )
            for _ in range(n_customers)
        ]
        self.t = timezone.now() + timedelta(days=1)
        self.oracle = Oracle()

    def apply(self, op):
        getattr(self, f"_{type(op).__name__.lower()}")(op)

    def _grant(self, op):
        expires_at = None if op.expires_in_hours is None else self.t + op.expires_in_hours * HOUR
        self._send_grant(op.customer, op.partner, op.purpose, op.categories, expires_at)

    def _grantagain(self, op):
        last = self.oracle.last_grant
        if last is None:
            return
        customer, partner, purpose, categories, expires_at = last
        if expires_at is not None and expires_at <= self.t:
            return  # granting an expiry that has passed is refused; not this property
        self._send_grant(customer, partner, purpose, categories, expires_at)

    def _send_grant(self, customer, partner, purpose, categories, expires_at):
        oracle = self.oracle
        key = (customer, partner, purpose)
        expected = tuple(sorted(set(categories or PURPOSES[purpose].default_categories)))
        before = _write_counts()
        try:
            grant = services.consent_grant(
                customer=self.customers[customer],
                grantee=self.partners[partner],
                purpose=purpose,
                source=ConsentGrant.Source.CUSTOMER,
                categories=list(categories) if categories else None,
                expires_at=expires_at,
            )
        except services.DuplicateGrant:
            assert customer not in oracle.erased
            assert oracle.open.get(key) == (expected, expires_at), "unexpected DuplicateGrant"
            assert _write_counts() == before, "a refused duplicate wrote something"
            return
        except ValidationError:
            assert customer in oracle.erased, "grant refused for a live customer"
            assert _write_counts() == before
            return
        assert customer not in oracle.erased, "an erased customer was given a grant"
        assert oracle.open.get(key) != (expected, expires_at), "identical grant not refused"
        assert tuple(grant.categories) == expected
        assert grant.expires_at == expires_at
        if key in oracle.open:
            oracle.ended += 1  # superseded
        oracle.open[key] = (expected, expires_at)
        oracle.granted += 1
        oracle.last_grant = (customer, partner, purpose, categories, expires_at)

    def _revoke(self, op):
        key = (op.customer, op.partner, op.purpose)
        grant = selectors.open_grant(
            customer=self.customers[op.customer],
            grantee=self.partners[op.partner],
            purpose=op.purpose,
        )
        assert (grant is not None) == (key in self.oracle.open), "open grants differ"
        if grant is not None:
            services.consent_revoke(grant=grant)
            del self.oracle.open[key]
            self.oracle.ended += 1

    def _revokeopen(self, op):
        keys = sorted(self.oracle.open)
        if keys:
            customer, partner, purpose = keys[op.pick % len(keys)]
            self._revoke(Revoke(customer=customer, partner=partner, purpose=purpose))

    def _advance(self, op):
        self.t += op.by

    def _advancetoexpiry(self, op):
        times = sorted(
            expires_at + op.offset
            for _, expires_at in self.oracle.open.values()
            if expires_at is not None and expires_at + op.offset >= self.t
        )
        if times:
            self.t = times[op.pick % len(times)]

    def _erase(self, op):
        oracle = self.oracle
        services.customer_erase(customer=self.customers[op.customer])
        ended = [key for key in oracle.open if key[0] == op.customer]
        for key in ended:
            del oracle.open[key]
        oracle.ended += len(ended)
        oracle.erased.add(op.customer)

    def check(self, step):
        """Every customer, partner, purpose and category, through both forms of the check."""
        at = self.t
        wrong = []
        for c, customer in enumerate(self.customers):
            for p, partner in enumerate(self.partners):
                for purpose in PURPOSE_KEYS:
                    for category in CATEGORY_KEYS:
                        actual = selectors.consent_allows(
                            partner=partner,
                            customer_id=customer.pk,
                            purpose=purpose,
                            category=category,
                            at=at,
                        )
                        if actual != self.oracle.allows(c, p, purpose, category, at):
                            wrong.append(("consent_allows", c, p, purpose, category, actual))
        cells = {
            f"x_{p}_{purpose}_{category}": (p, partner, purpose, category)
            for p, partner in enumerate(self.partners)
            for purpose in PURPOSE_KEYS
            for category in CATEGORY_KEYS
        }
        checks = {
            name: selectors.consent_exists(
                partner_id=partner.pk,
                purpose=purpose,
                category=category,
                customer=F("pk"),
                at=at,
            )
            for name, (_, partner, purpose, category) in cells.items()
        }
        rows = {
            row.pop("pk"): row
            for row in Customer.objects.filter(pk__in=[c.pk for c in self.customers])
            .annotate(**checks)
            .values("pk", *checks)
        }
        for c, customer in enumerate(self.customers):
            for name, actual in rows[customer.pk].items():
                p, _, purpose, category = cells[name]
                if actual != self.oracle.allows(c, p, purpose, category, at):
                    wrong.append(("consent_exists", c, p, purpose, category, actual))
        # Each expiring grant right at its boundary: still allowed a microsecond before, not at.
        for (c, p, purpose), (categories, expires_at) in self.oracle.open.items():
            if expires_at is None:
                continue
            for instant in (expires_at - TICK, expires_at):
                for category in categories:
                    actual = selectors.consent_allows(
                        partner=self.partners[p],
                        customer_id=self.customers[c].pk,
                        purpose=purpose,
                        category=category,
                        at=instant,
                    )
                    if actual != self.oracle.allows(c, p, purpose, category, instant):
                        wrong.append(("at expiry", instant, c, p, purpose, category, actual))
        assert not wrong, f"after step {step}: {len(wrong)} wrong answers, e.g. {wrong[:5]}"


def _write_counts():
    return (
        ConsentGrant.objects.unscoped("test setup").count(),
        ConsentGrant.objects.unscoped("test setup").filter(revoked_at__isnull=True).count(),
        LedgerEntry.objects.count(),
        Receipt.objects.count(),
    )


def _ledger_count(kind):
    return LedgerEntry.objects.filter(kind=kind).count()


@pytest.fixture
def partners(make_partner):
    """Three active partners, made once per test and shared by its examples (which only ever
    read them)."""
    return [make_partner(kind=kind)[0] for kind in (*Partner.Kind.values, Partner.Kind.RETAILER)]


# --- consent sequences -------------------------------------------------------------------------


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(world=worlds())
def test_consent_check_matches_the_oracle_after_every_step_of_any_sequence(partners, world):
    try:
        with transaction.atomic():
            granted_before = _ledger_count("consent.granted")
            revoked_before = _ledger_count("consent.revoked")
            erased_before = _ledger_count("customer.erased")
            run = Run(partners[: world.partners], world.customers)
            run.check(step=0)
            for step, op in enumerate(world.ops, start=1):
                run.apply(op)
                run.check(step=step)
            _, problems = ledger_verify()
            assert problems == []
            assert _ledger_count("consent.granted") - granted_before == run.oracle.granted
            assert _ledger_count("consent.revoked") - revoked_before == run.oracle.ended
            assert _ledger_count("customer.erased") - erased_before == len(run.oracle.erased)
            raise _Rollback
    except _Rollback:
        pass


def test_consent_check_denies_without_a_partner_or_a_customer(partners):
    assert not selectors.consent_allows(
        partner=None, customer_id=None, purpose="warranty", category="identity"
    )
    assert not selectors.consent_allows(
        partner=partners[0], customer_id=None, purpose="warranty", category="identity"
    )


# --- identifier normalisation ------------------------------------------------------------------

WHITESPACE = st.text(alphabet=" \t\r\n", max_size=3)


@st.composite
def email_variants(draw):
    """(address, the same address with random letter case and surrounding whitespace)."""
    address = draw(st.emails())
    upper = draw(st.lists(st.booleans(), min_size=len(address), max_size=len(address)))
    cased = "".join(ch.upper() if up else ch.lower() for ch, up in zip(address, upper, strict=True))
    return address, draw(WHITESPACE) + cased + draw(WHITESPACE)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pair=email_variants())
def test_email_variants_and_their_prehash_resolve_to_the_same_digests(pair):
    address, variant = pair
    normalised = identity.normalise(identity.EMAIL, address)
    from_raw = identity.parse_identifier(kind="email", value=variant)
    from_hash = identity.parse_identifier(kind="email", sha256=identity.prehash(normalised))
    shouted_hash = identity.parse_identifier(
        kind="email", sha256=f" {identity.prehash(normalised).upper()}\n"
    )
    assert from_raw.raw == normalised
    assert from_raw.sha256 == from_hash.sha256 == shouted_hash.sha256
    assert from_raw.digests() == from_hash.digests() == shouted_hash.digests()
    assert from_raw.current_digest() == from_hash.current_digest()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(first=st.emails(), second=st.emails())
def test_different_email_addresses_have_different_digests(first, second):
    a = identity.parse_identifier(kind="email", value=first)
    b = identity.parse_identifier(kind="email", value=second)
    if a.raw == b.raw:
        assert a.digests() == b.digests()
    else:
        assert a.sha256 != b.sha256
        assert a.current_digest() != b.current_digest()


def test_email_and_phone_digests_never_meet():
    """The kind is part of the digested message: the same hash as e-mail and as phone differ."""
    sha = identity.prehash("+49301234567")
    email = identity.parse_identifier(kind="email", sha256=sha)
    phone = identity.parse_identifier(kind="phone", sha256=sha)
    assert email.current_digest() != phone.current_digest()


@pytest.mark.parametrize("written", ["+49 30 1234567", "+49-30-1234567", "0049301234567"])
def test_phone_numbers_in_international_forms_normalise_to_e164(written):
    parsed = identity.parse_identifier(kind="phone", value=written)
    assert parsed.raw == "+49301234567"
    assert (
        parsed.digests()
        == identity.parse_identifier(
            kind="phone", sha256=identity.prehash("+49301234567")
        ).digests()
    )


def test_national_phone_number_needs_the_default_region():
    with override_settings(PHONE_DEFAULT_REGION=""), pytest.raises(ValidationError):
        identity.parse_identifier(kind="phone", value="030 1234567")
    with override_settings(PHONE_DEFAULT_REGION="DE"):
        parsed = identity.parse_identifier(kind="phone", value="030 1234567")
    assert parsed.raw == "+49301234567"

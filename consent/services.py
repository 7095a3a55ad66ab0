"""Writes on the customer's side: resolving identifiers to subjects, granting and revoking
consent, recording access, erasure, sign-in links and master-key rotation.

Every consent change, erasure and partner access appends to the ledger in the same transaction
as the change itself.
"""

import hashlib
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from partners.models import Partner

from . import identity, receipts
from .catalogue import PURPOSES, validate_categories, validate_purpose
from .keys import master_keyring
from .ledger import ledger_append, ledger_append_many
from .models import (
    AccessLogEntry,
    ConsentGrant,
    Customer,
    CustomerKey,
    CustomerSource,
    Identifier,
    MagicLink,
    Receipt,
)
from .selectors import identifier_match
from .signals import consent_revoked, customer_erased, customer_erasing

MAGIC_LINK_SALT = "consent.magic-link"
IDENTITY_LOCK = 7_302_215_002  # pg_advisory_xact_lock key of identity resolution


class DuplicateGrant(ValidationError):
    """The same consent is already active: nothing was stored."""


class RateLimited(Exception):
    pass


# --- identity ----------------------------------------------------------------------------------


def _sql(query, params):
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return cursor.fetchall() if cursor.description else []


def customers_resolve(*, identifiers, partner, categories=()):
    """The customer id for each parsed identifier, creating subjects for unknown ones.

    Set-based: one lookup for the whole batch, bulk inserts for what is new, ``ON CONFLICT`` so
    that two batches racing for the same new identifier end with one subject. Identifiers
    sent raw are stored encrypted under the (new) customer's data key; a hashed identifier that
    later arrives raw gets its ciphertext then. Records which partner holds data on whom.
    """
    if not identifiers:
        return []
    unique = {}
    for parsed in identifiers:
        unique.setdefault((parsed.kind, parsed.namespace, parsed.sha256), parsed)
    with transaction.atomic():
        # Batches from different partners name the same people and are written chunk by chunk
        # inside long ingest transactions, taking identifier and source rows in no common
        # order: concurrent batches deadlocked (the ingest bench saw HTTP 500s). One lock,
        # held to the end of the caller's transaction, serialises the writers instead.
        _sql("SELECT pg_advisory_xact_lock(%s)", [IDENTITY_LOCK])
        found = _lookup(unique.values())
        missing = [p for key, p in unique.items() if key not in found]
        if missing:
            found.update(_create_subjects(missing, partner, identity.hmac_keyring().current))
        upgrades = [p for key, p in unique.items() if p.raw and found[key][1] is False]
        if upgrades:
            _store_ciphertexts(upgrades, found)
        customer_ids = [found[(p.kind, p.namespace, p.sha256)][0] for p in identifiers]
        _touch_sources(set(customer_ids), partner, categories)
    return customer_ids


def _lookup(parsed_items):
    """{(kind, namespace, sha256): (customer_id, has_ciphertext)} for known identifiers.

    Joins on the whole unique key (kind, namespace, version, digest), so the lookup is an index
    scan whatever the size of the table."""
    wanted = {}
    for parsed in parsed_items:
        for version, digest in parsed.digests():
            wanted[(parsed.kind, parsed.namespace, version, bytes(digest))] = (
                parsed.kind,
                parsed.namespace,
                parsed.sha256,
            )
    if not wanted:
        return {}
    keys = list(wanted)
    rows = _sql(
        """
        SELECT i.kind, i.namespace, i.hmac_version, i.digest, i.customer_id, i.ciphertext IS NOT NULL
        FROM unnest(%s::text[], %s::text[], %s::text[], %s::bytea[]) AS t(k, n, v, d)
        JOIN consent_identifier i
          ON i.kind = t.k AND i.namespace = t.n AND i.hmac_version = t.v AND i.digest = t.d
        """,
        [[k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys], [k[3] for k in keys]],
    )
    found = {}
    for kind, namespace, version, digest, customer_id, has_ct in rows:
        key = wanted.get((kind, namespace, version, bytes(digest)))
        if key:
            found[key] = (customer_id, has_ct)
    return found


def _create_subjects(missing, partner, version):
    now = timezone.now()
    customers, keys, idents = [], [], []
    for parsed in missing:
        customer_id = uuid.uuid4()
        data_key = identity.new_data_key()
        master_version, wrapped = identity.wrap_data_key(data_key, customer_id)
        ciphertext = (
            identity.encrypt_value(data_key, parsed.raw, f"{parsed.kind}:{customer_id}")
            if parsed.raw
            else None
        )
        customers.append(customer_id)
        keys.append((customer_id, wrapped, master_version))
        idents.append(
            (
                customer_id,
                parsed.kind,
                parsed.namespace,
                identity.keyed_digest(parsed.kind, parsed.namespace, parsed.sha256, version),
                ciphertext,
            )
        )
    _sql(
        "INSERT INTO consent_customer (id, created_at) SELECT unnest(%s::uuid[]), %s",
        [customers, now],
    )
    _sql(
        """INSERT INTO consent_customerkey (customer_id, wrapped, master_version, created_at)
           SELECT c, w, v, %s FROM unnest(%s::uuid[], %s::bytea[], %s::text[]) AS t(c, w, v)""",
        [now, [k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys]],
    )
    inserted = _sql(
        """
        INSERT INTO consent_identifier
            (customer_id, kind, namespace, hmac_version, digest, ciphertext, first_seen_by_id, created_at)
        SELECT c, k, n, %s, d, ct, %s, %s
        FROM unnest(%s::uuid[], %s::text[], %s::text[], %s::bytea[], %s::bytea[]) AS t(c, k, n, d, ct)
        ON CONFLICT (kind, namespace, hmac_version, digest) DO NOTHING
        RETURNING customer_id
        """,
        [
            version,
            partner.pk if partner else None,
            now,
            [i[0] for i in idents],
            [i[1] for i in idents],
            [i[2] for i in idents],
            [i[3] for i in idents],
            [i[4] for i in idents],
        ],
    )
    won = {row[0] for row in inserted}
    lost = [c for c in customers if c not in won]
    if lost:
        # Another batch created these identifiers first: drop our spare subjects, use theirs.
        _sql("DELETE FROM consent_customerkey WHERE customer_id = ANY(%s)", [lost])
        _sql("DELETE FROM consent_customer WHERE id = ANY(%s)", [lost])
    result = {}
    lost_parsed = []
    for parsed, customer_id in zip(missing, customers, strict=True):
        if customer_id in won:
            result[(parsed.kind, parsed.namespace, parsed.sha256)] = (
                customer_id,
                parsed.raw is not None,
            )
        else:
            lost_parsed.append(parsed)
    if lost_parsed:
        result.update(_lookup(lost_parsed))
    return result


def data_keys_for(customer_ids):
    """{customer_id: data key} for live customers."""
    keys = {}
    for key in CustomerKey.objects.filter(customer_id__in=list(customer_ids)):
        keys[key.customer_id] = identity.unwrap_data_key(
            key.wrapped, key.customer_id, key.master_version
        )
    return keys


def _store_ciphertexts(upgrades, found):
    keys = data_keys_for({found[(p.kind, p.namespace, p.sha256)][0] for p in upgrades})
    for parsed in upgrades:
        customer_id = found[(parsed.kind, parsed.namespace, parsed.sha256)][0]
        if customer_id not in keys:
            continue
        ciphertext = identity.encrypt_value(
            keys[customer_id], parsed.raw, f"{parsed.kind}:{customer_id}"
        )
        digests = [d for _, d in parsed.digests()]
        Identifier.objects.filter(
            customer_id=customer_id, kind=parsed.kind, digest__in=digests, ciphertext__isnull=True
        ).update(ciphertext=ciphertext)


def _touch_sources(customer_ids, partner, categories):
    if not partner or not customer_ids:
        return
    _sql(
        """
        INSERT INTO consent_customersource (customer_id, partner_id, categories, first_seen_at, last_seen_at)
        SELECT c, %s, %s::varchar[], now(), now() FROM unnest(%s::uuid[]) AS t(c)
        ON CONFLICT (customer_id, partner_id) DO UPDATE
        SET last_seen_at = excluded.last_seen_at,
            categories = ARRAY(SELECT DISTINCT unnest(consent_customersource.categories || excluded.categories))
        """,
        [partner.pk, sorted(set(categories)), list(customer_ids)],
    )


def customer_resolve(*, identifier, partner, categories=()):
    """The subject for one parsed identifier (created if new)."""
    customer_id = customers_resolve(
        identifiers=[identifier], partner=partner, categories=categories
    )[0]
    return Customer.objects.get(pk=customer_id)


@transaction.atomic
def identifier_attach(*, customer, identifier, partner):
    """Add another identifier (say the loyalty number beside the e-mail) to a customer. An
    identifier that already names someone else is left alone: subjects are never merged on a
    partner's word. Returns True when it was attached (or already was)."""
    known = _lookup([identifier])
    key = (identifier.kind, identifier.namespace, identifier.sha256)
    if key in known:
        return known[key][0] == customer.pk
    if customer.is_erased:
        return False
    data_key = data_keys_for([customer.pk])[customer.pk]
    version, digest = identifier.current_digest()
    Identifier.objects.create(
        customer=customer,
        kind=identifier.kind,
        namespace=identifier.namespace,
        hmac_version=version,
        digest=digest,
        first_seen_by=partner,
        ciphertext=identity.encrypt_value(
            data_key, identifier.raw, f"{identifier.kind}:{customer.pk}"
        )
        if identifier.raw
        else None,
    )
    return True


def identifiers_decrypt(customer):
    """The customer's own identifiers in clear, for the customer alone (export, e-mail)."""
    keys = data_keys_for([customer.pk])
    if customer.pk not in keys:
        return []
    data_key = keys[customer.pk]
    out = []
    for ident in customer.identifiers.order_by("created_at"):
        value = (
            identity.decrypt_value(data_key, ident.ciphertext, f"{ident.kind}:{customer.pk}")
            if ident.ciphertext
            else None
        )
        out.append({"kind": ident.kind, "value": value, "namespace": ident.namespace or None})
    return out


# --- consent -----------------------------------------------------------------------------------


def _policy_sha(purpose, version):
    return hashlib.sha256(PURPOSES[purpose].policies[version].encode()).hexdigest()


def _issue_receipt(*, customer, kind, grant=None, extra=None):
    receipt_id = uuid.uuid4()
    payload = {
        "version": receipts.RECEIPT_VERSION,
        "receipt_id": str(receipt_id),
        "kind": kind,
        "jurisdiction": receipts.JURISDICTION,
        "issued_at": timezone.now().isoformat(),
        "controller": {"name": "Clearinghouse", "url": settings.SITE_URL},
        "subject": str(customer.pk),
    }
    if grant is not None:
        payload.update(
            {
                "consent_id": str(grant.pk),
                "recipient": {
                    "id": str(grant.grantee_id),
                    "name": grant.grantee.name,
                    "kind": grant.grantee.kind,
                },
                "purpose": {
                    "key": grant.purpose,
                    "label": PURPOSES[grant.purpose].label,
                    "policy_version": grant.policy_version,
                    "policy_sha256": _policy_sha(grant.purpose, grant.policy_version),
                },
                "categories": list(grant.categories),
                "source": grant.source,
                "collected_by": grant.collected_by.name if grant.collected_by else None,
                "granted_at": grant.granted_at.isoformat(),
                "expires_at": grant.expires_at.isoformat() if grant.expires_at else None,
                "revoked_at": grant.revoked_at.isoformat() if grant.revoked_at else None,
            }
        )
    payload.update(extra or {})
    signature, key_id = receipts.sign(payload)
    return Receipt.objects.create(
        id=receipt_id,
        customer=customer,
        grant=grant,
        kind=kind,
        payload=payload,
        signature=signature,
        key_id=key_id,
    )


def _validate_evidence(evidence):
    required = {"channel", "text_shown", "collected_at"}
    if not isinstance(evidence, dict) or not required <= set(evidence):
        raise ValidationError(
            {
                "evidence": "A partner-collected consent needs evidence: channel, text_shown, collected_at."
            }
        )


@transaction.atomic
def consent_grant(
    *,
    customer,
    grantee,
    purpose,
    source,
    categories=None,
    policy_version=None,
    collected_by=None,
    evidence=None,
    expires_at=None,
):
    """Record a consent grant, its ledger entry and its signed receipt.

    An identical active grant is a ``DuplicateGrant``; any other open grant for the same
    customer, grantee and purpose is superseded (ended) by the new one.
    """
    spec = validate_purpose(purpose)
    categories = validate_categories(categories or spec.default_categories)
    version = policy_version or spec.current_version
    if version not in spec.policies:
        raise ValidationError(
            {"policy_version": f"Purpose {purpose!r} has no policy version {version}."}
        )
    if source not in ConsentGrant.Source.values:
        raise ValidationError({"source": "Unknown source."})
    if source == ConsentGrant.Source.PARTNER:
        _validate_evidence(evidence)
    now = timezone.now()
    if expires_at is not None and expires_at <= now:
        raise ValidationError({"expires_at": "The expiry is in the past: nothing to grant."})
    if grantee.status != Partner.Status.ACTIVE:
        raise ValidationError({"grantee": "Consent can only be given to an active partner."})
    customer = Customer.objects.select_for_update().get(pk=customer.pk)
    if customer.is_erased:
        raise ValidationError("This customer was erased.")
    existing = (
        ConsentGrant.objects.select_for_update()
        .filter(customer=customer, grantee=grantee, purpose=purpose, revoked_at__isnull=True)
        .first()
    )
    if existing is not None:
        if (
            existing.is_active(now)
            and sorted(existing.categories) == categories
            and existing.policy_version == version
            and existing.expires_at == expires_at
        ):
            raise DuplicateGrant("This consent is already active.", code="duplicate")
        _end_grant(existing, ConsentGrant.Ended.SUPERSEDED, now, receipt=False)
    grant = ConsentGrant.objects.create(
        customer=customer,
        grantee=grantee,
        purpose=purpose,
        categories=categories,
        policy_version=version,
        source=source,
        collected_by=collected_by,
        evidence=evidence or {},
        granted_at=now,
        expires_at=expires_at,
    )
    ledger_append(
        kind="consent.granted",
        customer_ref=customer.pk,
        partner_ref=grantee.pk,
        consent=str(grant.pk),
        purpose=purpose,
        categories=categories,
        policy_version=version,
        source=source,
        collected_by=str(collected_by.pk) if collected_by else None,
        expires_at=expires_at.isoformat() if expires_at else None,
        supersedes=str(existing.pk) if existing else None,
    )
    grant.receipt = _issue_receipt(customer=customer, kind=Receipt.Kind.GRANT, grant=grant)
    return grant


def _end_grant(grant, ended_by, now, *, receipt=True):
    grant.revoked_at = now
    grant.ended_by = ended_by
    grant.save(update_fields=["revoked_at", "ended_by"])
    ledger_append(
        kind="consent.revoked",
        customer_ref=grant.customer_id,
        partner_ref=grant.grantee_id,
        consent=str(grant.pk),
        purpose=grant.purpose,
        ended_by=ended_by,
    )
    if receipt:
        grant.receipt = _issue_receipt(
            customer=grant.customer, kind=Receipt.Kind.REVOKE, grant=grant
        )
    grant_id, customer_id, grantee_id = grant.pk, grant.customer_id, grant.grantee_id
    transaction.on_commit(
        lambda: consent_revoked.send(
            sender=ConsentGrant, grant_id=grant_id, customer_id=customer_id, grantee_id=grantee_id
        ),
        robust=True,
    )
    return grant


@transaction.atomic
def consent_revoke(*, grant, ended_by=ConsentGrant.Ended.CUSTOMER):
    """End a grant now: the very next read by the grantee no longer sees the data. Revoking an
    ended grant is harmless."""
    grant = (
        ConsentGrant.objects.select_for_update()
        .select_related("grantee", "customer")
        .get(pk=grant.pk)
    )
    if grant.revoked_at is not None:
        return grant
    return _end_grant(grant, ended_by, timezone.now())


@transaction.atomic
def consent_record_expiries():
    """Write a ledger entry for every grant whose expiry has passed (the expiry itself took
    effect at its time: the consent check compares with now)."""
    now = timezone.now()
    expired = list(
        ConsentGrant.objects.select_for_update(skip_locked=True).filter(
            revoked_at__isnull=True, expiry_recorded_at__isnull=True, expires_at__lte=now
        )[:1000]
    )
    if not expired:
        return 0
    ledger_append_many(
        [
            (
                "consent.expired",
                g.customer_id,
                g.grantee_id,
                {
                    "consent": str(g.pk),
                    "purpose": g.purpose,
                    "expired_at": g.expires_at.isoformat(),
                },
            )
            for g in expired
        ]
    )
    ConsentGrant.objects.filter(pk__in=[g.pk for g in expired]).update(expiry_recorded_at=now)
    return len(expired)


# --- access ------------------------------------------------------------------------------------


@dataclass
class Access:
    """What one request showed a partner about one customer."""

    record_count: int
    purposes: set
    categories: set


@transaction.atomic
def access_record(*, partner, accesses, channel, request_id=""):
    """Log partner reads: ``accesses`` maps customer id → Access. One access-log row and one
    ledger entry per customer and request, never per record."""
    if not accesses:
        return []
    now = timezone.now()
    rows = [
        AccessLogEntry(
            customer_id=customer_id,
            partner=partner,
            purposes=sorted(a.purposes),
            categories=sorted(a.categories),
            channel=channel,
            record_count=a.record_count,
            request_id=request_id,
            accessed_at=now,
        )
        for customer_id, a in sorted(accesses.items(), key=lambda item: str(item[0]))
    ]
    AccessLogEntry.objects.bulk_create(rows)
    ledger_append_many(
        [
            (
                "data.accessed",
                row.customer_id,
                partner.pk,
                {
                    "channel": channel,
                    "records": row.record_count,
                    "purposes": row.purposes,
                    "categories": row.categories,
                    "request": request_id,
                },
            )
            for row in rows
        ]
    )
    return rows


# --- erasure -----------------------------------------------------------------------------------


@transaction.atomic
def customer_erase(*, customer):
    """Erase a customer: end every grant, let the core tombstone the records, delete the
    identifiers, sign-in links, access log and sources, destroy the data key (after which no
    ciphertext of theirs can ever be decrypted), and issue a final signed receipt. The ledger keeps
    its entries, which name only the pseudonymous id. Erasing twice returns the first receipt."""
    customer = Customer.objects.select_for_update().get(pk=customer.pk)
    if customer.is_erased:
        return customer.receipts.filter(kind=Receipt.Kind.ERASURE).first()
    now = timezone.now()
    ended = []
    for grant in (
        ConsentGrant.objects.select_for_update()
        .select_related("grantee", "customer")
        .filter(customer=customer, revoked_at__isnull=True)
    ):
        _end_grant(grant, ConsentGrant.Ended.ERASURE, now, receipt=False)
        ended.append(grant.grantee.name)
    # ``erased_at``: receivers that keep evidence of the erasure (GDPR Art. 19 notices) date it.
    results = customer_erasing.send(sender=Customer, customer_id=customer.pk, erased_at=now)
    tombstoned = sum(r for _, r in results if isinstance(r, int))
    counts = {
        "identifiers": customer.identifiers.count(),
        "consents_ended": len(ended),
        "records_tombstoned": tombstoned,
    }
    customer.identifiers.all().delete()
    MagicLink.objects.filter(customer=customer).delete()
    AccessLogEntry.objects.filter(customer=customer).delete()
    CustomerSource.objects.filter(customer=customer).delete()
    customer.receipts.all().delete()
    CustomerKey.objects.filter(customer=customer).delete()
    customer.erased_at = now
    customer.save(update_fields=["erased_at"])
    ledger_append(kind="customer.erased", customer_ref=customer.pk, **counts)
    receipt = _issue_receipt(
        customer=customer,
        kind=Receipt.Kind.ERASURE,
        extra={
            "erased_at": now.isoformat(),
            "erased": counts,
            "recipients_told": sorted(set(ended)),
        },
    )
    customer_id = customer.pk
    transaction.on_commit(
        lambda: customer_erased.send(sender=Customer, customer_id=customer_id), robust=True
    )
    return receipt


# --- dashboard sign-in -------------------------------------------------------------------------


def _count(key, limit):
    """Count one more attempt in a one-hour window; True while within the limit."""
    cache.add(key, 0, timeout=3600)
    try:
        return cache.incr(key) <= limit
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=3600)
        return True


@transaction.atomic
def magic_link_request(*, email, ip):
    """Send a sign-in link if we hold data for this address — and behave the same either way.

    Raises ``ValidationError`` for a malformed address and ``RateLimited`` past the limits per
    address and per IP (counted for unknown addresses too, so the limit reveals nothing)."""
    parsed = identity.parse_identifier(kind=identity.EMAIL, value=email)
    if not _count(f"magic:ip:{ip}", settings.MAGIC_LINKS_PER_IP_PER_HOUR) or not _count(
        f"magic:addr:{parsed.sha256}", settings.MAGIC_LINKS_PER_ADDRESS_PER_HOUR
    ):
        raise RateLimited()
    ident = (
        Identifier.objects.select_related("customer")
        .filter(identifier_match(parsed), customer__erased_at__isnull=True)
        .first()
    )
    if ident is None:
        return None
    if ident.ciphertext is None:
        _store_ciphertexts(
            [parsed], {(parsed.kind, parsed.namespace, parsed.sha256): (ident.customer_id, False)}
        )
    link = MagicLink.objects.create(
        customer=ident.customer,
        identifier=ident,
        expires_at=timezone.now() + timedelta(minutes=settings.MAGIC_LINK_TTL_MINUTES),
    )
    from .tasks import send_magic_link

    transaction.on_commit(lambda: send_magic_link.delay(str(link.pk)), robust=True)
    return link


def magic_link_token(link):
    return signing.dumps(str(link.pk), salt=MAGIC_LINK_SALT)


@transaction.atomic
def magic_link_consume(*, token):
    """The customer a valid, unused, unexpired link signs in, or None. Single use."""
    try:
        link_id = signing.loads(
            token, salt=MAGIC_LINK_SALT, max_age=settings.MAGIC_LINK_TTL_MINUTES * 60
        )
        link_id = uuid.UUID(str(link_id))
    except (signing.BadSignature, ValueError):
        return None
    link = (
        MagicLink.objects.select_for_update().select_related("customer").filter(pk=link_id).first()
    )
    now = timezone.now()
    if link is None or link.used_at or link.expires_at <= now or link.customer.is_erased:
        return None
    link.used_at = now
    link.save(update_fields=["used_at"])
    return link.customer


# --- key rotation ------------------------------------------------------------------------------


def master_key_rotate(*, batch_size=500, progress=None):
    """Re-wrap every data key not under the current master key. The encrypted values are not
    touched (their data keys do not change). Safe to interrupt and run again."""
    current = master_keyring().current
    done = 0
    while True:
        with transaction.atomic():
            batch = list(
                CustomerKey.objects.select_for_update(skip_locked=True).exclude(
                    master_version=current
                )[:batch_size]
            )
            if not batch:
                break
            now = timezone.now()
            for key in batch:
                data_key = identity.unwrap_data_key(
                    key.wrapped, key.customer_id, key.master_version
                )
                key.master_version, key.wrapped = identity.wrap_data_key(data_key, key.customer_id)
                key.rotated_at = now
            CustomerKey.objects.bulk_update(batch, ["master_version", "wrapped", "rotated_at"])
        done += len(batch)
        if progress:
            progress(done)
    return done

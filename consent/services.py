"""Writes on the customer's side: resolving identifiers to subjects, granting and revoking
consent, recording access, erasure, sign-in links and master-key rotation.

Every consent change, erasure and partner access appends to the ledger in the same transaction
as the change itself.
"""

import hashlib
import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from clearinghouse.common.staging import insert_rows, row_source
from partners.models import Partner

from . import identity, notices, receipts
from .catalogue import PURPOSES, validate_categories, validate_purpose
from .keys import master_keyring
from .ledger import ledger_append, ledger_append_many, ledger_lock
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
from .signals import consent_granted, consent_revoked, customer_erased, customer_erasing

logger = logging.getLogger(__name__)

MAGIC_LINK_SALT = "consent.magic-link"


class DuplicateGrant(ValidationError):
    """The same consent is already active: nothing was stored."""


class RateLimited(Exception):
    pass


# --- identity ----------------------------------------------------------------------------------


def customers_resolve(*, identifiers, partner, categories=()):
    """The customer id for each parsed identifier, creating subjects for unknown ones, and a
    note that ``partner`` holds data of ``categories`` on each of them.

    Set-based: the identifiers are staged once and matched with one join, new subjects go in
    with one statement each for identifiers, customers and keys, ``ON CONFLICT`` so that two
    batches racing for the same new identifier end with one subject. Identifiers sent raw are
    stored encrypted under the (new) customer's data key; a hashed identifier that later
    arrives raw gets its ciphertext then.
    """
    if not identifiers:
        return []
    with transaction.atomic():
        customer_ids = identities_resolve(identifiers=identifiers, partner=partner)
        customer_sources_touch(
            partner=partner, categories_of=dict.fromkeys(customer_ids, frozenset(categories))
        )
    return customer_ids


def identities_resolve(*, identifiers, partner):
    """The customer id for each parsed identifier (created if new); see ``customers_resolve``,
    which also records the partner as a source."""
    unique = {}
    for parsed in identifiers:
        unique.setdefault((parsed.kind, parsed.namespace, parsed.sha256), parsed)
    with transaction.atomic(savepoint=False):
        found = _resolve_unique(unique, partner)
    return [found[(p.kind, p.namespace, p.sha256)][0] for p in identifiers]


def _resolve_unique(unique, partner):
    # Batches from different partners name the same people and run concurrently inside long
    # ingest transactions. No lock serialises them: every statement below writes its rows in
    # the order of their unique key (identifiers), of their id (ciphertext upgrades) or of the
    # customer (sources), so two batches that touch the same rows wait for each other in one
    # order and never in a cycle; a batch that loses the race for a new identifier waits for
    # the winner's commit and then uses its subject.
    found = _lookup(unique.values())
    missing = [p for key, p in unique.items() if key not in found]
    if missing:
        found.update(_create_subjects(missing, partner, identity.hmac_keyring().current))
    upgrades = [p for key, p in unique.items() if p.raw and found[key][1] is False]
    if upgrades:
        _store_ciphertexts(upgrades, found)
    return found


WANTED = ("n int", "kind text", "namespace text", "version text", "digest bytea")


def _lookup(parsed_items):
    """{(kind, namespace, sha256): (customer_id, has_ciphertext)} for known identifiers.

    Joins on the whole unique key (kind, namespace, version, digest), so the lookup is an index
    scan whatever the size of the table."""
    items = list(parsed_items)
    if not items:
        return {}
    wanted = [
        (n, p.kind, p.namespace, version, digest)
        for n, p in enumerate(items)
        for version, digest in p.digests()
    ]
    with connection.cursor() as cursor:
        source, params = row_source(cursor, "identity_wanted", WANTED, wanted)
        cursor.execute(
            f"""
            SELECT identity_wanted.n, i.customer_id, i.ciphertext IS NOT NULL
            FROM {source}
            JOIN consent_identifier i
              ON i.kind = identity_wanted.kind AND i.namespace = identity_wanted.namespace
             AND i.hmac_version = identity_wanted.version AND i.digest = identity_wanted.digest
            """,  # noqa: S608 (the FROM item from row_source, values as parameters)
            params,
        )
        rows = cursor.fetchall()
    found = {}
    for n, customer_id, has_ct in rows:
        p = items[n]
        found[(p.kind, p.namespace, p.sha256)] = (customer_id, has_ct)
    return found


NEW_IDENTIFIERS = (
    "n int",
    "customer_id uuid",
    "kind text",
    "namespace text",
    "digest bytea",
    "ciphertext bytea",
)


def _create_subjects(missing, partner, version):
    now = timezone.now()
    new = []
    for n, parsed in enumerate(missing):
        customer_id = uuid.uuid4()
        data_key = identity.new_data_key()
        ciphertext = (
            identity.encrypt_value(data_key, parsed.raw, f"{parsed.kind}:{customer_id}")
            if parsed.raw
            else None
        )
        digest = identity.keyed_digest(parsed.kind, parsed.namespace, parsed.sha256, version)
        new.append((n, customer_id, parsed.kind, parsed.namespace, digest, ciphertext, data_key))
    with connection.cursor() as cursor:
        source, params = row_source(
            cursor, "identity_new", NEW_IDENTIFIERS, [row[:6] for row in new]
        )
        # In the order of the unique key: two batches creating overlapping identifiers wait
        # for each other in one order. The identifier goes in first (the customer and key
        # rows it references are checked at commit), so that a subject that lost the race
        # never exists, not even for a moment.
        cursor.execute(
            f"""
            INSERT INTO consent_identifier
                (customer_id, kind, namespace, hmac_version, digest, ciphertext, first_seen_by_id, created_at)
            SELECT customer_id, kind, namespace, %s, digest, ciphertext, %s, %s
            FROM {source} ORDER BY kind, namespace, digest
            ON CONFLICT (kind, namespace, hmac_version, digest) DO NOTHING
            RETURNING kind, namespace, digest
            """,  # noqa: S608 (the FROM item from row_source, values as parameters)
            [version, partner.pk if partner else None, now, *params],
        )
        won = {(kind, namespace, bytes(digest)) for kind, namespace, digest in cursor.fetchall()}
        winners = [row for row in new if row[2:5] in won]
        insert_rows(
            cursor,
            "consent_customer",
            ("id uuid", "created_at timestamptz"),
            ((r[1], now) for r in winners),
        )
        insert_rows(
            cursor,
            "consent_customerkey",
            ("customer_id uuid", "wrapped bytea", "master_version text", "created_at timestamptz"),
            (
                (r[1], wrapped, master_version, now)
                for r in winners
                for master_version, wrapped in [identity.wrap_data_key(r[6], r[1])]
            ),
        )
    result = {}
    lost = []
    for n, customer_id, *key, _, _ in new:
        parsed = missing[n]
        if tuple(key) in won:
            result[(parsed.kind, parsed.namespace, parsed.sha256)] = (
                customer_id,
                parsed.raw is not None,
            )
        else:
            lost.append(parsed)  # another batch created it first: use theirs
    if lost:
        result.update(_lookup(lost))
    return result


def data_keys_for(customer_ids):
    """{customer_id: data key} for live customers."""
    keys = {}
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        source, params = row_source(
            cursor, "identity_keys_wanted", ("customer_id uuid",), ((c,) for c in customer_ids)
        )
        cursor.execute(
            f"""SELECT k.customer_id, k.wrapped, k.master_version
                FROM {source} JOIN consent_customerkey k USING (customer_id)""",  # noqa: S608 (the FROM item from row_source, values as parameters)
            params,
        )
        for customer_id, wrapped, master_version in cursor.fetchall():
            keys[customer_id] = identity.unwrap_data_key(wrapped, customer_id, master_version)
    return keys


UPGRADES = ("customer_id uuid", "kind text", "digest bytea", "ciphertext bytea")


def _store_ciphertexts(upgrades, found):
    """Give identifiers that were only ever sent hashed the ciphertext of their raw value: one
    UPDATE for the set, locking the rows in id order (two batches upgrading the same
    identifiers wait for each other instead of deadlocking)."""
    keys = data_keys_for({found[(p.kind, p.namespace, p.sha256)][0] for p in upgrades})
    rows = []
    for parsed in upgrades:
        customer_id = found[(parsed.kind, parsed.namespace, parsed.sha256)][0]
        if customer_id not in keys:
            continue
        ciphertext = identity.encrypt_value(
            keys[customer_id], parsed.raw, f"{parsed.kind}:{customer_id}"
        )
        rows.extend((customer_id, parsed.kind, d, ciphertext) for _, d in parsed.digests())
    if not rows:
        return
    with connection.cursor() as cursor:
        source, params = row_source(cursor, "identity_upgrades", UPGRADES, rows)
        cursor.execute(
            f"""
            UPDATE consent_identifier i SET ciphertext = t.ciphertext
            FROM (
                SELECT i.id, identity_upgrades.ciphertext
                FROM {source}
                JOIN consent_identifier i
                  ON i.customer_id = identity_upgrades.customer_id
                 AND i.kind = identity_upgrades.kind AND i.digest = identity_upgrades.digest
                WHERE i.ciphertext IS NULL
                ORDER BY i.id
                FOR UPDATE OF i
            ) t
            WHERE i.id = t.id AND i.ciphertext IS NULL
            """,  # noqa: S608 (the FROM item from row_source, values as parameters)
            params,
        )


SOURCES = ("customer_id uuid", "categories text")


def customer_sources_touch(*, partner, categories_of):
    """Note that ``partner`` holds data on each customer of ``categories_of`` ({customer id:
    categories}): one upsert for the set, in customer order.

    ``last_seen_at`` is kept to the hour: a source that already names these categories and was
    seen within the hour is left alone, so that a batch about known customers rewrites (and
    locks) nothing here."""
    if not partner or not categories_of:
        return
    with connection.cursor() as cursor:
        source, params = row_source(
            cursor,
            "identity_sources",
            SOURCES,
            # the array literal spelled here: category keys are plain words
            (
                (c, "{" + ",".join(sorted(categories)) + "}")
                for c, categories in categories_of.items()
            ),
        )
        cursor.execute(
            f"""
            INSERT INTO consent_customersource
                (customer_id, partner_id, categories, first_seen_at, last_seen_at)
            SELECT customer_id, %s, categories::varchar(20)[], now(), now()
            FROM {source}
            WHERE NOT EXISTS (
                SELECT FROM consent_customersource o
                WHERE o.customer_id = identity_sources.customer_id AND o.partner_id = %s
                  AND o.categories @> identity_sources.categories::varchar(20)[]
                  AND o.last_seen_at > now() - interval '1 hour'
            )
            ORDER BY customer_id
            ON CONFLICT (customer_id, partner_id) DO UPDATE
            SET last_seen_at = excluded.last_seen_at,
                categories = ARRAY(SELECT DISTINCT unnest(consent_customersource.categories || excluded.categories))
            """,  # noqa: S608 (the FROM item from row_source, values as parameters)
            [partner.pk, *params, partner.pk],
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
    customer = Customer.objects.select_for_update(no_key=True).get(pk=customer.pk)
    if customer.is_erased:
        raise ValidationError("This customer was erased.")
    existing = (
        ConsentGrant.objects.for_partner(grantee)
        .select_for_update(no_key=True)
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
    _tell_after_commit(consent_granted, grant)
    return grant


def _tell_after_commit(signal, grant):
    """Send ``signal`` about ``grant`` once the transaction commits."""
    grant_id, customer_id, grantee_id = grant.pk, grant.customer_id, grant.grantee_id
    transaction.on_commit(
        lambda: signal.send(
            sender=ConsentGrant, grant_id=grant_id, customer_id=customer_id, grantee_id=grantee_id
        ),
        robust=True,
    )


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
    _tell_after_commit(consent_revoked, grant)
    return grant


@transaction.atomic
def consent_revoke(*, grant, ended_by=ConsentGrant.Ended.CUSTOMER):
    """End a grant now: the very next read by the grantee no longer sees the data. Revoking an
    ended grant is harmless."""
    # Only the grant's row, and FOR NO KEY UPDATE: a plain FOR UPDATE through select_related
    # also locked the customer and the partner rows against the foreign-key checks of every
    # concurrent read's access log, and deadlocked with them under load. (The customer locks
    # below are NO KEY for the same reason.)
    grant = (
        ConsentGrant.objects.unscoped("locks again the grant the caller holds")
        .select_for_update(of=("self",), no_key=True)
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
    every_partners = ConsentGrant.objects.unscoped("the beat records every partner's expiries")
    expired = list(
        every_partners.select_for_update(skip_locked=True).filter(
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
    every_partners.filter(pk__in=[g.pk for g in expired]).update(expiry_recorded_at=now)
    return len(expired)


# --- access ------------------------------------------------------------------------------------


@dataclass
class Access:
    """What one request showed a partner about one customer."""

    record_count: int
    purposes: set
    categories: set


def access_record(*, partner, accesses, channel, request_id=""):
    """Log partner reads: ``accesses`` maps customer id → Access. One access-log row per
    customer and request, never per record. Its ledger entry is chained by a worker right after
    the commit (``access_log_chain``), so that reads never queue for the ledger's lock; the
    rows themselves are the outbox, and a sweep chains any the worker missed."""
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
    # One INSERT either way, atomic by itself: a read of one customer (the usual one) then
    # needs no BEGIN and COMMIT round trips around it.
    if len(rows) == 1:
        rows[0].save(force_insert=True)
    else:
        AccessLogEntry.objects.bulk_create(rows)
    transaction.on_commit(_schedule_access_chaining, robust=True)
    return rows


ACCESS_CHAIN_PENDING = "consent:access-chain-pending"
ACCESS_CHAIN_BATCH = 2000


def _schedule_access_chaining():
    """One chaining task for a burst of reads: the first read after a task started enqueues
    the next (the task clears the mark before it looks for rows, so none is left behind)."""
    from .tasks import chain_access_log

    try:
        if cache.add(ACCESS_CHAIN_PENDING, 1, timeout=60):
            chain_access_log.apply_async(countdown=settings.ACCESS_CHAIN_DELAY_SECONDS)
    except Exception:  # Redis away: the beat's sweep chains them
        logger.warning("could not schedule access-log chaining; the sweep will", exc_info=True)


def access_log_chain(*, limit=ACCESS_CHAIN_BATCH, customer_id=None):
    """Append the ledger entries of access-log rows not chained yet, oldest first, and note
    each entry's number on its row. Returns how many were chained (at most ``limit``)."""
    with transaction.atomic():
        # The ledger's lock first: two chainers (a task and the sweep) then take turns, and the
        # entries follow the order of the reads.
        ledger_lock()
        pending = AccessLogEntry.objects.filter(ledger_seq__isnull=True)
        if customer_id is not None:
            pending = pending.filter(customer_id=customer_id)
        rows = list(pending.order_by("id").select_for_update()[:limit])
        if not rows:
            return 0
        entries = ledger_append_many(
            [
                (
                    "data.accessed",
                    row.customer_id,
                    row.partner_id,
                    {
                        "channel": row.channel,
                        "records": row.record_count,
                        "purposes": row.purposes,
                        "categories": row.categories,
                        "request": row.request_id,
                        "accessed_at": row.accessed_at.isoformat(),
                    },
                )
                for row in rows
            ]
        )
        for row, entry in zip(rows, entries, strict=True):
            row.ledger_seq = entry.seq
        AccessLogEntry.objects.bulk_update(rows, ["ledger_seq"], batch_size=500)
    return len(rows)


# --- erasure -----------------------------------------------------------------------------------


@transaction.atomic
def customer_erase(*, customer):
    """Erase a customer: end every grant, let the core tombstone the records, delete the
    identifiers, sign-in links, access log and sources, destroy the data key (after which no
    ciphertext of theirs can ever be decrypted), and issue a final signed receipt. The receipt
    names the partners told of the erasure (``recipients_told``: exactly those that read the
    customer's data, GDPR Art. 19) apart from those whose consents it ended
    (``consents_ended_with``). The ledger keeps its entries, which name only the pseudonymous
    id. Erasing twice returns the first receipt."""
    customer = Customer.objects.select_for_update(no_key=True).get(pk=customer.pk)
    if customer.is_erased:
        return customer.receipts.filter(kind=Receipt.Kind.ERASURE).first()
    now = timezone.now()
    ended = []
    ended_with = {}
    for grant in (
        ConsentGrant.objects.unscoped("erasure ends the customer's consents to every partner")
        .select_for_update(of=("self",), no_key=True)
        .select_related("grantee", "customer")
        .filter(customer=customer, revoked_at__isnull=True)
    ):
        _end_grant(grant, ConsentGrant.Ended.ERASURE, now, receipt=False)
        ended.append(grant)
        ended_with[grant.grantee_id] = grant.grantee.name
    # GDPR Art. 19: the partners that read the customer's data, from the access log while it
    # still exists (it goes below); told after the commit (``customer_erased``). The receipt
    # names exactly these as told: a partner whose consent ended but that never read anything
    # had nothing to erase and is not told.
    told = notices.notices_capture_for_erasure(customer_id=customer.pk, erased_at=now)
    results = customer_erasing.send(sender=Customer, customer_id=customer.pk, erased_at=now)
    tombstoned = sum(r for _, r in results if isinstance(r, int))
    counts = {
        "identifiers": customer.identifiers.count(),
        "consents_ended": len(ended),
        "records_tombstoned": tombstoned,
    }
    customer.identifiers.all().delete()
    MagicLink.objects.filter(customer=customer).delete()
    access_log_chain(limit=None, customer_id=customer.pk)  # the ledger keeps their reads
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
            "recipients_told": sorted(n.partner.name for n in told),
            "consents_ended_with": sorted(ended_with.values()),
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

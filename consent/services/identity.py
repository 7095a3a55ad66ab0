"""Identity resolution: identifiers (parsed by ``consent.identity``) to pseudonymous subjects,
set-based, creating a subject with its own data key for an identifier never seen before, and
noting which partner holds which categories of data on whom."""

import uuid
from collections.abc import Iterable, Mapping, Sequence

from django.db import connection, transaction
from django.utils import timezone

from clearinghouse.common.staging import insert_rows, row_source
from partners.models import Partner

from .. import identity
from ..identity import ParsedIdentifier
from ..models import Customer, Identifier
from .encryption import data_keys_for, identifiers_encrypt


def customers_resolve(
    *,
    identifiers: Sequence[ParsedIdentifier],
    partner: Partner | None,
    categories: Iterable[str] = (),
) -> list[uuid.UUID]:
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


def identities_resolve(
    *, identifiers: Sequence[ParsedIdentifier], partner: Partner | None
) -> list[uuid.UUID]:
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
    upgrades = {p: found[key][0] for key, p in unique.items() if p.raw and found[key][1] is False}
    if upgrades:
        identifiers_encrypt(owners=upgrades)
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


SOURCES = ("customer_id uuid", "categories text")


def customer_sources_touch(
    *, partner: Partner | None, categories_of: Mapping[uuid.UUID, Iterable[str]]
) -> None:
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


def customer_resolve(
    *, identifier: ParsedIdentifier, partner: Partner | None, categories: Iterable[str] = ()
) -> Customer:
    """The subject for one parsed identifier (created if new)."""
    customer_id = customers_resolve(
        identifiers=[identifier], partner=partner, categories=categories
    )[0]
    return Customer.objects.get(pk=customer_id)


@transaction.atomic
def identifier_attach(
    *, customer: Customer, identifier: ParsedIdentifier, partner: Partner | None
) -> bool:
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

"""Envelope encryption of identifiers on the write side: the data keys of customers, the
ciphertext of identifiers first sent hashed, the customer's own identifiers in clear, and the
rotation of the master key that wraps every data key (``consent.identity`` holds the
primitives). Destroying a customer's wrapped data key is erasure's part (``erasure``)."""

import uuid
from collections.abc import Callable, Iterable, Mapping

from django.db import connection, transaction
from django.utils import timezone

from clearinghouse.common.staging import row_source

from .. import identity
from ..identity import ParsedIdentifier
from ..keys import master_keyring
from ..models import Customer, CustomerKey


def data_keys_for(customer_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, bytes]:
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


def identifiers_encrypt(*, owners: Mapping[ParsedIdentifier, uuid.UUID]) -> None:
    """Give identifiers that were only ever sent hashed the ciphertext of their raw value
    (``owners``: each identifier, sent raw this time, with its customer's id): one UPDATE for
    the set, locking the rows in id order (two batches upgrading the same identifiers wait for
    each other instead of deadlocking)."""
    keys = data_keys_for(set(owners.values()))
    rows = []
    for parsed, customer_id in owners.items():
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


def identifiers_decrypt(customer: Customer) -> list[dict[str, str | None]]:
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


def master_key_rotate(
    *, batch_size: int = 500, progress: Callable[[int], object] | None = None
) -> int:
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

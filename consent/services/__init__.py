"""Writes on the customer's side, one module per concern: resolving identifiers to subjects
(``identity``), consent grants (``grants``), their signed receipts (``receipts``), the access
log (``access``), erasure (``erasure``), the dashboard's sign-in links (``sign_in``) and the
envelope encryption of identifiers with master-key rotation (``encryption``).

Every consent change, erasure and partner access appends to the ledger in the same transaction
as the change itself. Other apps import from here, never from a module inside.
"""

from .access import (
    ACCESS_CHAIN_BATCH,
    ACCESS_CHAIN_PENDING,
    Access,
    access_log_chain,
    access_record,
)
from .encryption import data_keys_for, identifiers_decrypt, master_key_rotate
from .erasure import customer_erase
from .grants import DuplicateGrant, consent_grant, consent_record_expiries, consent_revoke
from .identity import (
    customer_resolve,
    customer_sources_touch,
    customers_resolve,
    identifier_attach,
    identities_resolve,
)
from .sign_in import RateLimited, magic_link_consume, magic_link_request, magic_link_token

__all__ = [
    "ACCESS_CHAIN_BATCH",
    "ACCESS_CHAIN_PENDING",
    "Access",
    "DuplicateGrant",
    "RateLimited",
    "access_log_chain",
    "access_record",
    "consent_grant",
    "consent_record_expiries",
    "consent_revoke",
    "customer_erase",
    "customer_resolve",
    "customer_sources_touch",
    "customers_resolve",
    "data_keys_for",
    "identifier_attach",
    "identifiers_decrypt",
    "identities_resolve",
    "magic_link_consume",
    "magic_link_request",
    "magic_link_token",
    "master_key_rotate",
]

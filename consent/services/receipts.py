"""Signed receipts: the customer's copy of a consent given or withdrawn and of an erasure,
signed with the clearinghouse's key (``consent.receipts`` signs and verifies)."""

import hashlib
import uuid
from collections.abc import Mapping

from django.conf import settings
from django.utils import timezone

from .. import receipts
from ..catalogue import PURPOSES
from ..models import ConsentGrant, Customer, Receipt


def _policy_sha(purpose: str, version: int) -> str:
    return hashlib.sha256(PURPOSES[purpose].policies[version].encode()).hexdigest()


def receipt_issue(
    *,
    customer: Customer,
    kind: str,
    grant: ConsentGrant | None = None,
    extra: Mapping[str, object] | None = None,
) -> Receipt:
    """Sign and store a receipt of ``kind`` for ``customer``: the grant's terms when there is
    one, then ``extra``. Called inside the transaction of the change it attests."""
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

"""What the consent layer tells the layers above it.

The core (records, webhooks) sits above consent and must react to revocations and erasures, but
consent must not import it. These signals are that seam: the core connects its receivers in its
AppConfig.ready(). ``customer_erasing`` is sent inside the erasure transaction (receivers return
how many records they tombstoned); the others after commit.
"""

from django.dispatch import Signal

consent_granted = Signal()  # grant_id, customer_id, grantee_id — after commit
consent_revoked = Signal()  # grant_id, customer_id, grantee_id — after commit
customer_exporting = Signal()  # customer_id — receivers return {section name: JSON-able data}
customer_erasing = Signal()  # customer_id — inside the erasure transaction
customer_erased = Signal()  # customer_id — after commit

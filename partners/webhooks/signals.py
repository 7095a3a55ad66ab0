"""What the webhook layer tells the layers above it.

``webhook_acknowledged`` is sent when a receiver answered a delivery of an event that carries an
``ack_token`` with 2xx and a valid ``Clearinghouse-Ack``. It is sent inside the transaction that
records the delivery's outcome, so a receiver's writes (say, a notice marked acknowledged) commit
together with it or not at all. Keyword arguments: ``event_id``, ``partner_id``, ``event_type``,
``ack_token``, ``delivery_id``, ``acknowledged_at``.
"""

from django.dispatch import Signal

webhook_acknowledged = Signal()

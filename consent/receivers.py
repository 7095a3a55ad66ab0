"""The consent layer's own reactions to its signals and to the webhook layer's: GDPR Art. 19
notices (``consent.notices``). Connected in ``ConsentConfig.ready``; each receiver calls one
service. (An erasure's recipients are captured by ``customer_erase`` itself, not by a receiver:
its signed receipt names them, so it must know them before it signs.)"""

from django.dispatch import receiver

from partners.webhooks.signals import webhook_acknowledged

from . import notices
from .signals import consent_revoked, customer_erased


@receiver(consent_revoked, dispatch_uid="consent.notices.revocation")
def notify_recipients_of_withdrawal(sender, grant_id, **kwargs):
    """After a withdrawal commits: tell the grantee if it received the customer's data."""
    notices.notices_for_revocation(grant_id=grant_id)


@receiver(customer_erased, dispatch_uid="consent.notices.erasure")
def notify_recipients_of_erasure(sender, customer_id, **kwargs):
    """After the erasure commits: send the captured notices."""
    notices.notices_send_for_erasure(customer_id=customer_id)


@receiver(webhook_acknowledged, dispatch_uid="consent.notices.webhook_acknowledgement")
def acknowledge_by_webhook(sender, event_type, partner_id, ack_token, acknowledged_at, **kwargs):
    """A recipient answered a notice's webhook with a valid signed acknowledgement."""
    if event_type in notices.EVENT_TYPES.values():
        notices.notice_acknowledge_by_webhook(
            partner_id=partner_id, token=ack_token, at=acknowledged_at
        )

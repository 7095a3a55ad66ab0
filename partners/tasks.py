"""Partner e-mails and housekeeping. Tasks take ids, call one thing, and are safe to run twice."""

from smtplib import SMTPException

from celery import shared_task
from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.utils import timezone

from .models import Invitation, Partner
from .selectors import invitation_token, mail_recipients
from .services import partner_event_record
from .webhooks import webhook_deliver, webhooks_enqueue_due

MAIL_RETRY = {
    "autoretry_for": (SMTPException, OSError),
    "retry_backoff": 30,
    "retry_backoff_max": 3600,
    "max_retries": 8,
    "time_limit": 60,
    "soft_time_limit": 50,
}


@shared_task(name="partners.send_partner_status_email", **MAIL_RETRY)
def send_partner_status_email(partner_id):
    """Tell a partner's admins that the operator approved or suspended it."""
    partner = Partner.objects.unscoped("the task runs for the partner id it was given").get(
        pk=partner_id
    )
    context = {"partner": partner, "site_url": settings.SITE_URL}
    send_mail(
        subject=render_to_string("email/partner_status_subject.txt", context).strip(),
        message=render_to_string("email/partner_status.txt", context),
        from_email=None,
        recipient_list=mail_recipients(partner=partner),
    )
    partner_event_record(partner=partner, action="email.status_sent", status=partner.status)


@shared_task(name="partners.send_invitation_email", **MAIL_RETRY)
def send_invitation_email(invitation_id):
    """Send the invitation link. A revoked or used invitation is not sent."""
    invitation = (
        Invitation.objects.unscoped("the task runs for the invitation id it was given")
        .select_related("partner", "invited_by")
        .get(pk=invitation_id)
    )
    if not invitation.is_open:
        return
    context = {
        "invitation": invitation,
        "link": f"{settings.SITE_URL}/portal/join/{invitation_token(invitation)}/",
    }
    send_mail(
        subject=f"You are invited to {invitation.partner.name} on Clearinghouse",
        message=render_to_string("email/invitation.txt", context),
        from_email=None,
        recipient_list=[invitation.email],
    )


@shared_task(name="partners.expire_invitations", time_limit=120, soft_time_limit=100)
def expire_invitations():
    """Close invitations whose time ran out, so that the address can be invited again."""
    every_partners = Invitation.objects.unscoped("housekeeping closes every partner's expired ones")
    return every_partners.filter(
        accepted_at__isnull=True, revoked_at__isnull=True, expires_at__lte=timezone.now()
    ).update(revoked_at=timezone.now())


# --- webhooks ---------------------------------------------------------------------------------


@shared_task(name="partners.deliver_webhook", time_limit=60, soft_time_limit=45)
def deliver_webhook(delivery_id):
    """One attempt of a webhook delivery, if it is due. The service claims it first, so a
    duplicate message or a redelivered task sends nothing twice; retries are scheduled by it."""
    return webhook_deliver(delivery_id=delivery_id)


@shared_task(name="partners.retry_due_webhooks", time_limit=120, soft_time_limit=100)
def retry_due_webhooks():
    """Every minute: enqueue due deliveries that no task is on its way for."""
    return webhooks_enqueue_due()

"""Consent tasks: sign-in e-mails, the expiry sweep and the chaining of partner reads into the
ledger. Ids in, one service call, safe twice."""

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.urls import reverse

from partners.selectors import mail_recipients

from . import identity, notices, services
from .models import MagicLink

RETRY = {"autoretry_for": (OSError,), "retry_backoff": 10, "max_retries": 5}


@shared_task(name="consent.send_magic_link", time_limit=60, soft_time_limit=50, **RETRY)
def send_magic_link(link_id):
    """E-mail the sign-in link to the address the customer typed (decrypted only here)."""
    link = MagicLink.objects.select_related("identifier", "customer").filter(pk=link_id).first()
    if link is None or link.used_at or link.customer.is_erased:
        return
    keys = services.data_keys_for([link.customer_id])
    if link.customer_id not in keys or not link.identifier.ciphertext:
        return
    address = identity.decrypt_value(
        keys[link.customer_id], link.identifier.ciphertext, f"email:{link.customer_id}"
    )
    context = {
        "link": f"{settings.SITE_URL}/me/link/{services.magic_link_token(link)}/",
        "minutes": settings.MAGIC_LINK_TTL_MINUTES,
    }
    send_mail(
        subject="Your sign-in link for the Clearinghouse privacy dashboard",
        message=render_to_string("email/magic_link.txt", context),
        from_email=None,
        recipient_list=[address],
    )


@shared_task(name="consent.send_notice_email", time_limit=60, soft_time_limit=50, **RETRY)
def send_notice_email(notice_id, reminder=0):
    """Tell a recipient with no webhook for it about a notice: its contact and admins, with the
    portal page where staff confirm it. Holds no customer data but the pseudonymous id."""
    from django.utils import timezone

    from .models import RecipientNotice

    notice = (
        RecipientNotice.objects.unscoped("the task runs for the notice id it was given")
        .select_related("partner")
        .filter(pk=notice_id)
        .first()
    )
    if notice is None or notice.acknowledged_at is not None:
        return
    context = {
        "notice": notice,
        "reminder": reminder,
        "portal": f"{settings.SITE_URL.rstrip('/')}{reverse('notices:list')}",
        "acknowledge_url": notices.acknowledge_url(notice.pk),
    }
    send_mail(
        subject=f"{'Reminder: ' if reminder else ''}{notice.get_kind_display()}: please confirm",
        message=render_to_string("email/notice.txt", context),
        from_email=None,
        recipient_list=mail_recipients(partner=notice.partner),
    )
    RecipientNotice.objects.for_partner(notice.partner).filter(
        pk=notice.pk, sent_at__isnull=True
    ).update(sent_at=timezone.now())


@shared_task(name="consent.record_expiries", time_limit=300, soft_time_limit=280)
def record_expiries():
    return services.consent_record_expiries()


@shared_task(name="consent.chase_notices", time_limit=600, soft_time_limit=580)
def chase_notices():
    """Every 15 minutes: remind recipients that have not acknowledged a withdrawal or erasure
    notice (GDPR Art. 19), and create notices a lost signal left out."""
    return notices.notices_chase()


@shared_task(name="consent.chain_access_log", time_limit=300, soft_time_limit=280)
def chain_access_log(sweep=False):
    """Chain the access-log rows not in the ledger yet: after a burst of reads (scheduled by
    ``access_record``), and from the beat every minute as the sweep for any schedule lost while
    Redis was away."""
    if not sweep:
        # Cleared before looking, so a read committed from now on schedules the next run.
        cache.delete(services.ACCESS_CHAIN_PENDING)
    chained = 0
    while True:
        n = services.access_log_chain()
        chained += n
        if n < services.ACCESS_CHAIN_BATCH:
            return chained

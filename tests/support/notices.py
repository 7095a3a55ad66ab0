"""A GDPR Art. 19 notice for a partner, made the way the product makes one."""

from clearinghouse.records import visibility
from consent import notices, services
from consent.models import ConsentGrant


def notice_for(partner):
    """The partner reads the records it may see (so it has received customers' data), then a
    customer withdraws a consent it received data under: the notice that withdrawal owes it."""
    visible = visibility.visible_records(partner=partner)
    visible.read(channel="api", limit=200)
    for grant in ConsentGrant.objects.for_partner(partner).filter(revoked_at__isnull=True):
        services.consent_revoke(grant=grant)
        found = notices.notices_for_revocation(grant_id=grant.pk)
        if found is not None:
            return found
    raise AssertionError(f"{partner.name} received no data under any consent")

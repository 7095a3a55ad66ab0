"""Webhook events keep what they are about, not the data: the data is built when it is sent."""

from django.db import migrations


def subjects(apps, schema_editor):
    """Turn each stored payload into the subject its builder reads."""
    WebhookEvent = apps.get_model("partners", "WebhookEvent")
    for event in WebhookEvent.objects.iterator(chunk_size=1000):
        old = event.subject or {}
        kind = event.event_type
        if kind == "record.shared":
            new = {
                "recorded_by": old.get("recorded_by"),
                "reason": old.get("reason"),
                "records": [r.get("ref") for r in old.get("records", []) if isinstance(r, dict)],
            }
        elif kind in ("discrepancy.opened", "discrepancy.updated"):
            new = {"discrepancy": old.get("id")}
        elif kind == "service.signal":
            new = {"signal": str(old.get("reference", "")).removeprefix("SIG-")}
        elif kind in ("consent.revoked", "customer.erased"):
            new = {"notice": old.get("notice"), "reminder": old.get("reminder", 0)}
        else:
            continue
        event.subject = new
        event.save(update_fields=["subject"])


class Migration(migrations.Migration):
    dependencies = [("partners", "0005_webhook_event_records")]

    operations = [
        migrations.RenameField("webhookevent", "payload", "subject"),
        migrations.RunPython(subjects, migrations.RunPython.noop),
        migrations.RemoveField("webhookevent", "records"),
    ]

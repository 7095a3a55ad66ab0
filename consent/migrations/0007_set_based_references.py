"""Customer sources, customer keys and the partner that first sent an identifier: references
checked once per statement (clearinghouse/common/references.py), not per row by a foreign key.

An identifier's customer keeps its deferred foreign key: the identifier is written before its
customer, so that a subject that lost a creation race never exists. Records use the same
triggers (records migration 0004).
"""

import django.db.models.deletion
from django.db import migrations, models

from clearinghouse.common.references import DROP_FUNCTIONS, FUNCTIONS, triggers

SOURCES = triggers(
    "consent_customersource",
    [("customer_id", "consent_customer"), ("partner_id", "partners_partner")],
)
KEYS = triggers("consent_customerkey", [("customer_id", "consent_customer")])
IDENTIFIERS = triggers("consent_identifier", [("first_seen_by_id", "partners_partner")])


class Migration(migrations.Migration):
    dependencies = [
        ("consent", "0006_fewer_identity_indexes"),
        ("partners", "0003_webhooks"),
    ]

    operations = [
        migrations.AlterField(
            model_name="customersource",
            name="customer",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="sources",
                to="consent.customer",
            ),
        ),
        migrations.AlterField(
            model_name="customersource",
            name="partner",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="partners.partner",
            ),
        ),
        migrations.AlterField(
            model_name="customerkey",
            name="customer",
            field=models.OneToOneField(
                db_constraint=False,
                on_delete=django.db.models.deletion.CASCADE,
                primary_key=True,
                related_name="data_key",
                serialize=False,
                to="consent.customer",
            ),
        ),
        migrations.AlterField(
            model_name="identifier",
            name="first_seen_by",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="partners.partner",
            ),
        ),
        migrations.RunSQL(FUNCTIONS, DROP_FUNCTIONS),
        migrations.RunSQL(*SOURCES),
        migrations.RunSQL(*KEYS),
        migrations.RunSQL(*IDENTIFIERS),
    ]

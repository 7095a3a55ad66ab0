"""A record's customer and partner are checked once per statement, not once per row.

A foreign key checks every inserted row with a lookup that also locks the referenced row (FOR
KEY SHARE). A batch of 10,000 records paid that 20,000 times at commit, and a retailer's and a
manufacturer's concurrent batches about the same customers turned each of those locks into a
multixact: about a fifth of the database's work in bulk ingest. The same guarantee, set-based:

- after each INSERT or UPDATE of records, one anti-join of the statement's new rows against
  customers and partners: a reference to a row that does not exist fails the statement;
- deleting customers or partners takes a SHARE lock on the records table (so it waits for every
  transaction writing records, and they wait for it), then fails if a record still names one of
  them. Neither is ever deleted by the product (a customer's erasure leaves a tombstone), so the
  lock costs nothing in practice.
"""

import django.db.models.deletion
from django.db import migrations, models

SQL = """
CREATE FUNCTION records_references_check() RETURNS trigger AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM new_rows n
               WHERE n.customer_id IS NOT NULL
                 AND NOT EXISTS (SELECT 1 FROM consent_customer c WHERE c.id = n.customer_id)) THEN
        RAISE EXCEPTION 'a record names a customer that does not exist'
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF EXISTS (SELECT 1 FROM (SELECT DISTINCT submitted_by_id FROM new_rows) n
               WHERE NOT EXISTS (SELECT 1 FROM partners_partner p WHERE p.id = n.submitted_by_id)) THEN
        RAISE EXCEPTION 'a record names a partner that does not exist'
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER records_references_insert
    AFTER INSERT ON records_interactionrecord REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION records_references_check();
CREATE TRIGGER records_references_update
    AFTER UPDATE ON records_interactionrecord REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION records_references_check();

-- TG_ARGV[0]: the records column that names the deleted rows.
CREATE FUNCTION records_referenced_delete_check() RETURNS trigger AS $$
DECLARE
    named boolean;
BEGIN
    LOCK TABLE records_interactionrecord IN SHARE MODE;
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM old_rows o
                                   JOIN records_interactionrecord r ON r.%I = o.id)', TG_ARGV[0])
        INTO named;
    IF named THEN
        RAISE EXCEPTION 'records name this %; it cannot be deleted', TG_TABLE_NAME
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER records_customer_delete
    AFTER DELETE ON consent_customer REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION records_referenced_delete_check('customer_id');
CREATE TRIGGER records_partner_delete
    AFTER DELETE ON partners_partner REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION records_referenced_delete_check('submitted_by_id');
"""

REVERSE = """
DROP TRIGGER IF EXISTS records_partner_delete ON partners_partner;
DROP TRIGGER IF EXISTS records_customer_delete ON consent_customer;
DROP TRIGGER IF EXISTS records_references_update ON records_interactionrecord;
DROP TRIGGER IF EXISTS records_references_insert ON records_interactionrecord;
DROP FUNCTION IF EXISTS records_referenced_delete_check();
DROP FUNCTION IF EXISTS records_references_check();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("consent", "0005_access_log_ledger_seq"),
        ("partners", "0003_webhooks"),
        ("records", "0003_record_deadline_index"),
    ]

    operations = [
        migrations.AlterField(
            model_name="interactionrecord",
            name="customer",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="consent.customer",
            ),
        ),
        migrations.AlterField(
            model_name="interactionrecord",
            name="submitted_by",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="partners.partner",
            ),
        ),
        migrations.RunSQL(SQL, REVERSE),
    ]

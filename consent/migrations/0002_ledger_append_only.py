"""The ledger is append-only in the database too: UPDATE and DELETE raise.

(An attacker with the database owner's rights can drop the trigger; the hash chain and
``manage.py verify_ledger`` are what detect that.)"""

from django.db import migrations

SQL = """
CREATE FUNCTION consent_ledger_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the consent ledger is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER consent_ledger_append_only
    BEFORE UPDATE OR DELETE ON consent_ledgerentry
    FOR EACH ROW EXECUTE FUNCTION consent_ledger_refuse_change();
"""

REVERSE = """
DROP TRIGGER IF EXISTS consent_ledger_append_only ON consent_ledgerentry;
DROP FUNCTION IF EXISTS consent_ledger_refuse_change();
"""


class Migration(migrations.Migration):
    dependencies = [("consent", "0001_initial")]
    operations = [migrations.RunSQL(SQL, REVERSE)]

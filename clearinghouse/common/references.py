"""References checked once per statement, for the tables bulk ingest writes in thousands.

A foreign key looks up and FOR KEY SHARE-locks the referenced row for each written row; when a
retailer's and a manufacturer's batches about the same customers run at once, every such lock
becomes a multixact. Two generic triggers give the same guarantee set-based:

- ``references_check`` (AFTER INSERT or UPDATE, per statement; arguments: pairs of column and
  referenced table, whose key is ``id``): one anti-join of the statement's new rows;
- ``referenced_delete_check`` (AFTER DELETE on the referenced table, per statement; arguments:
  the referencing table and column): takes a SHARE lock on the referencing table, so that it
  waits for every transaction writing there (and they for it), then fails if a row still names
  a deleted one. Customers and partners are never deleted by the product (erasure leaves a
  tombstone), and the ORM removes what cascades before it deletes.

Migrations install the functions once (consent 0007) and the triggers per table with
``triggers``; the model field says ``db_constraint=False``.
"""

FUNCTIONS = """
CREATE FUNCTION references_check() RETURNS trigger AS $$
DECLARE
    i int := 0;
    missing boolean;
BEGIN
    WHILE i < TG_NARGS LOOP
        EXECUTE format(
            'SELECT EXISTS (SELECT 1 FROM new_rows n WHERE n.%1$I IS NOT NULL
                            AND NOT EXISTS (SELECT 1 FROM %2$I r WHERE r.id = n.%1$I))',
            TG_ARGV[i], TG_ARGV[i + 1]) INTO missing;
        IF missing THEN
            RAISE EXCEPTION '%.% names a row of % that does not exist',
                TG_TABLE_NAME, TG_ARGV[i], TG_ARGV[i + 1]
                USING ERRCODE = 'foreign_key_violation';
        END IF;
        i := i + 2;
    END LOOP;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE FUNCTION referenced_delete_check() RETURNS trigger AS $$
DECLARE
    named boolean;
BEGIN
    EXECUTE format('LOCK TABLE %I IN SHARE MODE', TG_ARGV[0]);
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM old_rows o JOIN %I r ON r.%I = o.id)',
                   TG_ARGV[0], TG_ARGV[1]) INTO named;
    IF named THEN
        RAISE EXCEPTION '%.% names this row of %; it cannot be deleted',
            TG_ARGV[0], TG_ARGV[1], TG_TABLE_NAME
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
"""

DROP_FUNCTIONS = """
DROP FUNCTION IF EXISTS referenced_delete_check();
DROP FUNCTION IF EXISTS references_check();
"""


def triggers(table, references):
    """SQL (forward, reverse) for the checks of ``table``'s ``references`` ((column, table)
    pairs): one trigger on ``table`` for INSERT and one for UPDATE, one on each referenced table
    for DELETE."""
    arguments = ", ".join(f"'{part}'" for pair in references for part in pair)
    names = {event: f"{table}_references_{event.lower()}" for event in ("INSERT", "UPDATE")}
    forward = [
        f"""CREATE TRIGGER {name}
            AFTER {event} ON {table} REFERENCING NEW TABLE AS new_rows
            FOR EACH STATEMENT EXECUTE FUNCTION references_check({arguments});"""
        for event, name in names.items()
    ]
    reverse = [f"DROP TRIGGER IF EXISTS {name} ON {table};" for name in names.values()]
    for column, referenced in references:
        name = f"{table}_{column}_delete"
        forward.append(
            f"""CREATE TRIGGER {name}
                AFTER DELETE ON {referenced} REFERENCING OLD TABLE AS old_rows
                FOR EACH STATEMENT EXECUTE FUNCTION referenced_delete_check('{table}', '{column}');"""
        )
        reverse.append(f"DROP TRIGGER IF EXISTS {name} ON {referenced};")
    return "\n".join(forward), "\n".join(reverse)

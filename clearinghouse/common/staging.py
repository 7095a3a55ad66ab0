"""Staging tables for set-based writes: rows are COPYed into a temporary table that lives until
the end of the transaction, and one INSERT … SELECT, UPDATE … FROM or join then works on the set.

COPY sends rows as they are, formatted in C, where a query with arrays as parameters spells every
element out as an SQL literal first: for batches of thousands of rows that quoting cost more than
the database's own work. Bulk ingest and identity resolution stage their rows here.
"""


def stage_create(cursor, table, columns):
    """An empty temporary ``table`` with ``columns`` ("name type" strings), dropped at commit.

    A transaction that stages twice under one name (two batches in one transaction) gets the
    table emptied, not created again."""
    cursor.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS {table} ({', '.join(columns)}) ON COMMIT DROP; "
        f"TRUNCATE {table}"
    )


def stage_copy(cursor, table, columns, rows):
    """COPY ``rows`` (tuples in the order of ``columns``) into the staging ``table``."""
    names = ", ".join(column.split()[0] for column in columns)
    with cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def stage(cursor, table, columns, rows):
    """``stage_create`` then ``stage_copy``: a staging table holding exactly ``rows``."""
    stage_create(cursor, table, columns)
    stage_copy(cursor, table, columns, rows)


# Up to this many rows travel inside the query as arrays: a temporary table costs catalog
# writes and round trips that a single-row call (a consent form, one record) should not pay.
FEW_ROWS = 100


def row_source(cursor, table, columns, rows):
    """A FROM item named ``table`` holding ``rows``: (SQL, parameters) to put in a query.

    A few rows become ``unnest`` of array parameters; more are staged by COPY in a temporary
    table of that name. Either way the query refers to the columns as ``table.column``."""
    rows = list(rows)
    if len(rows) > FEW_ROWS:
        stage(cursor, table, columns, rows)
        return table, []
    names = ", ".join(column.split()[0] for column in columns)
    arrays = ", ".join(f"%s::{column.split(None, 1)[1]}[]" for column in columns)
    values = [list(values) for values in zip(*rows, strict=True)] if rows else [[] for _ in columns]
    return f"unnest({arrays}) AS {table}({names})", values


def insert_rows(cursor, table, columns, rows):
    """Insert ``rows`` into the (real) ``table``: COPY for many, one INSERT of unnest()ed array
    parameters for a few (a COPY costs round trips that one row should not pay)."""
    rows = list(rows)
    if len(rows) > FEW_ROWS:
        stage_copy(cursor, table, columns, rows)
    elif rows:
        source, params = row_source(cursor, "new_rows", columns, rows)
        names = ", ".join(column.split()[0] for column in columns)
        cursor.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM {source}", params)  # noqa: S608 (names from the caller's constants)

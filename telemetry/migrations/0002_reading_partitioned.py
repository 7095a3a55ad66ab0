"""The readings table, partitioned by month on ``ts``. Django only reads it (unmanaged model);
partitions are created ahead and dropped by ``telemetry.partitions``."""

from django.db import migrations

CREATE = """
CREATE TABLE telemetry_reading (
    device_id bigint NOT NULL,
    metric text NOT NULL,
    ts timestamptz NOT NULL,
    value double precision NOT NULL,
    CONSTRAINT telemetry_reading_unique UNIQUE (device_id, metric, ts)
) PARTITION BY RANGE (ts);
-- Time-ordered appends: a BRIN on ts per partition is tiny and serves range scans by time;
-- the unique btree serves per-device lookups.
CREATE INDEX telemetry_reading_ts_brin ON telemetry_reading USING brin (ts);
"""


class Migration(migrations.Migration):
    dependencies = [("telemetry", "0001_initial")]

    operations = [
        migrations.RunSQL(CREATE, "DROP TABLE IF EXISTS telemetry_reading CASCADE;"),
    ]

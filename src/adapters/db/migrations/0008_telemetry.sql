-- Telemetry: signals (plant master data) and their history.
--
-- History is stored in chunks: one row holds a run of samples of one signal (the samples of one
-- ingest batch), as parallel arrays. A row per sample costs a tuple header, an index entry and a
-- WAL record per value; a chunk pays them once per batch, which is what lets one PostgreSQL take
-- well over 100k values/s (ADR 0007). Chunks are range-partitioned by day on `t_first` so old
-- days can be detached or dropped whole, and a chunk never spans more than an hour, so a range
-- query prunes with `t_first >= from - 1 hour`.

CREATE TABLE signals (
  id            plant_id PRIMARY KEY,
  -- A compact number for the history tables (an int beats a text id in every chunk and index).
  signal_no     integer GENERATED ALWAYS AS IDENTITY UNIQUE,
  equipment_id  plant_id NOT NULL REFERENCES equipment (id) DEFERRABLE INITIALLY IMMEDIATE,
  name          text,
  description   text,
  data_type     text NOT NULL CHECK (data_type IN ('number', 'boolean', 'string')),
  unit_id       plant_id REFERENCES units (id) DEFERRABLE INITIALLY IMMEDIATE,
  limit_low     double precision,
  limit_high    double precision,
  deadband      double precision CHECK (deadband >= 0),
  source        jsonb NOT NULL,
  -- The source tag key (src/domain/signal/sample.ts `tagKey`): one signal per tag.
  source_tag    text NOT NULL UNIQUE,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  CHECK (limit_low IS NULL OR limit_high IS NULL OR limit_low <= limit_high)
);
CREATE INDEX signals_equipment_idx ON signals (equipment_id);
CREATE INDEX signals_unit_idx ON signals (unit_id);

-- Every running Loom reloads its tag map when this fires (committed writes only).
CREATE FUNCTION signals_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('loom_signals_changed', '');
  RETURN NULL;
END $$;
CREATE TRIGGER signals_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON signals
  FOR EACH STATEMENT EXECUTE FUNCTION signals_changed();

CREATE TABLE signal_chunks (
  signal_no   integer NOT NULL REFERENCES signals (signal_no),
  t_first     timestamptz NOT NULL,
  t_last      timestamptz NOT NULL,
  n           integer NOT NULL CHECK (n > 0),
  -- Samples that were not current when sent (Sparkplug is_historical: store-and-forward, backfill).
  historical  boolean NOT NULL,
  -- Source timestamps, UTC epoch ms, ascending.
  ts          bigint[] NOT NULL,
  -- Server (receive) timestamps, UTC epoch ms.
  rx          bigint[] NOT NULL,
  -- Values of number and boolean (0/1) signals; NULL elements are "no value".
  v           double precision[],
  -- Values of string signals.
  s           text[],
  -- Quality per sample: 0 good, 1 uncertain, 2 bad; NULL when every sample is good.
  q           smallint[],
  CHECK (t_first <= t_last),
  CHECK (t_last - t_first <= interval '1 hour'),
  CHECK (cardinality(ts) = n AND cardinality(rx) = n),
  CHECK ((v IS NULL) <> (s IS NULL)),
  CHECK (v IS NULL OR cardinality(v) = n),
  CHECK (s IS NULL OR cardinality(s) = n),
  CHECK (q IS NULL OR cardinality(q) = n)
) PARTITION BY RANGE (t_first);
CREATE INDEX signal_chunks_signal_idx ON signal_chunks (signal_no, t_first);
-- Samples with timestamps no daily partition covers (far backfill, a skewed clock) are kept here
-- rather than refused; `telemetry_ensure_partition` moves them when their day gets a partition.
CREATE TABLE signal_chunks_default PARTITION OF signal_chunks DEFAULT;

-- Creates the partition of one UTC day, moving rows of that day out of the default partition
-- (PostgreSQL refuses to attach a range the default partition has rows for). Serialised by an
-- advisory lock so several Loom instances can call it at start-up.
CREATE FUNCTION telemetry_ensure_partition(day date) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
  part text := format('signal_chunks_%s', to_char(day, 'YYYYMMDD'));
  lo timestamptz := day::timestamp AT TIME ZONE 'UTC';
  hi timestamptz := (day + 1)::timestamp AT TIME ZONE 'UTC';
BEGIN
  PERFORM pg_advisory_xact_lock(hashtext('loom.telemetry_ensure_partition'));
  IF to_regclass(part) IS NOT NULL THEN
    RETURN false;
  END IF;
  EXECUTE format('CREATE TABLE %I (LIKE signal_chunks INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part);
  EXECUTE format('INSERT INTO %I SELECT * FROM signal_chunks_default WHERE t_first >= %L AND t_first < %L', part, lo, hi);
  EXECUTE format('DELETE FROM signal_chunks_default WHERE t_first >= %L AND t_first < %L', lo, hi);
  EXECUTE format('ALTER TABLE signal_chunks ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', part, lo, hi);
  RETURN true;
END $$;

-- One-minute rollups of number and boolean signals, good-quality values only. Written in the
-- same transaction as the chunks they summarise, merged additively so several instances (and
-- late historical data) can add to the same minute.
CREATE TABLE signal_rollups_1m (
  signal_no  integer NOT NULL REFERENCES signals (signal_no),
  minute     timestamptz NOT NULL,
  n          integer NOT NULL CHECK (n > 0),
  sum        double precision NOT NULL,
  min        double precision NOT NULL,
  max        double precision NOT NULL,
  PRIMARY KEY (signal_no, minute)
);

-- Stale marks (Sparkplug NDEATH/DDEATH, a lost OPC UA session): a signal's latest value is
-- stale when it is older than `stale_since`. One row per signal, rewritten on each death.
CREATE TABLE signal_stale (
  signal_no    integer PRIMARY KEY REFERENCES signals (signal_no) ON DELETE CASCADE,
  stale_since  timestamptz NOT NULL,
  reason       text NOT NULL
);

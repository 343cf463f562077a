-- Compaction: a signal sampled slower than the ingest flush gets one chunk per sample (a 1 Hz
-- signal: 3,600 rows an hour). Once an hour is closed, its small chunks of one signal are merged
-- into one, sorted by source timestamp, in one statement: the same samples, one row. Only groups
-- that stay within one hour (the chunk span CHECK) and 4,096 samples are merged, and a group is
-- merged once: afterwards it is a single chunk. Returns the number of chunks removed.
CREATE FUNCTION telemetry_compact(closed_before timestamptz, max_groups integer) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
  removed bigint;
BEGIN
  -- Several instances run maintenance; one compaction at a time is enough.
  IF NOT pg_try_advisory_xact_lock(hashtext('loom.telemetry_compact')) THEN
    RETURN 0;
  END IF;
  WITH grp AS (
    SELECT signal_no, date_trunc('hour', t_first, 'UTC') AS h, historical
      FROM signal_chunks
     WHERE t_first < closed_before AND t_last < closed_before
       AND date_trunc('hour', t_last, 'UTC') = date_trunc('hour', t_first, 'UTC')
     GROUP BY 1, 2, 3
    HAVING count(*) > 1 AND sum(n) <= 4096
     LIMIT max_groups
  ), gone AS (
    DELETE FROM signal_chunks c
     USING grp g
     WHERE c.signal_no = g.signal_no AND c.historical = g.historical
       AND c.t_first >= g.h AND c.t_first < g.h + interval '1 hour'
       AND date_trunc('hour', c.t_last, 'UTC') = g.h
    RETURNING c.*
  ), merged AS (
    INSERT INTO signal_chunks (signal_no, t_first, t_last, n, historical, ts, rx, v, s, q)
    SELECT d.signal_no,
           to_timestamp(min(u.t) / 1000.0),
           to_timestamp(max(u.t) / 1000.0),
           count(*),
           d.historical,
           array_agg(u.t ORDER BY u.t),
           array_agg(u.rx ORDER BY u.t),
           CASE WHEN bool_or(d.v IS NOT NULL) THEN array_agg(u.v ORDER BY u.t) END,
           CASE WHEN bool_or(d.s IS NOT NULL) THEN array_agg(u.s ORDER BY u.t) END,
           CASE WHEN bool_or(d.q IS NOT NULL) THEN array_agg(coalesce(u.q, 0::smallint) ORDER BY u.t) END
      FROM gone d
      CROSS JOIN LATERAL unnest(d.ts, d.rx, d.v, d.s, d.q) AS u (t, rx, v, s, q)
     GROUP BY d.signal_no, date_trunc('hour', d.t_first, 'UTC'), d.historical
    RETURNING n
  )
  SELECT (SELECT count(*) FROM gone) - (SELECT count(*) FROM merged) INTO removed;
  RETURN removed;
END $$;

-- Retention: drops the daily partitions of days before `keep_from` (whole days, no row deletes).
-- Rollups are kept: they are small and answer long ranges.
CREATE FUNCTION telemetry_drop_partitions_before(keep_from date) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  part record;
  dropped integer := 0;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtext('loom.telemetry_ensure_partition'));
  FOR part IN
    SELECT c.relname FROM pg_inherits i
      JOIN pg_class c ON c.oid = i.inhrelid
      JOIN pg_class p ON p.oid = i.inhparent
     WHERE p.relname = 'signal_chunks' AND c.relname ~ '^signal_chunks_[0-9]{8}$'
       AND to_date(substring(c.relname FROM 15), 'YYYYMMDD') < keep_from
  LOOP
    EXECUTE format('DROP TABLE %I', part.relname);
    dropped := dropped + 1;
  END LOOP;
  RETURN dropped;
END $$;

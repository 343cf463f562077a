/**
 * History query latency (issue #5): a day of one signal at 1 Hz, downsampled to 1,000 points,
 * target < 100 ms; and a two-hour window (buckets from the samples themselves). Baseline in the
 * same run: the same aggregation over a plain row-per-sample table with a (signal, ts) index.
 *
 *   node --import tsx bench/history.ts        (LOOM_BENCH_DATABASE_URL, LOOM_BENCH_HISTORY_RUNS=30)
 *
 * The day is stored as a live 1 Hz signal is: one chunk per sample (a 500 ms flush never holds
 * two samples of it), 86,400 chunk rows, with its one-minute rollups.
 */
import pg from 'pg';
import pino from 'pino';
import { randomDatabaseName } from '../src/adapters/db/embedded-postgres-server.ts';
import { migrate } from '../src/adapters/db/migrate.ts';
import { createDatabase } from '../src/adapters/db/postgres-pool.ts';
import { postgresSampleStore } from '../src/adapters/db/postgres-sample-store.ts';
import { postgresSignalHistory } from '../src/adapters/db/postgres-signal-history.ts';
import type { MappedSignal, SignalSeries } from '../src/app/telemetry/sample-store.ts';
import { signalHistory } from '../src/app/telemetry/signal-history.ts';
import { median, percentile } from './load.ts';
import { fmt, table } from './markdown.ts';

const serverUrl = process.env.LOOM_BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const runs = Number(process.env.LOOM_BENCH_HISTORY_RUNS ?? 30);
const DAY = Date.parse('2026-11-24T00:00:00Z');
const SAMPLES = 86_400;

const name = randomDatabaseName();
const admin = new pg.Client({ connectionString: serverUrl });
await admin.connect();
await admin.query(`CREATE DATABASE ${name}`);
const url = serverUrl.replace(/\/[^/?]*(\?.*)?$/, `/${name}$1`);
const db = createDatabase(url, { poolSize: 4, logger: pino({ level: 'silent' }) });
try {
  await migrate(db);
  await db.query(`SELECT telemetry_ensure_partition('2026-11-24')`);
  await db.query(`INSERT INTO equipment (id, level, name) VALUES ('ent', 'Enterprise', 'Enterprise')`);
  const r = await db.query<{ signal_no: number }>(
    `INSERT INTO signals (id, equipment_id, data_type, source, source_tag)
     VALUES ('oven.temperature', 'ent', 'number', '{}', 'bench:oven.temperature') RETURNING signal_no`,
  );
  const signal: MappedSignal = {
    no: r.rows[0]!.signal_no,
    id: 'oven.temperature',
    equipment: 'ent',
    dataType: 'number',
    deadband: 0,
    tag: 'bench:oven.temperature',
    source: { sparkplug: { group: 'bench', edgeNode: 'bench', metric: 'oven.temperature' } },
  };
  const value = (i: number) => 180 + 20 * Math.sin(i / 600) + (i % 7) / 10;
  const store = postgresSampleStore(db);
  for (let start = 0; start < SAMPLES; start += 14_400) {
    const series: SignalSeries[] = [];
    for (let i = start; i < Math.min(SAMPLES, start + 14_400); i++) {
      const t = DAY + i * 1000;
      series.push({
        signal,
        historical: false,
        checked: false,
        ts: [t],
        rx: [t],
        v: [value(i)],
        s: [],
        q: [0],
        allGood: true,
      });
    }
    await store.write(series, []);
  }
  await db.query(
    `CREATE TABLE plain_samples (ts timestamptz NOT NULL, signal int NOT NULL, value float8 NOT NULL)`,
  );
  await db.query(
    `INSERT INTO plain_samples SELECT to_timestamp(($1::int8 + i * 1000) / 1000.0), $2, 180 + 20 * sin(i / 600.0) + (i % 7) / 10.0
       FROM generate_series(0, $3 - 1) AS i`,
    [DAY, signal.no, SAMPLES],
  );
  await db.query('CREATE INDEX ON plain_samples (signal, ts)');
  await db.query('VACUUM ANALYZE');
  const chunks = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM signal_chunks');

  const history = postgresSignalHistory(db);
  const time = async (fn: () => Promise<unknown>) => {
    for (let i = 0; i < 3; i++) await fn();
    const ms: number[] = [];
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      await fn();
      ms.push(performance.now() - t0);
    }
    return {
      p50: median(ms),
      p99: percentile(
        [...ms].sort((a, b) => a - b),
        99,
      ),
    };
  };
  const loomQuery = (from: number, to: number) => async () => {
    const h = await signalHistory(history, signal.id, {
      from: new Date(from),
      to: new Date(to),
      maxPoints: 1000,
    });
    if (!h.ok || h.value.history.mode !== 'buckets') throw new Error('expected buckets');
    return h;
  };
  const plainQuery = (from: number, to: number, bucketMs: number) => () =>
    db.query(
      `SELECT date_bin($4::interval, ts, $1) AS t, avg(value), min(value), max(value), count(*)
         FROM plain_samples WHERE signal = $3 AND ts >= $1 AND ts < $2 GROUP BY 1 ORDER BY 1`,
      [new Date(from), new Date(to), signal.no, `${bucketMs} milliseconds`],
    );
  const day = { from: DAY, to: DAY + 86_400_000 };
  const twoHours = { from: DAY + 10 * 3_600_000, to: DAY + 12 * 3_600_000 };
  const rows: (string | number)[][] = [];
  for (const [label, range, bucketMs] of [
    ['a day at 1 Hz → 1,000 points (Loom: one-minute rollups, 2-min buckets)', day, 120_000],
    ['2 hours at 1 Hz → 1,000 points (Loom: buckets from samples, 7.2 s)', twoHours, 7200],
  ] as const) {
    const loom = await time(loomQuery(range.from, range.to));
    const plain = await time(plainQuery(range.from, range.to, bucketMs));
    rows.push([label, loom.p50, loom.p99, plain.p50, plain.p99, `${fmt(plain.p50 / loom.p50)}×`]);
  }
  console.log(
    `\n## ${new Date().toISOString().slice(0, 10)}: history queries, \`node --import tsx bench/history.ts\`\n\n` +
      `- One number signal, ${fmt(SAMPLES)} samples over a day stored as a live 1 Hz signal is (${fmt(chunks.rows[0]!.n)} chunk rows); ` +
      `baseline: the same samples as rows of a plain (ts, signal, value) table with a (signal, ts) index, aggregated with date_bin.\n` +
      `- ${runs} runs per query after 3 warm-up runs; PostgreSQL at ${serverUrl.replace(/\/\/[^@]*@/, '//')}.\n\n` +
      table(
        ['query', 'Loom p50 ms', 'Loom p99 ms', 'plain table p50 ms', 'plain p99 ms', 'plain / Loom'],
        rows,
      ),
  );
} finally {
  await db.close();
  await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin.end();
}

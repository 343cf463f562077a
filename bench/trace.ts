import { readFileSync } from 'node:fs';
import pg from 'pg';
import pino from 'pino';
import { postgresGenealogyStore, walkSql } from '../src/adapters/db/postgres-genealogy-store.ts';
import { createDatabase } from '../src/adapters/db/postgres-pool.ts';
import { GenealogyTrace, reachedKeys, TRACE_DEPTH_LIMIT } from '../src/app/material/trace-genealogy.ts';
import { freePort, startChild, type BenchChild } from './child-process.ts';
import { BenchClient, median, percentile } from './load.ts';
import { fmt, table } from './markdown.ts';
import type { BenchPostgres } from './postgres.ts';

export interface TraceOptions {
  /** Genealogy edges to generate (issue #3: 1,000,000). */
  readonly edges: number;
  /** Requests per cell (direction × starting level). */
  readonly samples: number;
  /** A cell stops after this many seconds even if it has fewer samples. */
  readonly cellSeconds: number;
}

const ADMIN_PASSWORD = 'bench-admin-password-2026';
const PLANT_YAML = readFileSync(new URL('../examples/plant.yaml', import.meta.url), 'utf8');

/** Levels 0 (received raw material) … 12 (finished units). */
const TOP = 12;
/** Each level has this share of the lots of the level below: sub-assemblies consolidate. */
const SHRINK = 0.85;
/** Inputs per produced lot, drawn from a window of neighbouring lots of the level below. */
const FAN_IN = 4;
const WINDOW = 6;
/** One bulk raw lot (sealer, paint) feeds this many consecutive level-1 lots. */
const BULK_SPAN = 500;

interface Shape {
  readonly sizes: number[];
  readonly bulk: number;
}

/**
 * Level sizes for `edges` edges: level L ≥ 1 has n₁·0.85^(L-1) lots, each with 4 inputs from
 * the level below plus, at level 1, one bulk lot; level 0 has n₁/0.85 lots plus the bulk lots.
 */
function shapeFor(edges: number): Shape {
  let factor = 0;
  for (let l = 1; l <= TOP; l++) factor += SHRINK ** (l - 1);
  const n1 = edges / (FAN_IN * factor + 1);
  const sizes = [Math.round(n1 / SHRINK)];
  for (let l = 1; l <= TOP; l++) sizes.push(Math.max(1, Math.round(n1 * SHRINK ** (l - 1))));
  return { sizes, bulk: Math.ceil(sizes[1]! / BULK_SPAN) };
}

const lotId = (level: number, i: number | string) => `'L${String(level).padStart(2, '0')}-' || ${i}`;

/**
 * Writes the genealogy with set-based SQL: every produced lot has its own (Completed) operation,
 * in production orders of 1,000 operations, and one quality result, so the trace query's joins
 * and quality lookups do the work they do on a real plant. The edges into one lot share a time (one
 * transaction wrote them), and every lot's differs from the others'. Neighbouring lots share inputs (a
 * window over the level below), so trees grow like a real plant's, not like a random graph's.
 */
async function generate(sql: pg.Client, shape: Shape, log: (l: string) => void): Promise<number> {
  const mat = async (classes: string[]) =>
    (
      await sql.query<{ id: string; unit_id: string }>(
        `SELECT id, unit_id FROM material_definitions WHERE class = ANY($1) ORDER BY array_position($1, class), id LIMIT 1`,
        [classes],
      )
    ).rows[0]!;
  const raw = await mat(['raw', 'component']);
  const bulk = await mat(['consumable', 'raw']);
  const mid = await mat(['intermediate', 'component']);
  const fin = await mat(['finished']);
  const { sizes } = shape;
  await sql.query(`SET synchronous_commit = off`);

  await sql.query(
    `INSERT INTO lots (id, kind, material_id, quantity, unit_id, status, supplier_lot)
     SELECT ${lotId(0, 'g')}, 'lot', $1, 1000, $2, 'Released', 'SUP-' || g FROM generate_series(0, $3::int - 1) g
     UNION ALL
     SELECT 'BULK-' || g, 'lot', $4, 200, $5, 'Released', 'SUP-B' || g FROM generate_series(0, $6::int - 1) g`,
    [raw.id, raw.unit_id, sizes[0], bulk.id, bulk.unit_id, shape.bulk],
  );
  for (let level = 1; level <= TOP; level++) {
    const n = sizes[level]!;
    const below = sizes[level - 1]!;
    const m = level === TOP ? fin : mid;
    const order = `'BENCH-L${level}-' || (g / 1000)`;
    await sql.query(
      `INSERT INTO production_orders (id, product_id, material_id, quantity, unit_id, state, released_at,
                                      started_at, completed_at, created_by)
       SELECT 'BENCH-L${level}-' || c, 'compact-sedan', 'compact-sedan', 1000, 'pcs', 'Completed',
              now() - interval '30 days', now() - interval '30 days', now() - interval '29 days', 'bench'
         FROM generate_series(0, ($1::int - 1) / 1000) c`,
      [n],
    );
    await sql.query(
      `INSERT INTO order_operations (order_id, operation_id, sequence, name, work_center_id, work_unit_id,
                                     standard_cycle_time_s, planned_quantity, good_quantity, state,
                                     started_at, started_by, person_id, completed_at, completed_by)
       SELECT ${order}, g::text, g % 1000, 'Assemble level ${level}', 'body-line-1', 'weld-robot-1', 60, 1, 1,
              'Completed', now() - interval '30 days', 'anna.berger', 'op-anna-berger',
              now() - interval '30 days' + g * interval '1 second', 'anna.berger'
         FROM generate_series(0, $1::int - 1) g`,
      [n],
    );
    await sql.query(
      `INSERT INTO lots (id, kind, material_id, quantity, unit_id, status, produced_by, order_id)
       SELECT ${lotId(level, 'g')}, 'lot', $2, 0, $3, 'Consumed', o.id, o.order_id
         FROM generate_series(0, $1::int - 1) g
         JOIN order_operations o ON o.order_id = ${order} AND o.operation_id = g::text`,
      [n, m.id, m.unit_id],
    );
    // Inputs: FAN_IN distinct lots from a window of WINDOW around the proportional position below.
    await sql.query(
      `INSERT INTO genealogy_edges (from_lot, to_lot, kind, quantity, operation_pk, actor, person_id, equipment_id, at)
       SELECT DISTINCT ON (f, t) f, t, 'consume', 1, l.produced_by, 'anna.berger', 'op-anna-berger', 'weld-robot-1',
              now() - interval '30 days' + ${level} * interval '1 hour' + x.g * interval '1 second'
         FROM (SELECT ${lotId(
           level - 1,
           `LEAST($2::int - 1, GREATEST(0,
                         floor(g * $2::float8 / $1::int)::int + ((k * 5 + g) % ${WINDOW}) - ${WINDOW / 2}))`,
         )} AS f,
                      ${lotId(level, 'g')} AS t, g
                 FROM generate_series(0, $1::int - 1) g, generate_series(0, ${FAN_IN - 1}) k) x
         JOIN lots l ON l.id = x.t`,
      [n, below],
    );
    if (level === 1) {
      await sql.query(
        `INSERT INTO genealogy_edges (from_lot, to_lot, kind, quantity, operation_pk, actor, person_id, equipment_id, at)
         SELECT 'BULK-' || (g / ${BULK_SPAN}), l.id, 'consume', 0.4, l.produced_by, 'anna.berger', 'op-anna-berger',
                'weld-robot-1', now() - interval '30 days'
           FROM generate_series(0, $1::int - 1) g JOIN lots l ON l.id = ${lotId(1, 'g')}`,
        [n],
      );
    }
    await sql.query(
      `INSERT INTO quality_results (operation_pk, characteristic_id, kind, value_numeric, lsl, usl, verdict, lot_id,
                                    actor, person_id, at)
       SELECT l.produced_by, 'nugget-diameter', 'numeric', 6.1, 5, NULL, 'pass', l.id, 'anna.berger',
              'op-anna-berger', now() - interval '30 days'
         FROM lots l WHERE l.id LIKE 'L${String(level).padStart(2, '0')}-%'`,
    );
    log(`    level ${level}: ${fmt(n)} lots`);
  }
  // A genealogy of a million edges is months of production, long since vacuumed: measure that
  // steady state, not autovacuum working through a freshly bulk-loaded table (and setting hint
  // bits on first reads) while the requests run. The checkpoint writes the load out beforehand.
  await sql.query('VACUUM (ANALYZE)');
  await sql.query('CHECKPOINT').catch(() => undefined); // needs pg_checkpoint on a shared server
  return (await sql.query<{ n: number }>('SELECT count(*)::int AS n FROM genealogy_edges')).rows[0]!.n;
}

/** Seeded PRNG (mulberry32): the same sample of lots on every run. */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Cell {
  readonly direction: 'backward' | 'forward';
  readonly label: string;
  readonly level: number;
  readonly ids: (rand: () => number) => string;
}

interface CellResult {
  readonly cell: Cell;
  readonly latencies: number[];
  readonly edges: number[];
  readonly lots: number[];
  readonly bytes: number[];
  /** The store's queries alone (walk, then operations, quality results and lots side by side). */
  readonly storeMs: number[];
  /** The use case's answer as the API sends it (traceJson: store queries, tree, JSON). */
  readonly useCaseMs: number[];
  failures: number;
}

/**
 * Issue #3 benchmark 2: trace latency through the API on a generated genealogy, sequential
 * requests (one client) from random starting lots per direction and level.
 */
/**
 * A trace answer's counts, read from its last bytes instead of parsing it: the load generator
 * parsing a megabyte of JSON after every request kept its garbage collector's threads busy on the
 * machine's two cores during the next request (outside the bench, level-12 p50 2–4 ms higher; session 13).
 * With `check`, the answer is parsed in full as well and both must agree.
 */
function countsOf(body: string, check: boolean): { lotCount: number; edgeCount: number } {
  const tail =
    /"lotCount":(\d+),"edgeCount":(\d+),"depthLimit":\d+,"depthLimitReached":(?:true|false)\}$/.exec(
      body.slice(-160),
    );
  if (!tail || check) {
    const parsed = JSON.parse(body) as { lotCount: number; edgeCount: number };
    if (tail && (Number(tail[1]) !== parsed.lotCount || Number(tail[2]) !== parsed.edgeCount)) {
      throw new Error(
        `trace answer counts read from its end (${tail[1]}, ${tail[2]}) differ from the parsed answer`,
      );
    }
    return { lotCount: parsed.lotCount, edgeCount: parsed.edgeCount };
  }
  return { lotCount: Number(tail[1]), edgeCount: Number(tail[2]) };
}

export async function benchTrace(
  postgres: BenchPostgres,
  opts: TraceOptions,
  log: (line: string) => void,
): Promise<{ markdown: string }> {
  const database = await postgres.createDatabase('loom_bench_trace');
  let loom: BenchChild | undefined;
  let client: BenchClient | undefined;
  const sql = new pg.Client({ connectionString: database.url });
  sql.on('error', () => undefined);
  const db = createDatabase(database.url, { poolSize: 2, logger: pino({ level: 'silent' }) });
  try {
    loom = await startChild('./loom-server-child.ts', {
      env: {
        LOOM_DATABASE_URL: database.url,
        LOOM_HOST: '127.0.0.1',
        LOOM_PORT: String(await freePort()),
        LOOM_ADMIN_PASSWORD: ADMIN_PASSWORD,
        LOOM_LOG_LEVEL: process.env.LOOM_BENCH_LOG_LEVEL ?? 'info',
      },
    });
    client = new BenchClient(loom.url, 1);
    const login = await client.request('POST', '/api/auth/login', {
      body: JSON.stringify({ username: 'admin', password: ADMIN_PASSWORD }),
    });
    const setCookie = login.headers['set-cookie'] ?? [];
    const cookie = setCookie.map((c) => c.split(';')[0]!).find((c) => c.startsWith('loom_session='));
    if (!cookie) throw new Error(`admin login failed: ${login.status} ${login.body}`);
    await client.json('POST', '/api/plant/import', 200, {
      raw: PLANT_YAML,
      contentType: 'application/yaml',
      cookie,
    });

    await sql.connect();
    const shape = shapeFor(opts.edges);
    log(`  generating ~${fmt(opts.edges)} genealogy edges over ${TOP + 1} levels…`);
    const genStarted = performance.now();
    const edgeCount = await generate(sql, shape, log);
    const genSeconds = (performance.now() - genStarted) / 1000;
    const lotCount = (await sql.query<{ n: number }>('SELECT count(*)::int AS n FROM lots')).rows[0]!.n;
    log(`  ${fmt(edgeCount)} edges, ${fmt(lotCount)} lots in ${genSeconds.toFixed(0)} s`);

    const at = (level: number) => (rand: () => number) =>
      `L${String(level).padStart(2, '0')}-${Math.floor(rand() * shape.sizes[level]!)}`;
    const cells: Cell[] = [
      { direction: 'backward', label: 'finished unit (level 12)', level: 12, ids: at(12) },
      { direction: 'backward', label: 'sub-assembly (level 9)', level: 9, ids: at(9) },
      { direction: 'backward', label: 'sub-assembly (level 6)', level: 6, ids: at(6) },
      { direction: 'backward', label: 'part (level 3)', level: 3, ids: at(3) },
      { direction: 'forward', label: 'sub-assembly (level 9)', level: 9, ids: at(9) },
      { direction: 'forward', label: 'sub-assembly (level 6)', level: 6, ids: at(6) },
      { direction: 'forward', label: 'part (level 3)', level: 3, ids: at(3) },
      { direction: 'forward', label: 'raw lot (level 0)', level: 0, ids: at(0) },
      {
        direction: 'forward',
        label: `bulk raw lot (level 0, feeds ${BULK_SPAN} level-1 lots)`,
        level: 0,
        ids: (rand) => `BULK-${Math.floor(rand() * shape.bulk)}`,
      },
    ];

    const store = postgresGenealogyStore(db);
    const trace = new GenealogyTrace({ genealogy: store });
    const rand = prng(20261125);
    // Warm-up: caches and the server's JIT, on lots the cells do not use.
    for (let i = 0; i < 20; i++) {
      const c = cells[i % cells.length]!;
      await client.request('GET', `/api/trace/${c.direction}/${c.ids(rand)}`, { cookie });
    }
    const results: CellResult[] = [];
    for (const cell of cells) {
      const r: CellResult = {
        cell,
        latencies: [],
        edges: [],
        lots: [],
        bytes: [],
        storeMs: [],
        useCaseMs: [],
        failures: 0,
      };
      const sampled: string[] = [];
      const started = performance.now();
      while (r.latencies.length < opts.samples && performance.now() - started < opts.cellSeconds * 1000) {
        const id = cell.ids(rand);
        const t0 = performance.now();
        const res = await client.request('GET', `/api/trace/${cell.direction}/${id}`, { cookie });
        r.latencies.push(performance.now() - t0);
        if (res.status !== 200) {
          r.failures++;
          continue;
        }
        const body = countsOf(res.body, r.latencies.length === 1);
        r.edges.push(body.edgeCount);
        r.lots.push(body.lotCount);
        r.bytes.push(Buffer.byteLength(res.body));
        if (sampled.length < 10) sampled.push(id);
      }
      // Where the time goes, for the cell's first 10 lots, after its timed requests (so the bench
      // process's own garbage does not land in them): the store alone, then the use case with JSON.
      for (const id of sampled) {
        const w0 = performance.now();
        const walked = await store.walk(id, cell.direction, TRACE_DEPTH_LIMIT);
        await store.reached(reachedKeys(id, walked.edges));
        const w1 = performance.now();
        await trace.traceJson(id, cell.direction);
        r.storeMs.push(w1 - w0);
        r.useCaseMs.push(performance.now() - w1);
      }
      r.latencies.sort((a, b) => a - b);
      results.push(r);
      log(
        `  ${cell.direction} from ${cell.label}: p50 ${fmt(percentile(r.latencies, 50))} ms, p99 ${fmt(percentile(r.latencies, 99))} ms, ` +
          `${fmt(median(r.edges))} edges (${r.latencies.length} requests)`,
      );
    }

    // The plan of the walk for the largest typical case, for the record.
    const sample = cells[0]!.ids(prng(1));
    const plan = await sql.query<{ 'QUERY PLAN': string }>(
      `EXPLAIN (ANALYZE, BUFFERS, COSTS ON) ${walkSql('backward')}`,
      [sample],
    );
    const reach = await sql.query<{ lots: number; edges: number }>(
      `WITH w AS (${walkSql('backward')}) SELECT count(DISTINCT from_lot)::int AS lots, count(*)::int AS edges FROM w`,
      [sample],
    );
    const meets = results.every((r) => percentile(r.latencies, 99) <= 50);
    const markdown = [
      `### Trace latency (${fmt(edgeCount)} genealogy edges, ${fmt(lotCount)} lots, ${TOP + 1} levels; one client, sequential requests)\n`,
      `Shape: level 0 has ${fmt(shape.sizes[0]!)} raw lots and ${fmt(shape.bulk)} bulk lots; level L ≥ 1 has ${SHRINK} × the lots of the level below ` +
        `(${shape.sizes
          .slice(1)
          .map((n) => fmt(n))
          .join(', ')}), each made from ${FAN_IN} lots of a window of ${WINDOW} neighbours below ` +
        `(plus one bulk lot at level 1); every produced lot has its own operation and quality result. Generated in ${genSeconds.toFixed(0)} s.\n`,
      table(
        [
          'direction',
          'from',
          'requests',
          'p50 ms',
          'p99 ms',
          'max ms',
          'tree edges (median)',
          'tree lots (median)',
          'response KB (median)',
          'store queries ms (median)',
          'use case + JSON ms (median)',
          'p99 ≤ 50 ms',
        ],
        results.map((r) => [
          r.cell.direction,
          r.cell.label,
          r.latencies.length,
          percentile(r.latencies, 50),
          percentile(r.latencies, 99),
          r.latencies.at(-1) ?? Number.NaN,
          median(r.edges),
          median(r.lots),
          median(r.bytes) / 1024,
          median(r.storeMs),
          median(r.useCaseMs),
          percentile(r.latencies, 99) <= 50 ? 'yes' : 'no',
        ]),
      ),
      `\nTarget p99 ≤ 50 ms: ${meets ? 'met in every cell' : 'not met in every cell (see the last column)'}. ` +
        `"store queries" is the genealogy store's trace alone (the walk, then the operations, quality results and lots it reached, side by side on three connections); "use case + JSON" is the use case's JSON answer in the bench process (traceJson: store queries, building and serialising the tree, which overlap); the first 10 lots of each cell, timed after its requests. The rest of a request's time is HTTP (session check, sending the body).`,
      `\nThe store's walk backward from ${sample} (over lots, each expanded once, then the edges into them): ${fmt(reach.rows[0]!.edges)} edges from ${fmt(reach.rows[0]!.lots)} lots.\n`,
      '<details><summary>EXPLAIN (ANALYZE, BUFFERS)</summary>\n\n```',
      ...plan.rows.map((r) => r['QUERY PLAN']),
      '```\n</details>',
    ].join('\n');
    return { markdown };
  } finally {
    client?.close();
    await sql.end().catch(() => undefined);
    await db.close().catch(() => undefined);
    await loom?.stop();
    // LOOM_BENCH_TRACE_KEEP=1 keeps the generated genealogy for profiling the trace by hand.
    if (process.env.LOOM_BENCH_TRACE_KEEP === '1') log(`  kept the trace database: ${database.url}`);
    else await database.drop().catch((e: Error) => log(`  could not drop the trace database: ${e.message}`));
  }
}

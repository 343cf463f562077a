import { readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { startChild, type BenchChild, freePort } from './child-process.ts';
import {
  summarizeAllocations,
  summarizeProfile,
  type AllocationProfile,
  type CpuProfile,
} from './cpu-profile.ts';
import { measureCpu, postmasterPidOf, type CpuSplit } from './cpu-usage.ts';
import { BenchClient, closedLoop, inParallel, median, percentile, type LoadResult } from './load.ts';
import { fmt, table } from './markdown.ts';
import type { BenchPostgres } from './postgres.ts';
import type { QueryStat } from './query-stats.ts';

export interface CompletionsOptions {
  /** Concurrent keep-alive clients (issue #3: 16). */
  readonly concurrency: number;
  /** Completions per measured run. */
  readonly count: number;
  readonly warmup: number;
  readonly runs: number;
  /** pg pool size of Loom and of the baseline alike (Loom's default: 10). */
  readonly poolSize: number;
  /** Loom's log level; the default `info` logs every request, as a production install does. */
  readonly logLevel: string;
  /** One profiled run: statement counts and a CPU profile of the Loom process. */
  readonly profile: boolean;
}

const ADMIN_PASSWORD = 'bench-admin-password-2026';
const OPERATOR = { username: 'anna.berger', password: 'bench operator password 2026' };
const PLANT_YAML = readFileSync(new URL('../examples/plant.yaml', import.meta.url), 'utf8');

const BASELINE_SCHEMA = `
  CREATE TABLE bench_ops (id bigint PRIMARY KEY, state text NOT NULL, good integer NOT NULL DEFAULT 0,
                          completed_at timestamptz);
  CREATE TABLE bench_events (id bigserial PRIMARY KEY, op_id bigint NOT NULL REFERENCES bench_ops (id),
                             kind text NOT NULL, quantity integer NOT NULL,
                             at timestamptz NOT NULL DEFAULT now());
  CREATE TABLE bench_log (id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now(),
                          entity_id text NOT NULL, action text NOT NULL, new_value jsonb);`;

interface RunRow {
  readonly target: 'Loom' | 'baseline';
  readonly run: number;
  readonly result: LoadResult;
  readonly cpu: CpuSplit;
  /** Loom only: audit entries still unchained when the run ended, and the time to chain them. */
  readonly auditBacklog?: number;
  readonly auditDrainMs?: number;
}

export interface CompletionsResult {
  readonly markdown: string;
  readonly loomPerSecond: number;
  readonly baselinePerSecond: number;
}

function cookieOf(setCookie: string[] | undefined): string {
  const c = setCookie?.map((x) => x.split(';')[0]!).find((x) => x.startsWith('loom_session='));
  if (!c) throw new Error('login returned no loom_session cookie');
  return c;
}

async function login(client: BenchClient, username: string, password: string): Promise<string> {
  const res = await client.request('POST', '/api/auth/login', {
    body: JSON.stringify({ username, password }),
  });
  if (res.status !== 200) throw new Error(`login ${username}: ${res.status} ${res.body}`);
  const h = res.headers['set-cookie'];
  return cookieOf(Array.isArray(h) ? h : h ? [h] : undefined);
}

/** Waits until the audit chainer has linked every entry (ADR 0005), so runs do not overlap its work. */
async function drainAudit(db: pg.Client, timeoutMs = 120_000): Promise<{ backlog: number; ms: number }> {
  const t0 = performance.now();
  const pending = async () =>
    (
      await db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM audit_log a WHERE NOT EXISTS (SELECT 1 FROM audit_chain c WHERE c.entry_id = a.id)`,
      )
    ).rows[0]!.n;
  const backlog = await pending();
  let n = backlog;
  while (n > 0) {
    if (performance.now() - t0 > timeoutMs) throw new Error(`audit chain still ${n} entries behind`);
    await new Promise((r) => setTimeout(r, 100));
    n = await pending();
  }
  return { backlog, ms: performance.now() - t0 };
}

/**
 * Starts pg_stat_statements afresh for a profiled run; false when the server does not have it
 * loaded (an external LOOM_BENCH_DATABASE_URL without it in shared_preload_libraries).
 */
async function resetStatementStats(db: pg.Client): Promise<boolean> {
  try {
    await db.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
    await db.query('SELECT pg_stat_statements_reset()');
    return true;
  } catch {
    return false;
  }
}

/**
 * PostgreSQL's side of the profiled run, from pg_stat_statements: Loom's statements with their
 * planning and execution time and the WAL they wrote, and the WAL per request of Loom and of the
 * baseline (its run follows Loom's), since every WAL byte is written and flushed at commit.
 */
async function statementStatsTables(db: pg.Client, baseUrl: string, n: number): Promise<string[]> {
  const baseName = decodeURIComponent(new URL(baseUrl).pathname.slice(1));
  const { rows } = await db.query<{
    query: string;
    calls: string;
    plan_ms: number;
    exec_ms: number;
    rows: string;
    wal_bytes: string;
  }>(
    `SELECT left(regexp_replace(query, '[[:space:]]+', ' ', 'g'), 110) AS query, calls, total_plan_time AS plan_ms,
            total_exec_time AS exec_ms, rows, wal_bytes
       FROM pg_stat_statements
      WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
      ORDER BY total_plan_time + total_exec_time DESC LIMIT 25`,
  );
  const wal = await db.query<{ datname: string; wal_bytes: string }>(
    `SELECT d.datname, sum(s.wal_bytes)::text AS wal_bytes
       FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
      WHERE d.datname IN (current_database(), $1) GROUP BY d.datname`,
    [baseName],
  );
  const walOf = (loom: boolean) =>
    Number(wal.rows.find((r) => (r.datname === baseName) !== loom)?.wal_bytes ?? Number.NaN) / n;
  return [
    `
PostgreSQL's side of the run (pg_stat_statements; times are server time per statement, lock waits included):
`,
    table(
      [
        'statement',
        'calls per completion',
        'plan ms (mean)',
        'exec ms (mean)',
        'rows (mean)',
        'WAL bytes per completion',
      ],
      rows.map((r) => [
        '`' + r.query.replace(/\|/g, '\\|') + '`',
        Number(r.calls) / n,
        r.plan_ms / Number(r.calls),
        r.exec_ms / Number(r.calls),
        Number(r.rows) / Number(r.calls),
        Number(r.wal_bytes) / n,
      ]),
    ),
    `
WAL written per request: Loom ${fmt(walOf(true))} bytes, baseline ${fmt(walOf(false))} bytes.`,
  ];
}

async function walPosition(db: pg.Client): Promise<string> {
  return (await db.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn')).rows[0]!.lsn;
}

/**
 * The WAL written during the Loom run by record type (pg_walinspect; the whole cluster, so the
 * audit chainer's share is in it): which rows, index entries and full-page images a completion
 * costs. Empty when the extension is not available.
 */
async function walRecordTables(
  db: pg.Client,
  range: { from: string; to: string },
  n: number,
): Promise<string[]> {
  try {
    await db.query('CREATE EXTENSION IF NOT EXISTS pg_walinspect');
    const { rows } = await db.query<{
      record_type: string;
      count: string;
      record_size: string;
      fpi_size: string;
      combined_size: string;
    }>(
      `SELECT "resource_manager/record_type" AS record_type, count, record_size, fpi_size, combined_size
         FROM pg_get_wal_stats($1::pg_lsn, $2::pg_lsn, true)
        WHERE count > 0 ORDER BY combined_size DESC LIMIT 20`,
      [range.from, range.to],
    );
    return [
      `
WAL written during the Loom run, by record type (pg_walinspect, whole cluster):
`,
      table(
        [
          'record type',
          'records per completion',
          'record bytes per completion',
          'full-page image bytes per completion',
        ],
        rows.map((r) => [
          r.record_type,
          Number(r.count) / n,
          Number(r.record_size) / n,
          Number(r.fpi_size) / n,
        ]),
      ),
    ];
  } catch (e) {
    return [
      `
(WAL by record type not available: ${(e as Error).message})`,
    ];
  }
}

/**
 * Issue #3 benchmark 1: operation completions through the HTTP API of a real Loom server, with
 * `concurrency` keep-alive clients, against a bare Fastify + pg baseline doing one comparable
 * transaction; runs alternate (Loom, baseline, Loom, …) so drift hits both alike.
 */
export async function benchCompletions(
  postgres: BenchPostgres,
  opts: CompletionsOptions,
  log: (line: string) => void,
): Promise<CompletionsResult> {
  const runs = opts.profile ? 1 : opts.runs;
  const total = opts.warmup + runs * opts.count;
  const loomDb = await postgres.createDatabase('loom_bench');
  const baseDb = await postgres.createDatabase('loom_bench_base');
  const children: BenchChild[] = [];
  const clients: BenchClient[] = [];
  const sql = new pg.Client({ connectionString: loomDb.url });
  sql.on('error', () => undefined);
  try {
    const loom = await startChild('./loom-server-child.ts', {
      env: {
        LOOM_DATABASE_URL: loomDb.url,
        LOOM_HOST: '127.0.0.1',
        LOOM_PORT: String(await freePort()),
        LOOM_ADMIN_PASSWORD: ADMIN_PASSWORD,
        LOOM_LOG_LEVEL: opts.logLevel,
        LOOM_DATABASE_POOL_SIZE: String(opts.poolSize),
      },
      profile: opts.profile,
    });
    children.push(loom);
    await sql.connect();
    const client = new BenchClient(loom.url, opts.concurrency);
    clients.push(client);

    // Preparation (not measured): plant, an operator linked to a qualified person, orders with
    // their first operation Running.
    const admin = await login(client, 'admin', ADMIN_PASSWORD);
    await client.json('POST', '/api/plant/import', 200, {
      raw: PLANT_YAML,
      contentType: 'application/yaml',
      cookie: admin,
    });
    // Keeps the bench independent of the calendar: the example plant's qualifications expire.
    await sql.query(
      `UPDATE person_qualifications SET expires = '2099-12-31' WHERE person_id = 'op-anna-berger'`,
    );
    await client.json('POST', '/api/users', 201, {
      cookie: admin,
      body: { ...OPERATOR, displayName: 'Anna Berger', roles: ['operator'], mustChangePassword: false },
    });
    const operator = await login(client, OPERATOR.username, OPERATOR.password);
    log(`  preparing ${total} orders with their first operation Running…`);
    const prepStarted = performance.now();
    const opIds = await inParallel(Array.from({ length: total }), opts.concurrency, async () => {
      const created = await client.json<{ operations: { id: number; state: string }[] }>(
        'POST',
        '/api/orders',
        201,
        { cookie: admin, body: { product: 'compact-sedan', quantity: 1 } },
      );
      const first = created.operations.find((o) => o.state === 'Ready')!;
      await client.json('POST', `/api/operations/${first.id}/start`, 200, {
        cookie: operator,
        body: { workUnit: 'weld-robot-1' },
      });
      return first.id;
    });
    const prepSeconds = (performance.now() - prepStarted) / 1000;
    log(`  prepared in ${prepSeconds.toFixed(1)} s (${fmt(total / prepSeconds)} order+start pairs/s)`);
    await drainAudit(sql);

    // The baseline: same PostgreSQL, same pool size, its own database.
    const baseSql = new pg.Client({ connectionString: baseDb.url });
    await baseSql.connect();
    await baseSql.query(BASELINE_SCHEMA);
    await baseSql.query(
      `INSERT INTO bench_ops (id, state) SELECT g, 'Running' FROM generate_series(1, $1::int) g`,
      [total],
    );
    await baseSql.query('ANALYZE');
    await baseSql.end();
    const base = await startChild('./baseline-server-child.ts', {
      databaseUrl: baseDb.url,
      poolSize: opts.poolSize,
      port: await freePort(),
    });
    children.push(base);
    const baseClient = new BenchClient(base.url, opts.concurrency);
    clients.push(baseClient);

    const body = JSON.stringify({ good: 1 });
    const postmaster = await postmasterPidOf(loomDb.url).catch(() => undefined);
    const requests = (r: LoadResult) => r.requests;
    const loomRun = (ids: readonly number[]) =>
      closedLoop(
        ids,
        opts.concurrency,
        (id) => client.request('POST', `/api/operations/${id}/complete`, { body, cookie: operator }),
        200,
      );
    const baseIds = Array.from({ length: total }, (_, i) => i + 1);
    const baseRun = (ids: readonly number[]) =>
      closedLoop(ids, opts.concurrency, (id) => baseClient.request('POST', `/complete/${id}`, { body }), 200);

    log(`  warming up (${opts.warmup} completions each)…`);
    const wl = await loomRun(opIds.slice(0, opts.warmup));
    if (wl.failures) throw new Error(`Loom warm-up: ${wl.failures} failures, first ${wl.firstFailure}`);
    await drainAudit(sql);
    const wb = await baseRun(baseIds.slice(0, opts.warmup));
    if (wb.failures) throw new Error(`baseline warm-up: ${wb.failures} failures, first ${wb.firstFailure}`);

    const rows: RunRow[] = [];
    let profile: CpuProfile | undefined;
    let allocations: AllocationProfile | undefined;
    let statementStats = false;
    let walRange: { from: string; to: string } | undefined;
    for (let r = 0; r < runs; r++) {
      const from = opts.warmup + r * opts.count;
      if (opts.profile) {
        statementStats = await resetStatementStats(sql);
        walRange = { from: await walPosition(sql), to: '' };
        await loom.control('query-stats-reset');
        await loom.control('profile-start');
      }
      const { result: lr, cpu: lc } = await measureCpu(
        loom.pid,
        postmaster,
        () => loomRun(opIds.slice(from, from + opts.count)),
        requests,
      );
      if (opts.profile) {
        if (walRange) walRange.to = await walPosition(sql);
        profile = (await loom.control('profile-stop')) as CpuProfile;
        allocations = (await loom.control('allocations-stop')) as AllocationProfile;
        const heapFile = path.join(tmpdir(), `loom-completions-${Date.now()}.heapprofile`);
        writeFileSync(heapFile, JSON.stringify(allocations));
        log(`  allocation profile of the Loom process written to ${heapFile}`);
        // The whole profile, for Chrome DevTools or speedscope: the tables below only summarise it.
        const file = path.join(tmpdir(), `loom-completions-${Date.now()}.cpuprofile`);
        writeFileSync(file, JSON.stringify(profile));
        log(`  CPU profile of the Loom process written to ${file}`);
      }
      const drained = await drainAudit(sql);
      rows.push({
        target: 'Loom',
        run: r + 1,
        result: lr,
        cpu: lc,
        auditBacklog: drained.backlog,
        auditDrainMs: drained.ms,
      });
      log(
        `  run ${r + 1}: Loom ${fmt(lr.perSecond)}/s (p50 ${fmt(percentile(lr.latencies, 50))} ms, p99 ${fmt(percentile(lr.latencies, 99))} ms, ${lr.failures} failed)`,
      );
      const { result: br, cpu: bc } = await measureCpu(
        base.pid,
        postmaster,
        () => baseRun(baseIds.slice(from, from + opts.count)),
        requests,
      );
      rows.push({ target: 'baseline', run: r + 1, result: br, cpu: bc });
      log(
        `  run ${r + 1}: baseline ${fmt(br.perSecond)}/s (p50 ${fmt(percentile(br.latencies, 50))} ms, p99 ${fmt(percentile(br.latencies, 99))} ms, ${br.failures} failed)`,
      );
    }

    // Every completion was a full transaction: check the effects are all there.
    const effects = (
      await sql.query<{ events: number; audits: number; outbox: number; completed: number }>(
        `SELECT (SELECT count(*)::int FROM production_events WHERE kind = 'good') AS events,
                (SELECT count(*)::int FROM audit_log WHERE action = 'operation.completed') AS audits,
                (SELECT count(*)::int FROM outbox_events WHERE event_type = 'OperationCompleted') AS outbox,
                (SELECT count(*)::int FROM order_operations WHERE state = 'Completed') AS completed`,
      )
    ).rows[0]!;
    const okCount = rows
      .filter((r) => r.target === 'Loom')
      .reduce((n, r) => n + r.result.requests - r.result.failures, wl.requests - wl.failures);

    const summary = (target: RunRow['target']) => {
      const rs = rows.filter((r) => r.target === target);
      const byRate = [...rs].sort((a, b) => a.result.perSecond - b.result.perSecond);
      const mid = byRate[Math.floor(byRate.length / 2)]!;
      return {
        perSecond: median(rs.map((r) => r.result.perSecond)),
        p50: median(rs.map((r) => percentile(r.result.latencies, 50))),
        p99: median(rs.map((r) => percentile(r.result.latencies, 99))),
        mid,
      };
    };
    const L = summary('Loom');
    const B = summary('baseline');
    const ratio = L.perSecond / B.perSecond;
    // Each Loom run is followed at once by a baseline run: the ratio within a pair cancels the
    // machine's slow drift (other tenants), which moves both medians by up to 2× on a shared host.
    const pairRatios = rows
      .filter((r) => r.target === 'Loom')
      .map(
        (l) =>
          l.result.perSecond / rows.find((b) => b.target === 'baseline' && b.run === l.run)!.result.perSecond,
      );
    const pairRatio = median(pairRatios);
    // CPU is what bounds throughput when everything shares 2 cores, and it drifts less than
    // requests per second: baseline CPU per request (server + PostgreSQL) over Loom's, per pair.
    const cpuOf = (r: RunRow) => r.cpu.server + r.cpu.postgres;
    const cpuRatios = rows
      .filter((r) => r.target === 'Loom')
      .map((l) => cpuOf(rows.find((b) => b.target === 'baseline' && b.run === l.run)!) / cpuOf(l));
    const cpuRatio = median(cpuRatios);

    const parts: string[] = [];
    parts.push(
      `### Operation completions (${opts.concurrency} concurrent keep-alive clients, ${fmt(opts.count)} per run, median of ${runs})\n`,
      table(
        ['target', 'completions/s', 'p50 ms', 'p99 ms', 'target met'],
        [
          [
            'Loom `POST /api/operations/:id/complete`',
            L.perSecond,
            L.p50,
            L.p99,
            L.perSecond >= 1000 ? 'yes (≥ 1,000/s)' : 'no (< 1,000/s)',
          ],
          ['bare Fastify + pg, 1 comparable transaction', B.perSecond, B.p50, B.p99, ''],
          [
            'Loom / baseline (medians)',
            `${(ratio * 100).toFixed(0)} %`,
            '',
            '',
            ratio >= 0.5 ? 'yes (≥ 50 %)' : 'no (< 50 %)',
          ],
          [
            'Loom / baseline (median of the paired runs)',
            `${(pairRatio * 100).toFixed(0)} % (${pairRatios.map((x) => (x * 100).toFixed(0)).join(', ')})`,
            '',
            '',
            pairRatio >= 0.5 ? 'yes (≥ 50 %)' : 'no (< 50 %)',
          ],
          [
            'baseline / Loom CPU per request, server + PostgreSQL (median of the pairs)',
            `${(cpuRatio * 100).toFixed(0)} % (${cpuRatios.map((x) => (x * 100).toFixed(0)).join(', ')})`,
            '',
            '',
            '',
          ],
        ],
      ),
      '\nEvery run:\n',
      table(
        [
          'run',
          'target',
          'requests',
          'seconds',
          'per s',
          'p50 ms',
          'p90 ms',
          'p99 ms',
          'max ms',
          'failed',
          'CPU ms/req server',
          'CPU ms/req PostgreSQL',
          'CPU ms/req load generator',
          'audit backlog at end',
          'chained after (ms)',
        ],
        rows.map((r) => [
          r.run,
          r.target,
          r.result.requests,
          r.result.seconds,
          r.result.perSecond,
          percentile(r.result.latencies, 50),
          percentile(r.result.latencies, 90),
          percentile(r.result.latencies, 99),
          r.result.latencies.at(-1) ?? Number.NaN,
          r.result.failures,
          r.cpu.server,
          r.cpu.postgres,
          r.cpu.client,
          r.auditBacklog ?? '',
          r.auditDrainMs ?? '',
        ]),
      ),
      `\nEffects in Loom's database after the runs: ${fmt(effects.events)} good production events, ${fmt(effects.audits)} \`operation.completed\` audit entries, ${fmt(effects.outbox)} \`OperationCompleted\` outbox events, ${fmt(effects.completed)} operations Completed; ${fmt(okCount)} completions answered 200.`,
      `Preparation (not measured): ${fmt(total)} orders created and started in ${prepSeconds.toFixed(1)} s.`,
      `Loom: pool size ${opts.poolSize}, log level \`${opts.logLevel}\` (server logs written to /dev/null).`,
    );

    if (opts.profile) {
      const stats = ((await loom.control('query-stats')) as QueryStat[] | null) ?? [];
      const n = opts.count;
      const queries = stats.reduce((s, q) => s + q.count, 0);
      parts.push(
        `\n### Profile of one Loom run (${fmt(n)} completions)\n`,
        `SQL statements sent by Loom during the run: ${fmt(queries)} = **${(queries / n).toFixed(1)} per completion** (baseline: 6 incl. BEGIN/COMMIT).\n`,
        table(
          ['statement', 'count', 'per completion', 'total ms (round trip, overlapping)', 'mean ms'],
          stats
            .slice(0, 30)
            .map((q) => [
              '`' + q.sql.replace(/\|/g, '\\|') + '`',
              q.count,
              q.count / n,
              q.totalMs,
              q.totalMs / q.count,
            ]),
        ),
      );
      if (statementStats) parts.push(...(await statementStatsTables(sql, baseDb.url, n)));
      if (walRange) parts.push(...(await walRecordTables(sql, walRange, n)));
      if (profile) {
        const s = summarizeProfile(profile, 20);
        const cpuPerCompletion = s.total / n;
        const idle = s.byCategory.find((c) => c.name === '(idle)')?.ms ?? 0;
        parts.push(
          `\nCPU profile of the Loom process over the run: ${fmt(s.total)} ms sampled, of which ${fmt(idle)} ms idle → **${((s.total - idle) / n).toFixed(2)} ms of Loom CPU per completion** (${cpuPerCompletion.toFixed(2)} ms wall incl. idle).\n`,
          table(
            ['where (self time)', 'ms', 'share'],
            s.byCategory.map((c) => [c.name, c.ms, `${(c.share * 100).toFixed(1)} %`]),
          ),
          '\n',
          table(
            ['function (self time)', 'ms', 'share'],
            s.byFunction.map((c) => ['`' + c.name + '`', c.ms, `${(c.share * 100).toFixed(1)} %`]),
          ),
        );
      }
      if (allocations) {
        const a = summarizeAllocations(allocations, 20);
        const kb = (bytes: number) => bytes / n / 1024;
        parts.push(
          `\nJavaScript heap allocated by the Loom process over the run (sampling heap profiler, freed objects included): **${kb(a.total).toFixed(1)} kB per completion**.\n`,
          table(
            ['where (allocating code)', 'kB per completion', 'share'],
            a.byCategory.map((c) => [c.name, kb(c.bytes), `${(c.share * 100).toFixed(1)} %`]),
          ),
          '\n',
          table(
            ['function', 'kB per completion', 'share'],
            a.byFunction.map((c) => ['`' + c.name + '`', kb(c.bytes), `${(c.share * 100).toFixed(1)} %`]),
          ),
        );
      }
    }
    return { markdown: parts.join('\n'), loomPerSecond: L.perSecond, baselinePerSecond: B.perSecond };
  } finally {
    for (const c of clients) c.close();
    await sql.end().catch(() => undefined);
    for (const c of children.reverse()) await c.stop();
    await loomDb.drop().catch((e: Error) => log(`  could not drop ${loomDb.url}: ${e.message}`));
    await baseDb.drop().catch((e: Error) => log(`  could not drop ${baseDb.url}: ${e.message}`));
  }
}

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { randomDatabaseName, startEmbeddedPostgres } from '../src/adapters/db/embedded-postgres-server.ts';
import { maskUrl } from '../src/config/config.ts';

/** Where the benchmarks get their databases: one PostgreSQL per run, one fresh database per bench. */
export interface BenchPostgres {
  /** For the results table: version and mode. */
  readonly describe: string;
  readonly version: string;
  /** Creates a fresh, empty database and returns its URL; `drop` removes it (WITH FORCE). */
  createDatabase(prefix: string): Promise<{ url: string; drop(): Promise<void> }>;
  stop(): Promise<void>;
}

function withDatabase(url: string, name: string): string {
  // Socket URLs (postgresql://user@%2Fpath:5432/db) and TCP URLs both end in /<db>.
  return url.replace(/\/[^/?]*(\?.*)?$/, `/${name}$1`);
}

async function adminQuery<T extends pg.QueryResultRow>(url: string, sql: string): Promise<T[]> {
  const c = new pg.Client({ connectionString: url });
  c.on('error', () => undefined);
  await c.connect();
  try {
    return (await c.query<T>(sql)).rows;
  } finally {
    await c.end();
  }
}

async function provider(adminUrl: string, mode: string, stop: () => Promise<void>): Promise<BenchPostgres> {
  const [row] = await adminQuery<{ v: string; fsync: string; sc: string; sb: string }>(
    adminUrl,
    `SELECT current_setting('server_version') AS v, current_setting('fsync') AS fsync,
            current_setting('synchronous_commit') AS sc, current_setting('shared_buffers') AS sb`,
  );
  const version = row!.v;
  return {
    version,
    describe: `PostgreSQL ${version}, ${mode} (fsync=${row!.fsync}, synchronous_commit=${row!.sc}, shared_buffers=${row!.sb})`,
    async createDatabase(prefix) {
      const name = randomDatabaseName(prefix);
      await adminQuery(adminUrl, `CREATE DATABASE ${name}`);
      return {
        url: withDatabase(adminUrl, name),
        drop: async () => {
          await adminQuery(adminUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
        },
      };
    },
    stop,
  };
}

/**
 * `LOOM_BENCH_DATABASE_URL` set: that PostgreSQL server (its URL names a database we may connect
 * to for CREATE/DROP DATABASE, e.g. postgres). Otherwise Loom's embedded PostgreSQL in a temporary
 * folder, removed afterwards: the setup a `loom start` without a database URL gets.
 */
export async function openBenchPostgres(
  env: NodeJS.ProcessEnv,
  options: { statementStats?: boolean } = {},
): Promise<BenchPostgres> {
  const serverUrl = env.LOOM_BENCH_DATABASE_URL;
  if (serverUrl) {
    return provider(serverUrl, `server ${maskUrl(serverUrl)}`, async () => undefined);
  }
  const dir = await mkdtemp(path.join(tmpdir(), 'loom-bench-pg-'));
  try {
    // Profiled runs load pg_stat_statements (with planning time) so the statement table can show
    // PostgreSQL's own side: it costs a little, so plain runs go without.
    const settings = [
      ...(options.statementStats
        ? [
            'shared_preload_libraries=pg_stat_statements',
            'pg_stat_statements.track_planning=on',
            'pg_stat_statements.track=all',
          ]
        : []),
      // LOOM_BENCH_PG_SETTINGS="shared_buffers=1GB work_mem=8MB": more server settings, for experiments.
      ...(env.LOOM_BENCH_PG_SETTINGS ?? '').split(/\s+/).filter(Boolean),
    ];
    const embedded = await startEmbeddedPostgres({ dataDir: dir, log: () => undefined, settings });
    const stop = async () => {
      await embedded.stop();
      await rm(dir, { recursive: true, force: true });
    };
    try {
      return await provider(withDatabase(embedded.url, 'postgres'), 'embedded (Unix socket)', stop);
    } catch (e) {
      await stop();
      throw e;
    }
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
}

/**
 * The one test command (README, .ci/run). Runs every `*.test.ts` with node's test runner.
 *
 * Storage target: `LOOM_TEST_PG=embedded` (default) starts one embedded PostgreSQL for the run in a
 * temporary folder and removes it afterwards; `LOOM_TEST_PG=server` uses `LOOM_TEST_DATABASE_URL`
 * (default postgres://postgres@127.0.0.1:5432/postgres). Either way every test file creates its own
 * database and drops it (test/support/database.ts).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startEmbeddedPostgres } from '../src/adapters/db/embedded-postgres-server.ts';

async function findTests(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await findTests(p)));
    else if (entry.name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

const filter = process.argv.slice(2);
const files = [...(await findTests('src')), ...(await findTests('test'))]
  .filter((f) => filter.length === 0 || filter.some((x) => f.includes(x)))
  .sort();

const target = process.env.LOOM_TEST_PG ?? 'embedded';
let stop: (() => Promise<void>) | undefined;
let databaseUrl: string;
if (target === 'embedded') {
  const dir = await mkdtemp(path.join(tmpdir(), 'loom-test-pg-'));
  const server = await startEmbeddedPostgres({ dataDir: dir, log: () => undefined }).catch(
    async (e: unknown) => {
      await rm(dir, { recursive: true, force: true });
      throw e;
    },
  );
  databaseUrl = server.url;
  stop = async () => {
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  };
} else if (target === 'server') {
  databaseUrl = process.env.LOOM_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
} else {
  console.error(`LOOM_TEST_PG=${target} is not allowed: use "embedded" or "server".`);
  process.exit(2);
}
console.log(`# storage: ${target} PostgreSQL`);

const code = await new Promise<number>((resolve) => {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', '--test', '--test-reporter=spec', '--test-concurrency=2', ...files],
    { stdio: 'inherit', env: { ...process.env, LOOM_TEST_DATABASE_URL: databaseUrl, LOOM_TEST_PG: target } },
  );
  child.on('exit', (c, signal) => resolve(c ?? (signal ? 1 : 0)));
});
await stop?.();
process.exit(code);

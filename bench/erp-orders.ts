/**
 * Orders accepted per second through `POST /api/erp/orders` in batches (issue 4): `node --import
 * tsx bench/erp-orders.ts [--batches 20] [--size 100] [--concurrency 1,4]`. A real Loom server
 * (`startServer`) runs in its own process against a fresh database with the example plant; each
 * batch is one request and one transaction. Also measured: the same batches sent again (every
 * order unchanged: the cost of an ERP's retry). Prints a Markdown table.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { freePort, startChild, type BenchChild } from './child-process.ts';
import { BenchClient, inParallel } from './load.ts';
import { fmt, table } from './markdown.ts';
import { openBenchPostgres } from './postgres.ts';

const { values } = parseArgs({
  options: {
    batches: { type: 'string', default: '20' },
    size: { type: 'string', default: '100' },
    concurrency: { type: 'string', default: '1,4' },
  },
});
const BATCHES = Number(values.batches);
const SIZE = Number(values.size);
const CONCURRENCY = values.concurrency.split(',').map(Number);
const ADMIN_PASSWORD = 'bench-admin-password-2026';
const PLANT_YAML = readFileSync(new URL('../examples/plant.yaml', import.meta.url), 'utf8');

function batch(run: string, b: number): string {
  return JSON.stringify({
    orders: Array.from({ length: SIZE }, (_, i) => ({
      externalId: `${run}-${b}-${i}`,
      product: i % 2 === 0 ? 'compact-sedan' : 'service-door-panel',
      quantity: 1 + (i % 20),
      dueAt: '2026-12-01T14:00:00Z',
      priority: 100 + (i % 800),
    })),
  });
}

async function send(
  client: BenchClient,
  cookie: string,
  bodies: readonly string[],
  concurrency: number,
  expect: number,
) {
  const t0 = performance.now();
  await inParallel(bodies, concurrency, async (body) => {
    const res = await client.request('POST', '/api/erp/orders', { body, cookie });
    if (res.status !== expect)
      throw new Error(`expected ${expect}, got ${res.status}: ${res.body.slice(0, 300)}`);
  });
  return (bodies.length * SIZE) / ((performance.now() - t0) / 1000);
}

const postgres = await openBenchPostgres(process.env);
const database = await postgres.createDatabase('bench_erp_orders');
let loom: BenchChild | undefined;
let client: BenchClient | undefined;
try {
  loom = await startChild('./loom-server-child.ts', {
    env: {
      LOOM_DATABASE_URL: database.url,
      LOOM_HOST: '127.0.0.1',
      LOOM_PORT: String(await freePort()),
      LOOM_ADMIN_PASSWORD: ADMIN_PASSWORD,
      LOOM_LOG_LEVEL: 'warn',
    },
  });
  client = new BenchClient(loom.url, Math.max(...CONCURRENCY));
  const login = await client.request('POST', '/api/auth/login', {
    body: JSON.stringify({ username: 'admin', password: ADMIN_PASSWORD }),
  });
  const setCookie = login.headers['set-cookie']?.[0];
  if (login.status !== 200 || !setCookie) throw new Error(`login failed: ${login.status} ${login.body}`);
  const cookie = setCookie.split(';')[0]!;
  await client.json('POST', '/api/plant/import', 200, {
    raw: PLANT_YAML,
    contentType: 'application/yaml',
    cookie,
  });
  await send(client, cookie, [batch('warmup', 0), batch('warmup', 1)], 1, 201);

  const rows: (string | number)[][] = [];
  for (const c of CONCURRENCY) {
    const bodies = Array.from({ length: BATCHES }, (_, b) => batch(`c${c}`, b));
    const created = await send(client, cookie, bodies, c, 201);
    const repeated = await send(client, cookie, bodies, c, 200);
    rows.push([c, SIZE, BATCHES * SIZE, fmt(created), fmt(repeated)]);
    console.error(`concurrency ${c}: ${fmt(created)} orders/s created, ${fmt(repeated)} orders/s repeated`);
  }
  console.log(
    `## ERP orders in (POST /api/erp/orders)\n\n${postgres.describe}\n\n${table(
      [
        'concurrent requests',
        'orders per batch',
        'orders',
        'created orders/s',
        'repeated (unchanged) orders/s',
      ],
      rows,
    )}`,
  );
} finally {
  client?.close();
  await loom?.stop();
  await database.drop();
  await postgres.stop();
}

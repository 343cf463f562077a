/**
 * Outbox messages delivered per second to the ERP stand-in (issue 4): `node --import tsx
 * bench/erp-delivery.ts [--events 5000] [--orders 200]`. The relay runs in-process with the
 * production adapters (PostgreSQL relay store, fetch client, JSON encoder) against the stand-in
 * over real HTTP on loopback; events are inserted beforehand as the execution core writes them.
 * Prints one line per configuration (lanes × batch = in-flight bound) and, for two relays on one
 * database, the rate of both together (SKIP LOCKED sharing).
 */
import { parseArgs } from 'node:util';
import pino from 'pino';
import { migrate } from '../src/adapters/db/migrate.ts';
import { postgresOutboxRelayStore } from '../src/adapters/db/postgres-outbox-relay-store.ts';
import { createDatabase, type Database } from '../src/adapters/db/postgres-pool.ts';
import { postgresUnitOfWork } from '../src/adapters/db/postgres-unit-of-work.ts';
import { httpErpClient } from '../src/adapters/erp/http-erp-client.ts';
import { jsonPerformanceEncoder } from '../src/adapters/erp/json-performance.ts';
import { OutboxDeliverer } from '../src/app/erp/outbox-deliverer.ts';
import { startErpStandIn, type ErpStandIn } from '../src/sim/erp-standin.ts';
import { fmt, table } from './markdown.ts';
import { openBenchPostgres } from './postgres.ts';

const { values } = parseArgs({
  options: { events: { type: 'string', default: '5000' }, orders: { type: 'string', default: '200' } },
});
const EVENTS = Number(values.events);
const ORDERS = Number(values.orders);

async function fill(db: Database): Promise<void> {
  await db.query('TRUNCATE outbox_deliveries, outbox_events');
  await db.query(
    `INSERT INTO outbox_events (aggregate_type, aggregate_id, event_type, payload)
     SELECT 'production-order', 'PO-B-' || lpad(((g % $2) + 1)::text, 5, '0'), 'OperationCompleted',
            jsonb_build_object('order', 'PO-B-' || ((g % $2) + 1), 'operation', (g / $2 + 1) * 10,
                               'good', '1', 'scrap', '0', 'unit', 'pcs', 'at', now())
       FROM generate_series(0, $1::int - 1) g`,
    [EVENTS, ORDERS],
  );
}

async function run(db: Database, erp: ErpStandIn, relays: number, lanes: number, batchSize: number) {
  await fill(db);
  const before = erp.stats().applied;
  const deliverers = Array.from(
    { length: relays },
    () =>
      new OutboxDeliverer(
        {
          uow: postgresUnitOfWork(db),
          store: postgresOutboxRelayStore(),
          encoder: jsonPerformanceEncoder,
          endpoint: httpErpClient({ url: erp.performanceUrl, timeoutMs: 10_000 }),
        },
        { maxAttempts: 12, retryBaseMs: 100, retryMaxMs: 1000, lanes, batchSize, idleMs: 5 },
      ),
  );
  const t0 = performance.now();
  for (const d of deliverers) d.start();
  for (;;) {
    const r = await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM outbox_events WHERE status = 'pending'`,
    );
    if (r.rows[0]!.n === 0) break;
    await new Promise((res) => setTimeout(res, 20));
  }
  const seconds = (performance.now() - t0) / 1000;
  await Promise.all(deliverers.map((d) => d.stop()));
  const applied = erp.stats().applied - before;
  if (applied !== EVENTS) throw new Error(`stand-in applied ${applied} of ${EVENTS}`);
  return EVENTS / seconds;
}

const pgServer = await openBenchPostgres(process.env);
const database = await pgServer.createDatabase('bench_erp');
const db = createDatabase(database.url, { poolSize: 20, logger: pino({ level: 'silent' }) });
const erp = await startErpStandIn();
try {
  await migrate(db);
  const rows: (string | number)[][] = [];
  for (const [relays, lanes, batch] of [
    [1, 1, 1],
    [1, 1, 8],
    [1, 2, 4],
    [1, 4, 8],
    [2, 2, 4],
  ] as const) {
    const rate = await run(db, erp, relays, lanes, batch);
    rows.push([relays, lanes, batch, relays * lanes * batch, fmt(rate)]);
  }
  process.stdout.write(
    `\n## ERP delivery: outbox → stand-in (${fmt(EVENTS)} events over ${ORDERS} orders, ${pgServer.describe})\n\n` +
      table(['relays', 'lanes', 'batch', 'in-flight ≤', 'messages/s'], rows) +
      '\n',
  );
} finally {
  await erp.stop();
  await db.close();
  await database.drop();
  await pgServer.stop();
}

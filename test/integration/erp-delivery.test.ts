/**
 * ERP outbound delivery (issue 4) against the ERP stand-in (src/sim/erp-standin.ts):
 * - an outage of the ERP while production goes on, and `kill -9` in the middle of delivery, each
 *   with a real `loom start` process on this test's database;
 * - a poison message, dead-lettered and replayed, and the legacy file drop, in-process.
 * Every check compares what the stand-in applied (first arrival per Idempotency-Key) with the
 * outbox: every event exactly once by key, in id order per production order.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, afterEach, describe, it } from 'node:test';
import pino from 'pino';
import { postgresOutboxRelayStore } from '../../src/adapters/db/postgres-outbox-relay-store.ts';
import type { Database } from '../../src/adapters/db/postgres-pool.ts';
import { postgresUnitOfWork } from '../../src/adapters/db/postgres-unit-of-work.ts';
import { b2mmlPerformanceEncoder } from '../../src/adapters/erp/b2mml-performance-encoder.ts';
import { createXsdValidator } from '../../src/adapters/erp/xsd-validator.ts';
import { httpErpClient } from '../../src/adapters/erp/http-erp-client.ts';
import { jsonPerformanceEncoder } from '../../src/adapters/erp/json-performance.ts';
import { OutboxDeliverer } from '../../src/app/erp/outbox-deliverer.ts';
import { loadConfig } from '../../src/config/config.ts';
import { erpOutboundFeature } from '../../src/main/erp-outbound-feature.ts';
import { startErpStandIn, type ErpStandIn } from '../../src/sim/erp-standin.ts';
import { createTestApp, type TestApp } from '../support/app.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { importExamplePlant, PLANT_YAML } from '../support/plant.ts';
import { freePort, loomEnv } from '../support/loom-process.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const ADMIN_PASSWORD = 'erp-delivery-admin-password';
const START_TIMEOUT_MS = 90_000;

const children = new Set<ChildProcess>();
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of children) c.kill('SIGKILL');
  for (const f of cleanups.splice(0).reverse()) await f().catch(() => undefined);
});
after(() => {
  for (const c of children) c.kill('SIGKILL');
});

const b2mmlFixture = (name: string) => readFileSync(path.join(ROOT, 'test/fixtures/b2mml', name), 'utf8');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface LoomProcess {
  readonly child: ChildProcess;
  readonly url: string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output(): string;
}

/** `loom start` on the test's database, delivering to the stand-in. */
async function startLoom(database: TestDatabase, env: Record<string, string>): Promise<LoomProcess> {
  const port = await freePort();
  const dataDir = await mkdtemp(path.join(tmpdir(), 'loom-erp-'));
  cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
  const child = spawn(process.execPath, ['bin/loom.js', 'start', '--no-sim'], {
    cwd: ROOT,
    env: loomEnv({
      LOOM_DATABASE_URL: database.url,
      LOOM_DATA_DIR: dataDir,
      LOOM_PORT: String(port),
      LOOM_ADMIN_PASSWORD: ADMIN_PASSWORD,
      LOOM_LOG_LEVEL: 'warn',
      LOOM_PLANT_TIMEZONE: 'UTC',
      ...env,
    }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => {
      children.delete(child);
      resolve({ code, signal });
    }),
  );
  let exit: unknown;
  void exited.then((e) => (exit = e));
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (!/Loom is serving on/.test(out)) {
    if (exit) throw new Error(`loom exited before serving:\n${out}`);
    if (Date.now() > deadline) throw new Error(`loom did not serve in time:\n${out}`);
    await sleep(25);
  }
  return { child, url: `http://127.0.0.1:${port}`, exited, output: () => out };
}

/** A small HTTP client for a real Loom: session cookie per user. */
async function login(url: string, username: string, password: string): Promise<string> {
  const res = await fetch(`${url}/api/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password }),
  });
  assert.equal(res.status, 200, await res.text());
  const cookie = /loom_session=[^;]+/.exec(res.headers.get('set-cookie') ?? '');
  assert.ok(cookie);
  return cookie[0];
}

async function call(
  url: string,
  cookie: string,
  method: string,
  p: string,
  body?: unknown,
  type = 'application/json',
) {
  const res = await fetch(`${url}${p}`, {
    method,
    headers: { cookie, ...(body !== undefined ? { 'content-type': type } : {}) },
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, json: () => JSON.parse(text) as Record<string, unknown>, text };
}

/** Plant, a planner and an operator; returns their cookies. */
async function preparePlant(url: string) {
  const admin = await login(url, 'admin', ADMIN_PASSWORD);
  assert.equal(
    (await call(url, admin, 'POST', '/api/plant/import', PLANT_YAML, 'application/yaml')).status,
    200,
  );
  const users: Record<string, string> = {};
  for (const [username, roles] of [
    ['planner', ['supervisor']],
    ['anna.berger', ['operator']],
  ] as const) {
    const password = `correct horse battery staple ${roles[0]}`;
    const r = await call(url, admin, 'POST', '/api/users', {
      username,
      displayName: username,
      password,
      roles,
      mustChangePassword: false,
    });
    assert.equal(r.status, 201, r.text);
    users[username] = await login(url, username, password);
  }
  return { admin, planner: users.planner!, operator: users['anna.berger']! };
}

/** Orders through the real API, each with its first operation started and completed. */
async function produceThroughApi(url: string, cookies: { planner: string; operator: string }, n: number) {
  for (let i = 0; i < n; i++) {
    const o = await call(url, cookies.planner, 'POST', '/api/orders', {
      externalId: `ERP-API-${i}`,
      product: 'compact-sedan',
      quantity: 2,
    });
    assert.equal(o.status, 201, o.text);
    const op = (o.json().operations as { id: number }[])[0]!.id;
    const s = await call(url, cookies.operator, 'POST', `/api/operations/${op}/start`, {
      workUnit: 'weld-robot-1',
    });
    assert.equal(s.status, 200, s.text);
    const c = await call(url, cookies.operator, 'POST', `/api/operations/${op}/complete`, { good: 2 });
    assert.equal(c.status, 200, c.text);
  }
}

/** `count` OperationCompleted events spread over `orders` fixture orders, as the execution core writes them. */
async function insertCompletions(db: Database, prefix: string, orders: number, count: number, from = 0) {
  await db.query(
    `INSERT INTO outbox_events (aggregate_type, aggregate_id, event_type, payload)
     SELECT 'production-order', $1 || lpad(((g % $2) + 1)::text, 4, '0'), 'OperationCompleted',
            jsonb_build_object('order', $1 || lpad(((g % $2) + 1)::text, 4, '0'), 'operation', (g / $2 + 1) * 10,
                               'good', '1', 'scrap', '0', 'unit', 'pcs', 'at', now())
       FROM generate_series($3::int, $3::int + $4::int - 1) g`,
    [prefix, orders, from, count],
  );
}

async function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await sleep(100);
  }
}

const undelivered = async (db: Database) =>
  (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM outbox_events WHERE status <> 'delivered'`))
    .rows[0]!.n;

/** The stand-in applied every outbox event exactly once by key, in id order per order. */
async function assertExactlyOnceInOrder(db: Database, erp: ErpStandIn): Promise<number> {
  const rows = (
    await db.query<{ message_id: string; aggregate_id: string }>(
      'SELECT message_id, aggregate_id FROM outbox_events ORDER BY id',
    )
  ).rows;
  const expected = new Map<string, string[]>();
  for (const r of rows)
    (expected.get(r.aggregate_id) ?? expected.set(r.aggregate_id, []).get(r.aggregate_id)!).push(
      r.message_id,
    );
  const applied = erp.received();
  assert.equal(applied.length, rows.length, 'every event applied once');
  assert.equal(new Set(applied.map((m) => m.key)).size, rows.length, 'no key applied twice');
  const got = erp.byOrder();
  assert.equal(got.size, expected.size);
  for (const [order, keys] of expected) assert.deepEqual(got.get(order), keys, `order ${order} in id order`);
  return rows.length;
}

describe('ERP delivery with real Loom processes', () => {
  it('delivers every message exactly once by key, in order per order, after a 6 s outage of the ERP during production', async () => {
    const database = await createTestDatabase();
    cleanups.push(() => database.drop());
    const erp = await startErpStandIn();
    cleanups.push(() => erp.stop());
    const loom = await startLoom(database, {
      LOOM_ERP_OUTBOUND_URL: erp.performanceUrl,
      LOOM_ERP_RETRY_BASE_MS: '100',
      LOOM_ERP_RETRY_MAX_MS: '1000',
      LOOM_ERP_MAX_ATTEMPTS: '1000',
    });
    const cookies = await preparePlant(loom.url);
    erp.outage(6000); // long enough that production fits inside it on a loaded 2-core machine
    const outageStarted = Date.now();
    await produceThroughApi(loom.url, cookies, 4);
    // The rest of the ~500 completions as fixtures, in waves while the ERP is down.
    for (let wave = 0; wave < 5; wave++) {
      await insertCompletions(database.db, 'PO-FX-', 50, 100, wave * 100);
      await sleep(200);
    }
    assert.ok(Date.now() - outageStarted < 6000, 'production went on during the outage');
    await waitUntil('everything is delivered', async () => (await undelivered(database.db)) === 0);
    const total = await assertExactlyOnceInOrder(database.db, erp);
    assert.ok(total >= 500 + 4 * 3, `${total} events`);
    const stats = erp.stats();
    assert.ok(stats.refused > 0, 'the outage refused deliveries');
    const attempts = await database.db.query<{ outcome: string; n: number }>(
      'SELECT outcome, count(*)::int AS n FROM outbox_deliveries GROUP BY outcome ORDER BY outcome',
    );
    const byOutcome = Object.fromEntries(attempts.rows.map((r) => [r.outcome, r.n]));
    assert.equal(byOutcome.delivered, total);
    assert.ok((byOutcome.failed ?? 0) > 0);
    assert.equal(byOutcome.dead, undefined);
    const apiEvents = erp.received().filter((m) => m.orderId?.startsWith('PO-FX-') === false);
    assert.ok(
      apiEvents.some((m) => m.type === 'OperationCompleted'),
      'completions from the real API arrived',
    );
    process.stdout.write(
      `# outage: ${total} events, ${stats.requests} requests, ${stats.refused} refused, ${stats.duplicates} duplicates\n`,
    );
    loom.child.kill('SIGTERM');
    assert.equal((await loom.exited).code, 0);
  });

  it('loses nothing when Loom is killed with SIGKILL in the middle of delivery; a resent message carries the same key', async () => {
    const database = await createTestDatabase();
    cleanups.push(() => database.drop());
    const erp = await startErpStandIn();
    cleanups.push(() => erp.stop());
    erp.slow(15);
    await insertCompletions(database.db, 'PO-K-', 40, 400);
    const env = {
      LOOM_ERP_OUTBOUND_URL: erp.performanceUrl,
      LOOM_ERP_RETRY_BASE_MS: '100',
      LOOM_ERP_RETRY_MAX_MS: '1000',
    };
    const first = await startLoom(database, env);
    await waitUntil('delivery is under way', async () => erp.stats().applied >= 80);
    first.child.kill('SIGKILL');
    assert.equal((await first.exited).signal, 'SIGKILL');
    const left = await undelivered(database.db);
    assert.ok(left > 0, 'killed in the middle, not after the end');
    const appliedAtKill = erp.stats().applied;

    const second = await startLoom(database, env);
    await waitUntil(
      'everything is delivered after the restart',
      async () => (await undelivered(database.db)) === 0,
    );
    const total = await assertExactlyOnceInOrder(database.db, erp);
    assert.equal(total, 400);
    const stats = erp.stats();
    for (const key of Object.keys(stats.repeatedKeys)) {
      const bodies = erp.bodiesOf(key);
      assert.ok(
        bodies.every((b) => b === bodies[0]),
        `every delivery of ${key} is the same message`,
      );
      assert.equal((JSON.parse(bodies[0]!) as { messageId: string }).messageId, key);
    }
    process.stdout.write(
      `# kill -9: ${appliedAtKill} applied before the kill, ${left} undelivered; ${stats.duplicates} redelivered duplicates\n`,
    );
    second.child.kill('SIGTERM');
    assert.equal((await second.exited).code, 0);
  });
});

describe('poison messages and replay', () => {
  let t: TestApp;
  after(async () => t?.close());

  it('dead-letters the poison event after N attempts, keeps other orders flowing, and an admin replays it', async () => {
    t = await createTestApp();
    const erp = await startErpStandIn();
    cleanups.push(() => erp.stop());
    const db = t.database.db;
    await insertCompletions(db, 'PO-P-', 3, 9);
    erp.failOrder('PO-P-0001', 400);
    const deliverer = new OutboxDeliverer(
      {
        uow: t.loom.uow,
        store: postgresOutboxRelayStore(),
        encoder: jsonPerformanceEncoder,
        endpoint: httpErpClient({ url: erp.performanceUrl, timeoutMs: 2000 }),
      },
      { maxAttempts: 3, retryBaseMs: 10, retryMaxMs: 40, idleMs: 20 },
    );
    deliverer.start();
    cleanups.push(() => deliverer.stop());
    await waitUntil('the poison event is dead and the others delivered', async () => {
      const r = await db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM outbox_events
          WHERE (aggregate_id <> 'PO-P-0001' AND status = 'delivered') OR status = 'dead'`,
      );
      return r.rows[0]!.n === 7;
    });
    const events = (
      await db.query<{
        id: number;
        aggregate_id: string;
        status: string;
        attempts: number;
        last_error: string;
      }>(
        `SELECT id, aggregate_id, status, attempts, last_error FROM outbox_events WHERE aggregate_id = 'PO-P-0001' ORDER BY id`,
      )
    ).rows;
    assert.deepEqual(
      events.map((e) => [e.status, e.attempts]),
      [
        ['dead', 3],
        ['pending', 0],
        ['pending', 0],
      ],
      'later events of the poisoned order wait behind it',
    );
    assert.match(events[0]!.last_error, /ERP answered 400.*attempt 3 of 3: dead-lettered/);
    const tries = await db.query(
      'SELECT attempt, outcome, http_status FROM outbox_deliveries WHERE event_id = $1 ORDER BY attempt',
      [events[0]!.id],
    );
    assert.deepEqual(
      tries.rows.map((r) => [r.attempt, r.outcome, r.http_status]),
      [
        [1, 'failed', 400],
        [2, 'failed', 400],
        [3, 'dead', 400],
      ],
    );
    assert.equal(erp.received('PO-P-0001').length, 0);
    assert.equal(erp.received('PO-P-0002').length, 3);
    assert.equal(erp.received('PO-P-0003').length, 3);

    const admin = await t.adminCookie();
    const supervisor = (await t.userWithRoles('sup.erp', ['supervisor'])).cookie;
    const get = (url: string, cookie: string) => t.app.inject({ method: 'GET', url, headers: { cookie } });
    const dead = await get('/api/erp/outbox?status=dead', supervisor);
    assert.equal(dead.statusCode, 200);
    assert.deepEqual(
      dead.json().events.map((e: { id: number }) => e.id),
      [events[0]!.id],
    );
    const mine = await get('/api/erp/outbox?order=PO-P-0001', admin);
    assert.deepEqual(
      mine.json().events.map((e: { status: string }) => e.status),
      ['dead', 'pending', 'pending'],
    );
    const health = (await get('/api/erp/health', supervisor)).json();
    assert.equal(health.dead, 1);
    assert.equal(health.pending, 2);
    assert.match(health.lastFailureError, /ERP answered 400/);
    assert.ok(health.lastSuccessAt);
    const operator = (await t.userWithRoles('op.erp', ['operator'])).cookie;
    assert.equal((await get('/api/erp/outbox', operator)).statusCode, 403);

    const replay = (cookie: string, id: number, payload: object) =>
      t.app.inject({ method: 'POST', url: `/api/erp/outbox/${id}/replay`, headers: { cookie }, payload });
    assert.equal((await replay(supervisor, events[0]!.id, { reason: 'fixed' })).statusCode, 403);
    assert.equal((await replay(admin, events[0]!.id, {})).statusCode, 400, 'a reason is required');
    const notDead = await replay(admin, events[1]!.id, { reason: 'try' });
    assert.equal(notDead.statusCode, 409);
    assert.equal(notDead.json().code, 'LOOM_ERP_OUTBOX_NOT_DEAD');
    assert.equal((await replay(admin, 999_999, { reason: 'try' })).json().code, 'LOOM_ERP_OUTBOX_NOT_FOUND');

    erp.failOrder('PO-P-0001', null);
    const ok = await replay(admin, events[0]!.id, {
      reason: 'ERP master data for the order fixed (ticket 42)',
    });
    assert.equal(ok.statusCode, 200, ok.body);
    assert.equal(ok.json().status, 'pending');
    assert.equal(ok.json().attempts, 0);
    await waitUntil('the replayed order is delivered', async () => (await undelivered(db)) === 0);
    await assertExactlyOnceInOrder(db, erp);
    const audit = await t.app.inject({
      method: 'GET',
      url: `/api/audit?entityType=outbox-event&entityId=${events[0]!.id}`,
      headers: { cookie: admin },
    });
    const entry = audit.json().entries[0];
    assert.equal(entry.action, 'erp.outbox.replayed');
    assert.equal(entry.reason, 'ERP master data for the order fixed (ticket 42)');
    assert.equal(entry.actorName, 'admin');
    await deliverer.stop();
  });
});

describe('B2MML delivery', () => {
  it('sends actuals as schema-valid ProcessProductionPerformance with the message id as BODID, and settles other events without a request', async () => {
    const database = await createTestDatabase();
    cleanups.push(() => database.drop());
    const erp = await startErpStandIn();
    cleanups.push(() => erp.stop());
    await insertCompletions(database.db, 'PO-X-', 2, 4);
    await database.db.query(
      `INSERT INTO outbox_events (aggregate_type, aggregate_id, event_type, payload)
       VALUES ('production-order', 'PO-X-0001', 'OrderHeld', '{"reason": "x"}')`,
    );
    const deliverer = new OutboxDeliverer(
      {
        uow: postgresUnitOfWork(database.db),
        store: postgresOutboxRelayStore(),
        encoder: b2mmlPerformanceEncoder(() => createXsdValidator()),
        endpoint: httpErpClient({ url: erp.performanceUrl, timeoutMs: 5000 }),
      },
      { maxAttempts: 3, retryBaseMs: 10, retryMaxMs: 40 },
    );
    const r = await deliverer.drain();
    assert.deepEqual(r, { claimed: 5, delivered: 5, failed: 0, dead: 0 });
    const got = erp.received();
    assert.equal(got.length, 4, 'OrderHeld has no performance form');
    for (const m of got) {
      assert.equal(m.contentType, 'application/xml');
      assert.match(m.body, new RegExp(`<BODID>${m.key}</BODID>`));
      assert.equal(m.type, 'OperationCompleted');
    }
    assert.deepEqual(erp.byOrder().get('PO-X-0001')?.length, 2);
  });
});

describe('legacy file drop', () => {
  let t: TestApp;
  let inbox: string;
  let outbox: string;
  let erpFeature: ReturnType<typeof erpOutboundFeature>;
  after(async () => {
    await t?.close();
    if (inbox) await rm(path.dirname(inbox), { recursive: true, force: true });
  });

  async function setUp() {
    if (t) return;
    t = await createTestApp();
    await importExamplePlant(t);
    const root = await mkdtemp(path.join(tmpdir(), 'loom-filedrop-'));
    inbox = path.join(root, 'in');
    outbox = path.join(root, 'out');
    erpFeature = erpOutboundFeature({
      config: loadConfig({
        env: { LOOM_ERP_INBOX_DIR: inbox, LOOM_ERP_OUTBOX_DIR: outbox, LOOM_PLANT_TIMEZONE: 'UTC' },
      }),
      db: t.database.db,
      uow: t.loom.uow,
      audit: t.loom.audit,
      clock: t.clock,
      auth: t.loom.auth,
      logger: pino({ level: 'silent' }),
    });
    await erpFeature.fileDrop!.poll();
  }
  /** Two polls: the first sees the file, the second takes it once its size held still. */
  const settle = async () => {
    await erpFeature.fileDrop!.poll();
    return erpFeature.fileDrop!.poll();
  };
  const ordersWith = async (prefix: string) =>
    (
      await t.database.db.query<{ external_id: string }>(
        'SELECT external_id FROM production_orders WHERE external_id LIKE $1 ORDER BY external_id',
        [`${prefix}%`],
      )
    ).rows.map((r) => r.external_id);

  it('creates every order of a good CSV and moves it to processed/', async () => {
    await setUp();
    await writeFile(
      path.join(inbox, 'orders-1.csv'),
      'externalId,product,quantity,dueAt,priority\r\nSAP-F-1,compact-sedan,5,2026-12-01T06:00:00Z,3\r\n"SAP-F-2",compact-sedan,"25",,\r\n',
    );
    assert.deepEqual(await settle(), ['orders-1.csv']);
    assert.deepEqual(await ordersWith('SAP-F-'), ['SAP-F-1', 'SAP-F-2']);
    assert.ok(existsSync(path.join(inbox, 'processed', 'orders-1.csv')));
    assert.ok(!existsSync(path.join(inbox, 'orders-1.csv')));
  });

  it('creates nothing from a partly bad CSV and moves it to failed/ with an error file naming the line', async () => {
    await setUp();
    await writeFile(
      path.join(inbox, 'orders-2.csv'),
      'externalId,product,quantity,dueAt,priority\nSAP-G-1,compact-sedan,5,,\nSAP-G-2,flying-car,1,,\nSAP-G-3,compact-sedan,1,,\n',
    );
    assert.deepEqual(await settle(), ['orders-2.csv']);
    assert.deepEqual(await ordersWith('SAP-G-'), [], 'all or nothing');
    const error = readFileSync(path.join(inbox, 'failed', 'orders-2.csv.error.txt'), 'utf8');
    assert.match(error, /line 3: LOOM_ORDER_UNKNOWN_PRODUCT.*flying-car/);
    assert.ok(existsSync(path.join(inbox, 'failed', 'orders-2.csv')));

    await writeFile(
      path.join(inbox, 'orders-3.csv'),
      'externalId,product,quantity,dueAt,priority\nSAP-H-1,compact-sedan,5,,\nSAP-H-2,compact-sedan,-4,,\nSAP-H-3,compact-sedan,1,tomorrow,1000\n',
    );
    await settle();
    assert.deepEqual(await ordersWith('SAP-H-'), []);
    const error3 = readFileSync(path.join(inbox, 'failed', 'orders-3.csv.error.txt'), 'utf8');
    assert.match(error3, /line 4: dueAt 'tomorrow'/);
    assert.match(error3, /line 4: priority '1000'/);
  });

  it('leaves a file alone while it grows, and ignores dot-files', async () => {
    await setUp();
    const file = path.join(inbox, 'orders-4.csv');
    await writeFile(file, 'externalId,product,quantity,dueAt,priority\nSAP-I-1,compact-sedan,5,,\n');
    await writeFile(path.join(inbox, '.orders-5.csv.tmp'), 'half');
    await writeFile(path.join(inbox, '.orders-6.csv'), 'externalId,product,quantity,dueAt,priority\n');
    assert.deepEqual(await erpFeature.fileDrop!.poll(), []);
    await writeFile(
      file,
      'externalId,product,quantity,dueAt,priority\nSAP-I-1,compact-sedan,5,,\nSAP-I-2,compact-sedan,1,,\n',
    );
    assert.deepEqual(await erpFeature.fileDrop!.poll(), [], 'the size changed since the last poll');
    assert.deepEqual(await erpFeature.fileDrop!.poll(), ['orders-4.csv']);
    assert.deepEqual(await ordersWith('SAP-I-'), ['SAP-I-1', 'SAP-I-2']);
    assert.ok(existsSync(path.join(inbox, '.orders-5.csv.tmp')));
    assert.ok(existsSync(path.join(inbox, '.orders-6.csv')));
  });

  it('creates the orders of a B2MML ProcessProductionSchedule file once by BODID, and moves each copy to processed/', async () => {
    await setUp();
    const schedule = b2mmlFixture('process-production-schedule.xml');
    await writeFile(path.join(inbox, 'schedule-1.xml'), schedule);
    assert.deepEqual(await settle(), ['schedule-1.xml']);
    assert.deepEqual(await ordersWith('100045'), ['1000451', '1000452']);
    assert.ok(existsSync(path.join(inbox, 'processed', 'schedule-1.xml')));
    assert.ok(!existsSync(path.join(inbox, 'failed', 'schedule-1.xml.error.txt')));

    await writeFile(path.join(inbox, 'schedule-1-resent.xml'), schedule);
    assert.deepEqual(await settle(), ['schedule-1-resent.xml']);
    assert.ok(
      existsSync(path.join(inbox, 'processed', 'schedule-1-resent.xml')),
      'a replay is not a failure',
    );
    assert.deepEqual(await ordersWith('100045'), ['1000451', '1000452']);
    const applied = await t.database.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM erp_inbound_messages WHERE message_id = '6f1c2d5e-0b6a-4a55-9d33-0c7c1c1e4a01'`,
    );
    assert.equal(applied.rows[0]?.n, 1, 'one BODID, applied once');
  });

  it('creates nothing from a schema-invalid B2MML file and names the line in its error file', async () => {
    await setUp();
    await writeFile(path.join(inbox, 'schedule-2.xml'), b2mmlFixture('schema-invalid.xml'));
    assert.deepEqual(await settle(), ['schedule-2.xml']);
    assert.deepEqual(await ordersWith('INV-'), []);
    assert.ok(existsSync(path.join(inbox, 'failed', 'schedule-2.xml')));
    const error = readFileSync(path.join(inbox, 'failed', 'schedule-2.xml.error.txt'), 'utf8');
    assert.match(error, /^LOOM_B2MML_SCHEMA_INVALID: ProcessProductionSchedule does not validate/m);
    assert.match(error, /^line 13: element Priority: /m);
  });

  it('refuses a B2MML file with a DOCTYPE before parsing it', async () => {
    await setUp();
    await writeFile(path.join(inbox, 'schedule-3.xml'), b2mmlFixture('billion-laughs.xml'));
    assert.deepEqual(await settle(), ['schedule-3.xml']);
    const error = readFileSync(path.join(inbox, 'failed', 'schedule-3.xml.error.txt'), 'utf8');
    assert.match(error, /^LOOM_B2MML_DOCTYPE_REFUSED: /m);
    assert.match(error, /^line 2: /m);
  });

  it('writes actuals to the outbound folder as one CSV per event, named by message id, with no temp file left', async () => {
    await setUp();
    const db = t.database.db;
    await db.query(`UPDATE outbox_events SET status = 'delivered'`);
    await insertCompletions(db, 'PO-CSV-', 2, 4);
    await db.query(
      `INSERT INTO outbox_events (aggregate_type, aggregate_id, event_type, payload)
       VALUES ('production-order', 'PO-CSV-0001', 'OrderCompleted',
               '{"order": {"id": "PO-CSV-0001", "externalId": "SAP-9", "unit": "pcs"}, "goodQuantity": "4", "at": "2026-11-25T10:00:00.000Z"}'),
              ('production-order', 'PO-CSV-0002', 'OrderHeld', '{"reason": "x"}')`,
    );
    const result = await erpFeature.deliverer!.drain();
    assert.equal(result.delivered, 6);
    const actuals = (
      await db.query<{ message_id: string; event_type: string }>(
        `SELECT message_id, event_type FROM outbox_events WHERE aggregate_id LIKE 'PO-CSV-%' AND event_type <> 'OrderHeld' ORDER BY id`,
      )
    ).rows;
    const files = readdirSync(outbox).sort();
    assert.deepEqual(
      files,
      actuals.map((a) => `${a.message_id}.csv`).sort(),
      'one file per actual, none for OrderHeld, no temp',
    );
    const completed = actuals.find((a) => a.event_type === 'OrderCompleted')!;
    assert.equal(
      readFileSync(path.join(outbox, `${completed.message_id}.csv`), 'utf8'),
      `messageId,eventType,orderId,externalId,operation,good,scrap,unit,at\r\n${completed.message_id},OrderCompleted,PO-CSV-0001,SAP-9,,4,,pcs,2026-11-25T10:00:00.000Z\r\n`,
    );
  });
});

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createTestApp, type TestApp } from '../support/app.ts';
import { importExamplePlant } from '../support/plant.ts';

let t: TestApp;
let planner: string;
let anna: { cookie: string; password: string };
let jonas: { cookie: string; password: string };
let sam: { cookie: string; password: string };
let supervisor: { cookie: string; password: string };

before(async () => {
  t = await createTestApp();
  await importExamplePlant(t);
  planner = (await t.userWithRoles('planner', ['supervisor'])).cookie;
  anna = await t.userWithRoles('anna.berger', ['operator']);
  jonas = await t.userWithRoles('jonas.weber', ['operator']);
  sam = await t.userWithRoles('sam.okafor', ['operator']);
  supervisor = await t.userWithRoles('sup.meier', ['supervisor']);
});
after(async () => {
  await t?.close();
});

interface Op {
  id: number;
  operation: string;
  state: string;
  sequence: number;
  plannedQuantity: string;
  goodQuantity: string;
}

async function createOrder(body: Record<string, unknown>, headers: Record<string, string> = {}) {
  return t.app.inject({
    method: 'POST',
    url: '/api/orders',
    headers: { cookie: planner, ...headers },
    payload: body,
  });
}
async function newOrder(quantity = 10, extra: Record<string, unknown> = {}) {
  const res = await createOrder({ product: 'compact-sedan', quantity, ...extra });
  assert.equal(res.statusCode, 201, res.body);
  return res.json<{ order: { id: string; state: string; releasedAt: string }; operations: Op[] }>();
}
const post = (url: string, cookie: string, payload?: object, headers: Record<string, string> = {}) =>
  t.app.inject({ method: 'POST', url, headers: { cookie, ...headers }, payload: payload ?? {} });

async function audit(entityType: string, entityId: string) {
  const r = await t.app.inject({
    method: 'GET',
    url: `/api/audit?entityType=${entityType}&entityId=${entityId}`,
    headers: { cookie: await t.adminCookie() },
  });
  return r.json<{
    entries: {
      action: string;
      actorName: string;
      reason: string | null;
      oldValue: unknown;
      newValue: unknown;
      signature: unknown;
    }[];
  }>().entries;
}

describe('production orders', () => {
  it('expands an order into operations from the routing, first Ready, the rest Pending', async () => {
    const { order, operations } = await newOrder(10, { externalId: 'SAP-4711', priority: 3 });
    assert.match(order.id, /^PO-\d{6}$/);
    assert.equal(order.state, 'Released');
    assert.deepEqual(
      operations.map((o) => [o.operation, o.state, o.sequence]),
      [
        ['10', 'Ready', 100],
        ['20', 'Pending', 200],
        ['30', 'Pending', 300],
        ['40', 'Pending', 400],
        ['50', 'Pending', 500],
        ['60', 'Pending', 600],
      ],
    );
    const entries = await audit('production-order', order.id);
    assert.equal(entries[0]?.action, 'order.created');
    const outbox = await t.database.db.query('SELECT event_type FROM outbox_events WHERE aggregate_id = $1', [
      order.id,
    ]);
    assert.deepEqual(
      outbox.rows.map((r) => r.event_type),
      ['OrderReleased'],
    );
  });

  it('is idempotent on the external id: a repeat returns the same order, a change updates it while not started', async () => {
    const first = await createOrder({ externalId: 'SAP-1', product: 'compact-sedan', quantity: 5 });
    const again = await createOrder({ externalId: 'SAP-1', product: 'compact-sedan', quantity: 5 });
    assert.equal(again.statusCode, 200);
    assert.equal(again.json().order.id, first.json().order.id);
    assert.equal(again.json().outcome, 'unchanged');
    const changed = await createOrder({ externalId: 'SAP-1', product: 'compact-sedan', quantity: 7 });
    assert.equal(changed.statusCode, 200);
    assert.equal(changed.json().outcome, 'updated');
    assert.equal(changed.json().order.quantity, '7');
    // The routing is the same: the operations keep their ids (a terminal or dispatch list holding
    // one still finds it) and plan the new quantity.
    const ids = (r: typeof first) => r.json<{ operations: Op[] }>().operations.map((o) => o.id);
    assert.deepEqual(ids(changed), ids(first));
    assert.deepEqual(
      changed.json<{ operations: { plannedQuantity: string }[] }>().operations.map((o) => o.plannedQuantity),
      changed.json<{ operations: unknown[] }>().operations.map(() => '7'),
    );
    const count = await t.database.db.query(
      `SELECT count(*)::int AS n FROM production_orders WHERE external_id = 'SAP-1'`,
    );
    assert.equal(count.rows[0]!.n, 1);
  });

  it('refuses unknown products, negative and non-numeric quantities, a fraction of a serial-tracked product, and changes nothing', async () => {
    const before = await t.database.db.query('SELECT count(*)::int AS n FROM production_orders');
    for (const [body, path] of [
      [{ product: 'flying-car', quantity: 1 }, 'product'],
      [{ product: 'compact-sedan', quantity: -3 }, 'quantity'],
      [{ product: 'compact-sedan', quantity: 'ten' }, 'quantity'],
      [{ product: 'compact-sedan', quantity: 1.0000001 }, 'quantity'],
      [{ product: 'compact-sedan', quantity: '2.5' }, 'quantity'],
    ] as const) {
      const res = await createOrder(body);
      assert.ok(res.statusCode === 422 || res.statusCode === 400, `${res.statusCode} ${res.body}`);
      assert.equal(res.json().issues[0].path, path);
    }
    const after = await t.database.db.query('SELECT count(*)::int AS n FROM production_orders');
    assert.equal(after.rows[0]!.n, before.rows[0]!.n);
  });

  it('forbids operators from creating orders', async () => {
    const res = await post('/api/orders', anna.cookie, { product: 'compact-sedan', quantity: 1 });
    assert.equal(res.statusCode, 403);
  });
});

describe('start checks', () => {
  it('starts a qualified operator on an able machine, and the order goes InProgress', async () => {
    const { order, operations } = await newOrder(2);
    const res = await post(`/api/operations/${operations[0]!.id}/start`, anna.cookie, {
      workUnit: 'weld-robot-1',
    });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json().operation.state, 'Running');
    assert.equal(res.json().operation.person, 'op-anna-berger');
    const o = await t.app.inject({
      method: 'GET',
      url: `/api/orders/${order.id}`,
      headers: { cookie: anna.cookie },
    });
    assert.equal(o.json().order.state, 'InProgress');
    const entries = await audit('order-operation', String(operations[0]!.id));
    assert.equal(entries.at(-1)?.action, 'operation.started');
  });

  it('refuses an operator whose qualification expired, naming it and its expiry date; nothing changes', async () => {
    const { operations } = await newOrder(1);
    await t.database.db.query(
      `UPDATE order_operations SET required_qualifications = '{torque-tooling}' WHERE id = $1`,
      [operations[0]!.id],
    );
    const res = await post(`/api/operations/${operations[0]!.id}/start`, jonas.cookie, {
      workUnit: 'weld-robot-2',
    });
    assert.equal(res.statusCode, 409);
    assert.equal(res.json().code, 'LOOM_START_REFUSED');
    assert.match(res.json().detail, /'torque-tooling' expired on 2025-02-28/);
    const op = await t.app.inject({
      method: 'GET',
      url: `/api/operations/${operations[0]!.id}`,
      headers: { cookie: anna.cookie },
    });
    assert.equal(op.json().state, 'Ready');
  });

  it('lets a trainee start only with a qualified trainer co-signing', async () => {
    const { operations } = await newOrder(1);
    const url = `/api/operations/${operations[0]!.id}/start`;
    const alone = await post(url, sam.cookie, { workUnit: 'weld-robot-1' });
    assert.equal(alone.statusCode, 409);
    const badPw = await post(url, sam.cookie, {
      workUnit: 'weld-robot-1',
      trainer: { username: 'anna.berger', password: 'wrong-password-x' },
    });
    assert.equal(badPw.statusCode, 401);
    const ok = await post(url, sam.cookie, {
      workUnit: 'weld-robot-1',
      trainer: { username: 'anna.berger', password: anna.password },
    });
    assert.equal(ok.statusCode, 200, ok.body);
    const entries = await audit('order-operation', String(operations[0]!.id));
    assert.ok(entries.some((e) => e.action === 'operation.trainer-cosigned' && e.signature));
  });

  it('refuses a machine that is Down, then a supervisor override with signature and reason lets the operator start', async () => {
    const { operations } = await newOrder(1);
    const down = await t.app.inject({
      method: 'PUT',
      url: '/api/equipment/weld-robot-3/state',
      headers: { cookie: supervisor.cookie },
      payload: { state: 'Down', reason: 'electrode tip worn' },
    });
    assert.equal(down.statusCode, 200, down.body);
    const url = `/api/operations/${operations[0]!.id}/start`;
    const refused = await post(url, anna.cookie, { workUnit: 'weld-robot-3' });
    assert.equal(refused.statusCode, 409);
    assert.match(refused.json().detail, /weld-robot-3 is Down \(electrode tip worn\)/);
    const notSupervisor = await post(url, anna.cookie, {
      workUnit: 'weld-robot-3',
      override: {
        username: 'jonas.weber',
        password: jonas.password,
        reason: 'tips changed, state not yet reset',
      },
    });
    assert.equal(notSupervisor.statusCode, 403);
    const overridden = await post(url, anna.cookie, {
      workUnit: 'weld-robot-3',
      override: {
        username: 'sup.meier',
        password: supervisor.password,
        reason: 'tips changed, state not yet reset',
      },
    });
    assert.equal(overridden.statusCode, 200, overridden.body);
    const entries = await audit('order-operation', String(operations[0]!.id));
    const e = entries.find((x) => x.action === 'operation.started-with-override')!;
    assert.equal(e.reason, 'tips changed, state not yet reset');
    assert.ok(e.signature);
    await t.app.inject({
      method: 'PUT',
      url: '/api/equipment/weld-robot-3/state',
      headers: { cookie: supervisor.cookie },
      payload: { state: 'Idle' },
    });
  });

  it('refuses a work unit that is not allowed for the operation', async () => {
    const { operations } = await newOrder(1);
    const res = await post(`/api/operations/${operations[0]!.id}/start`, anna.cookie, {
      workUnit: 'paint-oven-1',
    });
    assert.equal(res.statusCode, 422);
    assert.equal(res.json().code, 'LOOM_START_WRONG_WORK_UNIT');
  });

  it('refuses lots to be consumed that are not Released or not in the bill of materials, naming each', async () => {
    const { operations } = await newOrder(1);
    await t.database.db.query(
      `INSERT INTO lots (id, kind, material_id, quantity, unit_id, status) VALUES
         ('START-PANEL', 'lot', 'body-panel', 14, 'pcs', 'Released'),
         ('START-COIL', 'lot', 'steel-coil', 100, 'kg', 'Released'),
         ('START-SEAL-Q', 'lot', 'seam-sealer', 5, 'l', 'Quarantine')`,
    );
    const res = await post(`/api/operations/${operations[0]!.id}/start`, anna.cookie, {
      workUnit: 'weld-robot-1',
      lots: ['START-PANEL', 'START-COIL', 'START-SEAL-Q'],
    });
    assert.equal(res.statusCode, 409, res.body);
    assert.deepEqual(
      res.json().refusals.map((r: { code: string; subject: string }) => `${r.code} ${r.subject}`),
      ['LOOM_START_LOT_NOT_IN_BOM START-COIL', 'LOOM_START_LOT_NOT_RELEASED START-SEAL-Q'],
    );
    const row = await t.database.db.query('SELECT state FROM order_operations WHERE id = $1', [
      operations[0]!.id,
    ]);
    assert.equal(row.rows[0]!.state, 'Ready');
  });

  it('refuses to start an operation whose predecessor is not complete', async () => {
    const { operations } = await newOrder(1);
    const res = await post(`/api/operations/${operations[1]!.id}/start`, anna.cookie, {
      workUnit: 'paint-booth-1',
    });
    assert.equal(res.statusCode, 409);
    assert.match(res.json().detail, /it is Pending/);
  });
});

describe('running, completing and holding', () => {
  it('pauses, resumes and completes with exact quantities; the next step is readied with the good quantity', async () => {
    const { order, operations } = await newOrder(10);
    const id = operations[0]!.id;
    await post(`/api/operations/${id}/start`, anna.cookie, { workUnit: 'weld-robot-1' });
    assert.equal((await post(`/api/operations/${id}/pause`, anna.cookie, {})).json().state, 'Paused');
    const notRunning = await post(`/api/operations/${id}/complete`, anna.cookie, { good: 9 });
    assert.equal(notRunning.statusCode, 409);
    assert.match(notRunning.json().detail, /it is Paused/);
    assert.equal((await post(`/api/operations/${id}/resume`, anna.cookie, {})).json().state, 'Running');
    const done = await post(`/api/operations/${id}/complete`, anna.cookie, {
      good: '9',
      scrap: '1',
      scrapCause: 'weld',
    });
    assert.equal(done.statusCode, 200, done.body);
    assert.equal(done.json().operation.goodQuantity, '9');
    assert.equal(done.json().next.state, 'Ready');
    assert.equal(done.json().next.plannedQuantity, '9');
    const events = await t.database.db.query(
      'SELECT kind, quantity::text AS q, cause_code, first_pass FROM production_events WHERE order_id = $1 ORDER BY id',
      [order.id],
    );
    assert.deepEqual(events.rows, [
      { kind: 'good', q: '9.000000', cause_code: null, first_pass: true },
      { kind: 'scrap', q: '1.000000', cause_code: 'weld', first_pass: true },
    ]);
    const outbox = await t.database.db.query(
      'SELECT event_type FROM outbox_events WHERE aggregate_id = $1 ORDER BY id',
      [order.id],
    );
    assert.ok(outbox.rows.some((r) => r.event_type === 'OperationCompleted'));
  });

  it('refuses scrap without a cause, or with an unknown one', async () => {
    const { operations } = await newOrder(2);
    const id = operations[0]!.id;
    await post(`/api/operations/${id}/start`, anna.cookie, { workUnit: 'weld-robot-1' });
    assert.equal(
      (await post(`/api/operations/${id}/complete`, anna.cookie, { good: 1, scrap: 1 })).statusCode,
      400,
    );
    assert.equal(
      (
        await post(`/api/operations/${id}/complete`, anna.cookie, {
          good: 1,
          scrap: 1,
          scrapCause: 'gremlins',
        })
      ).statusCode,
      400,
    );
    const op = await t.app.inject({
      method: 'GET',
      url: `/api/operations/${id}`,
      headers: { cookie: anna.cookie },
    });
    assert.equal(op.json().state, 'Running');
  });

  it('refuses to report more than planned, counting units under an NCR', async () => {
    const { operations } = await newOrder(3);
    const id = operations[0]!.id;
    await post(`/api/operations/${id}/start`, anna.cookie, { workUnit: 'weld-robot-1' });
    const over = await post(`/api/operations/${id}/complete`, anna.cookie, { good: 4 });
    assert.equal(over.statusCode, 422);
    assert.equal(over.json().code, 'LOOM_OPERATION_OVERREPORTED');
    const failed = await post(`/api/operations/${id}/results`, anna.cookie, {
      results: [{ characteristic: 'nugget-diameter', value: 4.2 }],
    });
    assert.equal(failed.statusCode, 201, failed.body);
    const withNcr = await post(`/api/operations/${id}/complete`, anna.cookie, { good: 3 });
    assert.equal(withNcr.statusCode, 422, 'the unit under NCR is not also good');
    assert.equal((await post(`/api/operations/${id}/complete`, anna.cookie, { good: 2 })).statusCode, 200);
  });

  it('never double-counts two concurrent completions of one operation', async () => {
    const { operations } = await newOrder(4);
    const id = operations[0]!.id;
    await post(`/api/operations/${id}/start`, anna.cookie, { workUnit: 'weld-robot-1' });
    const results = await Promise.all(
      Array.from({ length: 8 }, () => post(`/api/operations/${id}/complete`, anna.cookie, { good: 4 })),
    );
    assert.equal(results.filter((r) => r.statusCode === 200).length, 1);
    assert.ok(results.filter((r) => r.statusCode !== 200).every((r) => r.statusCode === 409));
    const ev = await t.database.db.query(
      `SELECT sum(quantity)::text AS s FROM production_events WHERE operation_pk = $1`,
      [id],
    );
    assert.equal(ev.rows[0]!.s, '4.000000');
  });

  it('replays a completion retried with the same Idempotency-Key, and refuses the key for another body', async () => {
    const { operations } = await newOrder(3);
    const id = operations[0]!.id;
    await post(`/api/operations/${id}/start`, anna.cookie, { workUnit: 'weld-robot-2' });
    const key = { 'idempotency-key': `complete-${id}` };
    const a = await post(`/api/operations/${id}/complete`, anna.cookie, { good: 3 }, key);
    const b = await post(`/api/operations/${id}/complete`, anna.cookie, { good: 3 }, key);
    assert.equal(a.statusCode, 200);
    assert.equal(b.statusCode, 200);
    assert.equal(b.headers['idempotent-replayed'], 'true');
    assert.deepEqual(b.json(), a.json());
    const c = await post(`/api/operations/${id}/complete`, anna.cookie, { good: 2 }, key);
    assert.equal(c.statusCode, 422);
    assert.equal(c.json().code, 'LOOM_IDEMPOTENCY_KEY_REUSED');
  });

  it('holds and releases an order; a held order’s operations cannot start', async () => {
    const { order, operations } = await newOrder(1);
    const q = await t.userWithRoles('qe.hold', ['quality']);
    const held = await post(`/api/orders/${order.id}/hold`, q.cookie, {
      reason: 'supplier alert on body panels',
    });
    assert.equal(held.statusCode, 200, held.body);
    assert.equal(held.json().state, 'OnHold');
    const start = await post(`/api/operations/${operations[0]!.id}/start`, anna.cookie, {
      workUnit: 'weld-robot-1',
    });
    assert.equal(start.statusCode, 409);
    assert.match(start.json().detail, /OnHold/);
    const released = await post(`/api/orders/${order.id}/release`, q.cookie, { reason: 'alert cleared' });
    assert.equal(released.json().state, 'Released');
    const noReason = await post(`/api/orders/${order.id}/hold`, q.cookie, {});
    assert.equal(noReason.statusCode, 400);
  });

  it('books nothing on a Running operation of a held order until the order is released', async () => {
    const { order, operations } = await newOrder(1);
    const op = operations[0]!.id;
    const started = await post(`/api/operations/${op}/start`, anna.cookie, { workUnit: 'weld-robot-1' });
    assert.equal(started.statusCode, 200, started.body);
    const q = await t.userWithRoles('qe.hold2', ['quality']);
    const held = await post(`/api/orders/${order.id}/hold`, q.cookie, { reason: 'supplier alert' });
    assert.equal(held.statusCode, 200, held.body);
    for (const [url, body] of [
      [`/api/operations/${op}/complete`, { good: 1 }],
      [`/api/operations/${op}/outputs`, { lotId: 'WB-HELD-1', material: 'welded-body' }],
      [`/api/operations/${op}/consumptions`, { lotId: 'NO-SUCH-LOT', quantity: 1 }],
    ] as const) {
      const r = await post(url, anna.cookie, body);
      assert.equal(r.statusCode, 409, `${url}: ${r.body}`);
      assert.equal(r.json().code, 'LOOM_ORDER_NOT_ACTIVE');
      assert.match(r.json().detail, new RegExp(`Order ${order.id} is OnHold`));
    }
    const row = await t.database.db.query('SELECT state, good_quantity FROM order_operations WHERE id = $1', [
      op,
    ]);
    assert.deepEqual(row.rows[0], { state: 'Running', good_quantity: '0.000000' });
    const released = await post(`/api/orders/${order.id}/release`, q.cookie, { reason: 'alert cleared' });
    assert.equal(released.statusCode, 200, released.body);
    const done = await post(`/api/operations/${op}/complete`, anna.cookie, { good: 1 });
    assert.equal(done.statusCode, 200, done.body);
  });

  it('runs a whole order to Completed and reports OrderCompleted', async () => {
    const { order, operations } = await newOrder(1);
    const users: Record<string, { cookie: string }> = {
      '10': anna,
      '20': anna,
      '30': await t.userWithRoles('marco.rossi', ['operator']),
      '40': anna,
      '50': await t.userWithRoles('lena.hofmann', ['operator']),
      '60': { cookie: '' },
    };
    users['60'] = users['50']!;
    const units: Record<string, string> = {
      '10': 'weld-robot-1',
      '20': 'paint-booth-1',
      '30': 'paint-oven-1',
      '40': 'asm-station-10',
      '50': 'asm-station-20',
      '60': 'eol-tester-1',
    };
    for (const op of operations) {
      const who = users[op.operation]!.cookie;
      const s = await post(`/api/operations/${op.id}/start`, who, { workUnit: units[op.operation] });
      assert.equal(s.statusCode, 200, `${op.operation}: ${s.body}`);
      const c = await post(`/api/operations/${op.id}/complete`, who, { good: 1 });
      assert.equal(c.statusCode, 200, c.body);
    }
    const o = await t.app.inject({
      method: 'GET',
      url: `/api/orders/${order.id}`,
      headers: { cookie: anna.cookie },
    });
    assert.equal(o.json().order.state, 'Completed');
    const outbox = await t.database.db.query(
      `SELECT payload FROM outbox_events WHERE aggregate_id = $1 AND event_type = 'OrderCompleted'`,
      [order.id],
    );
    assert.equal(outbox.rows[0]!.payload.goodQuantity, '1');
    const last = await t.database.db.query(
      `SELECT event_type FROM outbox_events WHERE aggregate_id = $1 ORDER BY id DESC LIMIT 2`,
      [order.id],
    );
    assert.deepEqual(
      last.rows.map((r) => r.event_type),
      ['OrderCompleted', 'OperationCompleted'],
      'the order completes after its last operation, in outbox order too',
    );
    assert.equal((await t.loom.audit.verify()).ok, true);
  });
});

describe('dispatch', () => {
  it('lists a work center’s work by priority, then due date, with predecessors respected', async () => {
    const low = await newOrder(1, { priority: 900 });
    const urgent = await newOrder(1, { priority: 1 });
    const dueSoon = await newOrder(1, { priority: 900, dueAt: '2026-12-01T06:00:00Z' });
    const res = await t.app.inject({
      method: 'GET',
      url: '/api/dispatch?workCenter=body-line-1',
      headers: { cookie: anna.cookie },
    });
    assert.equal(res.statusCode, 200);
    const ids = res.json<{ order: string; operation: string }[]>().map((e) => e.order);
    assert.ok(ids.indexOf(urgent.order.id) < ids.indexOf(dueSoon.order.id));
    assert.ok(ids.indexOf(dueSoon.order.id) < ids.indexOf(low.order.id));
    const entry = res.json<{ order: string; releasedAt: string }[]>().find((e) => e.order === low.order.id)!;
    assert.equal(entry.releasedAt, low.order.releasedAt, 'each entry shows its third sort key');
    const paint = await t.app.inject({
      method: 'GET',
      url: '/api/dispatch?workCenter=paint-line-1',
      headers: { cookie: anna.cookie },
    });
    assert.ok(
      !paint.json<{ order: string }[]>().some((e) => e.order === low.order.id),
      'step 20 waits for step 10',
    );
    const unit = await t.app.inject({
      method: 'GET',
      url: '/api/dispatch?workUnit=weld-robot-1',
      headers: { cookie: anna.cookie },
    });
    assert.ok(unit.json<{ order: string }[]>().some((e) => e.order === urgent.order.id));
  });

  it('answers an empty list only for equipment that exists at the level asked', async () => {
    const get = (query: string) =>
      t.app.inject({ method: 'GET', url: `/api/dispatch?${query}`, headers: { cookie: anna.cookie } });
    const unknown = await get('workUnit=weld-robot-99');
    assert.equal(unknown.statusCode, 404, unknown.body);
    assert.equal(unknown.json<{ code: string }>().code, 'LOOM_PLANT_NOT_FOUND');
    assert.match(unknown.json<{ detail: string }>().detail, /weld-robot-99/);
    const wrongLevel = await get('workCenter=weld-robot-1');
    assert.equal(wrongLevel.statusCode, 400, wrongLevel.body);
    const issue = wrongLevel.json<{ issues: { path: string; message: string }[] }>().issues[0]!;
    assert.equal(issue.path, 'workCenter');
    assert.match(issue.message, /workUnit=weld-robot-1/);
    const area = await get('workUnit=body-shop');
    assert.equal(area.statusCode, 400, area.body);
    assert.match(area.json<{ detail: string }>().detail, /'body-shop' is an Area, not a WorkUnit/);
    // A work unit with nothing queued still answers 200 with an empty list.
    const idle = await get('workUnit=asm-station-10');
    assert.equal(idle.statusCode, 200, idle.body);
  });

  // The dispatch lists read operation_queue (ADR 0015): one row per operation still to be done,
  // kept by triggers. It must always equal what order_operations says.
  async function queueDrift() {
    const r = await t.database.db.query<{ missing: string[] | null; extra: string[] | null }>(
      `WITH expected AS (
         SELECT o.id, o.work_center_id, o.work_unit_id
           FROM order_operations o JOIN production_orders p ON p.id = o.order_id
          WHERE o.state <> 'Completed' AND p.state <> 'Cancelled'),
       queued AS (SELECT operation_pk AS id, work_center_id, work_unit_id FROM operation_queue)
       SELECT (SELECT array_agg(row(e.*)::text) FROM (SELECT * FROM expected EXCEPT SELECT * FROM queued) e) AS missing,
              (SELECT array_agg(row(e.*)::text) FROM (SELECT * FROM queued EXCEPT SELECT * FROM expected) e) AS extra`,
    );
    return r.rows[0]!;
  }
  const listed = async (query: string) => {
    const res = await t.app.inject({
      method: 'GET',
      url: `/api/dispatch?${query}`,
      headers: { cookie: anna.cookie },
    });
    assert.equal(res.statusCode, 200, res.body);
    return res.json<{ order: string; operation: string; state: string }[]>();
  };

  it('keeps the queue it lists from exact through start, completion and cancellation', async () => {
    const clean = { missing: null, extra: null };
    const { order, operations } = await newOrder(2, { priority: 2 });
    const other = await newOrder(1, { priority: 2 });
    assert.deepEqual(await queueDrift(), clean, 'new operations enter the queue');

    const first = operations[0]!.id;
    assert.equal(
      (await post(`/api/operations/${first}/start`, anna.cookie, { workUnit: 'weld-robot-1' })).statusCode,
      200,
    );
    assert.deepEqual(await queueDrift(), clean, 'the queue follows the work unit a start assigns');
    const mine = (await listed('workUnit=weld-robot-1')).filter((e) => e.order === order.id);
    assert.deepEqual(
      mine.map((e) => [e.operation, e.state]),
      [['10', 'Running']],
    );

    assert.equal((await post(`/api/operations/${first}/complete`, anna.cookie, { good: 2 })).statusCode, 200);
    assert.deepEqual(await queueDrift(), clean, 'a completed operation leaves the queue');
    assert.ok(!(await listed('workUnit=weld-robot-1')).some((e) => e.order === order.id));
    assert.deepEqual(
      (await listed('workCenter=paint-line-1'))
        .filter((e) => e.order === order.id)
        .map((e) => [e.operation, e.state]),
      [['20', 'Ready']],
      'the next step is listed at its work center once readied',
    );

    assert.equal(
      (
        await post(`/api/orders/${other.order.id}/cancel`, supervisor.cookie, {
          reason: 'customer cancelled',
        })
      ).statusCode,
      200,
    );
    assert.deepEqual(await queueDrift(), clean, 'a cancelled order’s operations leave the queue');
    const left = await t.database.db.query(
      'SELECT 1 FROM operation_queue q JOIN order_operations o ON o.id = q.operation_pk WHERE o.order_id = $1',
      [other.order.id],
    );
    assert.equal(left.rowCount, 0);
    assert.ok(!(await listed('workCenter=body-line-1')).some((e) => e.order === other.order.id));
  });

  it('changes an operation’s state without writing an index entry (a HOT update)', async () => {
    const indexed = await t.database.db.query<{ column: string }>(
      `SELECT DISTINCT a.attname AS column
         FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
        WHERE i.indrelid = 'order_operations'::regclass
        ORDER BY 1`,
    );
    assert.deepEqual(
      indexed.rows.map((r) => r.column),
      ['id', 'operation_id', 'order_id', 'sequence'],
      'no index of order_operations covers a column that a state change writes',
    );
    const { operations } = await newOrder(1);
    const client = await t.database.db.pool.connect();
    try {
      // The xact counters also hold this backend's earlier, not yet reported updates: compare.
      const counters = async () =>
        (
          await client.query<{ updated: string; hot: string }>(
            `SELECT pg_stat_get_xact_tuples_updated('order_operations'::regclass)::text AS updated,
                    pg_stat_get_xact_tuples_hot_updated('order_operations'::regclass)::text AS hot`,
          )
        ).rows[0]!;
      await client.query('BEGIN');
      const before = await counters();
      await client.query(`UPDATE order_operations SET state = 'Ready', planned_quantity = 1 WHERE id = $1`, [
        operations[1]!.id,
      ]);
      const after = await counters();
      assert.deepEqual(
        [Number(after.updated) - Number(before.updated), Number(after.hot) - Number(before.hot)],
        [1, 1],
      );
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
  });
});

describe('audit entries of every execution write', () => {
  it('records pause, resume, hold, release and completion with old and new state', async () => {
    const { operations } = await newOrder(2);
    const id = operations[0]!.id;
    const q = await t.userWithRoles('qe.audit', ['quality']);
    await post(`/api/operations/${id}/start`, anna.cookie, { workUnit: 'weld-robot-1' });
    await post(`/api/operations/${id}/pause`, anna.cookie, { reason: 'break' });
    await post(`/api/operations/${id}/resume`, anna.cookie, {});
    await post(`/api/operations/${id}/hold`, q.cookie, { reason: 'suspect electrode' });
    await post(`/api/operations/${id}/release`, q.cookie, { reason: 'electrode checked' });
    await post(`/api/operations/${id}/resume`, anna.cookie, {});
    await post(`/api/operations/${id}/complete`, anna.cookie, { good: 2 });
    const entries = await audit('order-operation', String(id));
    assert.deepEqual(
      entries.map((e) => [
        e.action,
        e.actorName,
        (e.oldValue as { state: string }).state,
        (e.newValue as { state: string }).state,
      ]),
      [
        ['operation.started', 'anna.berger', 'Ready', 'Running'],
        ['operation.paused', 'anna.berger', 'Running', 'Paused'],
        ['operation.resumed', 'anna.berger', 'Paused', 'Running'],
        ['operation.held', 'qe.audit', 'Running', 'OnHold'],
        ['operation.released', 'qe.audit', 'OnHold', 'Paused'],
        ['operation.resumed', 'anna.berger', 'Paused', 'Running'],
        ['operation.completed', 'anna.berger', 'Running', 'Completed'],
      ],
    );
    assert.equal(entries[3]!.reason, 'suspect electrode');
  });

  it('records equipment state changes with the reason', async () => {
    await t.app.inject({
      method: 'PUT',
      url: '/api/equipment/asm-station-30/state',
      headers: { cookie: supervisor.cookie },
      payload: { state: 'Setup', reason: 'changeover to estate body' },
    });
    const entries = await audit('equipment', 'asm-station-30');
    const e = entries.at(-1)!;
    assert.equal(e.action, 'equipment.state-changed');
    assert.deepEqual(e.newValue, { state: 'Setup', reason: 'changeover to estate body' });
    assert.equal(e.reason, 'changeover to estate body');
  });
});

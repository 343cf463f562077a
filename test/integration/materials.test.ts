/**
 * Lots and serials over HTTP on a real PostgreSQL: receive, split, merge, move, hold/release with
 * e-signature, consumption and output at an operation — each audited; refusals change nothing;
 * concurrent consumers never overdraw a lot; Idempotency-Key replays.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { postgresLotStore } from '../../src/adapters/db/postgres-lot-store.ts';
import { asTx } from '../../src/adapters/db/postgres-unit-of-work.ts';
import { parsePositiveQuantity } from '../../src/domain/shared/quantity.ts';
import { createTestApp, type TestApp } from '../support/app.ts';
import { insertOperation, insertOrder } from '../support/execution-fixtures.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const EXAMPLE = readFileSync(path.join(ROOT, 'examples/plant.yaml'), 'utf8');

let t: TestApp;
let admin: string;
let operator: string;
let qa: { cookie: string; password: string };
let supervisor: string;

before(async () => {
  t = await createTestApp();
  admin = await t.adminCookie();
  const imported = await t.app.inject({
    method: 'POST',
    url: '/api/plant/import',
    headers: { cookie: admin, 'content-type': 'application/yaml' },
    payload: EXAMPLE,
  });
  assert.equal(imported.statusCode, 200, imported.body);
  operator = (await t.userWithRoles('anna.berger', ['operator'])).cookie;
  qa = await t.userWithRoles('quinn.qa', ['quality']);
  supervisor = (await t.userWithRoles('sue.super', ['supervisor'])).cookie;
});
after(async () => {
  await t?.close();
});

type Method = 'GET' | 'POST';
const send = (
  method: Method,
  url: string,
  cookie: string,
  payload?: unknown,
  headers: Record<string, string> = {},
) =>
  t.app.inject({
    method,
    url,
    headers: { cookie, ...headers },
    ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }),
  });

async function audit(entityId: string) {
  const r = await send('GET', `/api/audit?entityType=lot&entityId=${encodeURIComponent(entityId)}`, admin);
  assert.equal(r.statusCode, 200, r.body);
  const body = r.json();
  // Audit values are free-form JSON; the assertions below are their type check.
  type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  return (Array.isArray(body) ? body : body.entries) as {
    action: string;
    oldValue: Json;
    newValue: Json;
    reason: string | null;
    signature: Json;
    actorName: string;
  }[];
}

async function receive(body: Record<string, unknown>, cookie = qa.cookie) {
  const r = await send('POST', '/api/lots', cookie, body);
  assert.equal(r.statusCode, 201, r.body);
  return r.json();
}

const COUNTED = [
  'lots',
  'material_consumptions',
  'genealogy_edges',
  'outbox_events',
  'audit_log',
  'idempotency_keys',
];
async function counts(): Promise<Record<string, number>> {
  const r = await t.database.db.query(
    `SELECT ${COUNTED.map((n) => `(SELECT count(*) FROM ${n})::int AS ${n}`).join(', ')}`,
  );
  return r.rows[0] as Record<string, number>;
}
async function quantityOf(id: string): Promise<string> {
  const r = await t.database.db.query<{ q: string; s: string }>(
    'SELECT quantity::text AS q, status AS s FROM lots WHERE id = $1',
    [id],
  );
  return `${r.rows[0]!.q} ${r.rows[0]!.s}`;
}

describe('receiving lots and serials', () => {
  it('receives a lot into Quarantine by default, with an audit entry holding the new value', async () => {
    const lot = await receive(
      {
        id: 'HARN-R1',
        material: 'wiring-harness',
        quantity: '25',
        unit: 'pcs',
        supplierLot: 'SUP-4711',
        location: 'WH-A',
      },
      operator,
    );
    assert.equal(lot.status, 'Quarantine');
    assert.equal(lot.kind, 'lot');
    assert.equal(lot.quantity, '25');
    assert.equal(lot.unit, 'pcs');
    assert.equal(lot.supplierLot, 'SUP-4711');
    const [entry] = await audit('HARN-R1');
    assert.equal(entry!.action, 'lot.received');
    assert.equal(entry!.oldValue, null);
    assert.equal(entry!.newValue.quantity, '25');
    assert.equal(entry!.actorName, 'anna.berger');
  });

  it('keeps quantities exact: 0.1 + 0.2 of sealer is 0.3 litres, not 0.30000000000000004', async () => {
    await receive({ id: 'SEAL-R1', material: 'seam-sealer', quantity: 0.3, status: 'Released' });
    await receive({ id: 'SEAL-R2', material: 'seam-sealer', quantity: '0.1', status: 'Released' });
    const split = await send('POST', '/api/lots/SEAL-R1/split', operator, {
      newId: 'SEAL-R1b',
      quantity: '0.2',
    });
    assert.equal(split.statusCode, 201, split.body);
    assert.equal(split.json().source.quantity, '0.1');
    const merged = await send('POST', '/api/lots/merge', operator, { into: 'SEAL-R2', from: ['SEAL-R1b'] });
    assert.equal(merged.statusCode, 200, merged.body);
    assert.equal(merged.json().into.quantity, '0.3');
  });

  it('receives a serial of a serial-tracked material with quantity 1, and refuses any other quantity', async () => {
    const s = await receive({ id: 'WB-R1', material: 'welded-body' });
    assert.equal(s.kind, 'serial');
    assert.equal(s.quantity, '1');
    const two = await send('POST', '/api/lots', qa.cookie, {
      id: 'WB-R2',
      material: 'welded-body',
      quantity: 2,
    });
    assert.equal(two.statusCode, 400, two.body);
    assert.match(two.json().detail, /serial must be 1/);
  });

  it('refuses a unit other than the material’s, an unknown material, a duplicate id, a bad quantity', async () => {
    const before = await counts();
    const unit = await send('POST', '/api/lots', qa.cookie, {
      id: 'X-1',
      material: 'steel-coil',
      quantity: 5,
      unit: 'pcs',
    });
    assert.equal(unit.statusCode, 422);
    assert.equal(unit.json().code, 'LOOM_LOT_UNIT_MISMATCH');
    assert.match(unit.json().detail, /kept in kg, not pcs/);
    const unknown = await send('POST', '/api/lots', qa.cookie, {
      id: 'X-2',
      material: 'unobtainium',
      quantity: 5,
    });
    assert.equal(unknown.statusCode, 404);
    const dup = await send('POST', '/api/lots', qa.cookie, {
      id: 'HARN-R1',
      material: 'wiring-harness',
      quantity: 5,
    });
    assert.equal(dup.statusCode, 409);
    assert.equal(dup.json().code, 'LOOM_LOT_EXISTS');
    for (const quantity of [-5, '0', 'ten', '1.0000001', '1e3']) {
      const bad = await send('POST', '/api/lots', qa.cookie, { id: 'X-3', material: 'steel-coil', quantity });
      assert.equal(bad.statusCode, 400, `${String(quantity)}: ${bad.body}`);
      assert.equal(bad.json().code, 'LOOM_VALIDATION_FAILED');
      assert.match(bad.json().detail, /quantity/);
    }
    const badId = await send('POST', '/api/lots', qa.cookie, {
      id: 'no spaces',
      material: 'steel-coil',
      quantity: 1,
    });
    assert.equal(badId.statusCode, 400);
    assert.deepEqual(await counts(), before);
  });

  it('lets only quality (or admin, or the ERP) receive straight into Released', async () => {
    const r = await send('POST', '/api/lots', operator, {
      id: 'X-4',
      material: 'steel-coil',
      quantity: 5,
      status: 'Released',
    });
    assert.equal(r.statusCode, 403);
    const ok = await receive({
      id: 'COIL-R1',
      material: 'steel-coil',
      quantity: '1200.5',
      status: 'Released',
    });
    assert.equal(ok.status, 'Released');
  });

  it('reads a lot by id and lists lots by material and status', async () => {
    const one = await send('GET', '/api/lots/HARN-R1', operator);
    assert.equal(one.statusCode, 200);
    assert.equal(one.json().material, 'wiring-harness');
    const missing = await send('GET', '/api/lots/NOPE', operator);
    assert.equal(missing.statusCode, 404);
    assert.equal(missing.json().code, 'LOOM_LOT_NOT_FOUND');
    const list = await send('GET', '/api/lots?material=wiring-harness&status=Quarantine', operator);
    assert.equal(list.statusCode, 200);
    assert.deepEqual(
      list.json().map((l: { id: string }) => l.id),
      ['HARN-R1'],
    );
  });
});

describe('split, merge and move', () => {
  it('splits a lot: the new lot takes the quantity, a split edge links them, both are audited', async () => {
    await receive({
      id: 'PANEL-S1',
      material: 'body-panel',
      quantity: 100,
      status: 'Released',
      location: 'WH-B',
    });
    const r = await send('POST', '/api/lots/PANEL-S1/split', operator, {
      newId: 'PANEL-S1-a',
      quantity: '30',
    });
    assert.equal(r.statusCode, 201, r.body);
    assert.equal(r.json().source.quantity, '70');
    assert.deepEqual(
      { q: r.json().created.quantity, s: r.json().created.status, loc: r.json().created.location },
      { q: '30', s: 'Released', loc: 'WH-B' },
    );
    const edge = await t.database.db.query(
      `SELECT kind, quantity::text AS q FROM genealogy_edges WHERE from_lot = 'PANEL-S1' AND to_lot = 'PANEL-S1-a'`,
    );
    assert.deepEqual(edge.rows, [{ kind: 'split', q: '30.000000' }]);
    const entries = await audit('PANEL-S1');
    const split = entries.find((e) => e.action === 'lot.split')!;
    assert.equal(split.oldValue.quantity, '100');
    assert.equal(split.newValue.quantity, '70');
    assert.equal(split.newValue.splitInto, 'PANEL-S1-a');
    assert.equal((await audit('PANEL-S1-a'))[0]!.action, 'lot.created-by-split');
  });

  it('refuses to split more than is on hand, or a serial, changing nothing', async () => {
    const before = await counts();
    const r = await send('POST', '/api/lots/PANEL-S1/split', operator, {
      newId: 'PANEL-S1-b',
      quantity: '70.000001',
    });
    assert.equal(r.statusCode, 409);
    assert.equal(r.json().code, 'LOOM_LOT_INSUFFICIENT');
    assert.match(r.json().detail, /has 70 pcs on hand/);
    const serial = await send('POST', '/api/lots/WB-R1/split', operator, { newId: 'WB-R1-b', quantity: 1 });
    assert.equal(serial.statusCode, 409);
    assert.equal(serial.json().code, 'LOOM_LOT_SERIAL_INDIVISIBLE');
    assert.deepEqual(await counts(), before);
  });

  it('merges lots of one material into one: sources end Consumed, merge edges drawn, audited', async () => {
    await receive({ id: 'PANEL-M1', material: 'body-panel', quantity: 10, status: 'Released' });
    await receive({ id: 'PANEL-M2', material: 'body-panel', quantity: '2.5', status: 'Released' });
    const r = await send('POST', '/api/lots/merge', operator, {
      into: 'PANEL-M1',
      from: ['PANEL-M2', 'PANEL-S1-a'],
    });
    assert.equal(r.statusCode, 200, r.body);
    assert.equal(r.json().into.quantity, '42.5');
    assert.deepEqual(
      r.json().from.map((l: { quantity: string; status: string }) => `${l.quantity} ${l.status}`),
      ['0 Consumed', '0 Consumed'],
    );
    const edges = await t.database.db.query(
      `SELECT from_lot, quantity::text AS q FROM genealogy_edges WHERE to_lot = 'PANEL-M1' AND kind = 'merge' ORDER BY from_lot`,
    );
    assert.deepEqual(edges.rows, [
      { from_lot: 'PANEL-M2', q: '2.500000' },
      { from_lot: 'PANEL-S1-a', q: '30.000000' },
    ]);
    const [entry] = (await audit('PANEL-M1')).filter((e) => e.action === 'lot.merged');
    assert.equal(entry!.oldValue.into.quantity, '10');
    assert.equal(entry!.newValue.into.quantity, '42.5');
    assert.equal(entry!.newValue.added, '32.5');
  });

  it('refuses to merge different materials or different statuses', async () => {
    await receive({ id: 'PANEL-M3', material: 'body-panel', quantity: 1 }); // Quarantine
    const before = await counts();
    const material = await send('POST', '/api/lots/merge', operator, { into: 'PANEL-M1', from: ['COIL-R1'] });
    assert.equal(material.statusCode, 422);
    assert.equal(material.json().code, 'LOOM_LOT_MATERIAL_MISMATCH');
    const status = await send('POST', '/api/lots/merge', operator, { into: 'PANEL-M1', from: ['PANEL-M3'] });
    assert.equal(status.statusCode, 409);
    assert.equal(status.json().code, 'LOOM_LOT_STATUS_MISMATCH');
    assert.match(status.json().detail, /Quarantine/);
    const consumed = await send('POST', '/api/lots/merge', operator, {
      into: 'PANEL-M1',
      from: ['PANEL-M2'],
    });
    assert.equal(consumed.json().code, 'LOOM_LOT_CONSUMED');
    assert.deepEqual(await counts(), before);
  });

  it('moves a lot to another location and audits old and new location', async () => {
    const r = await send('POST', '/api/lots/PANEL-M1/move', operator, { location: 'LINE-SIDE-1' });
    assert.equal(r.statusCode, 200, r.body);
    assert.equal(r.json().location, 'LINE-SIDE-1');
    const [entry] = (await audit('PANEL-M1')).filter((e) => e.action === 'lot.moved');
    assert.equal(entry!.oldValue.location, null);
    assert.equal(entry!.newValue.location, 'LINE-SIDE-1');
  });
});

describe('hold and release (quality, electronic signature)', () => {
  const signed = (password: string, meaning = 'Blocked pending supplier 8D') => ({
    reason: 'Supplier notified a crimping defect',
    signature: { password, meaning },
  });

  it('holds a Released lot with a signature bound into the audit entry', async () => {
    await receive({ id: 'HARN-H1', material: 'wiring-harness', quantity: 40, status: 'Released' });
    const r = await send('POST', '/api/lots/HARN-H1/hold', qa.cookie, signed(qa.password));
    assert.equal(r.statusCode, 200, r.body);
    assert.equal(r.json().status, 'Blocked');
    const [entry] = (await audit('HARN-H1')).filter((e) => e.action === 'lot.held');
    assert.equal(entry!.reason, 'Supplier notified a crimping defect');
    assert.equal(entry!.oldValue.status, 'Released');
    assert.equal(entry!.newValue.status, 'Blocked');
    assert.equal(entry!.signature.meaning, 'Blocked pending supplier 8D');
    assert.match(entry!.signature.signerName, /quinn\.qa/);
    assert.match(entry!.signature.recordHash, /^[0-9a-f]{64}$/);
  });

  it('refuses a wrong signature password, other roles, and holding a lot twice — changing nothing', async () => {
    const before = await counts();
    const wrong = await send('POST', '/api/lots/HARN-H1/release', qa.cookie, signed('not my password'));
    assert.equal(wrong.statusCode, 401);
    assert.equal(wrong.json().code, 'LOOM_SIGNATURE_INVALID');
    const op = await send('POST', '/api/lots/HARN-H1/release', operator, signed('whatever'));
    assert.equal(op.statusCode, 403);
    const twice = await send('POST', '/api/lots/HARN-H1/hold', qa.cookie, signed(qa.password));
    assert.equal(twice.statusCode, 409);
    assert.equal(twice.json().code, 'LOOM_LOT_TRANSITION_REFUSED');
    assert.match(twice.json().detail, /is Blocked/);
    assert.deepEqual(await counts(), before);
    assert.equal(await quantityOf('HARN-H1'), '40.000000 Blocked');
  });

  it('releases a Blocked lot, and a Quarantine lot, with a signature', async () => {
    const r = await send(
      'POST',
      '/api/lots/HARN-H1/release',
      qa.cookie,
      signed(qa.password, 'Released after 8D closure'),
    );
    assert.equal(r.statusCode, 200, r.body);
    assert.equal(r.json().status, 'Released');
    const [entry] = (await audit('HARN-H1')).filter((e) => e.action === 'lot.released');
    assert.equal(entry!.oldValue.status, 'Blocked');
    assert.equal(entry!.newValue.status, 'Released');
    assert.equal(entry!.signature.meaning, 'Released after 8D closure');
    const q = await send(
      'POST',
      '/api/lots/HARN-R1/release',
      qa.cookie,
      signed(qa.password, 'Incoming inspection passed'),
    );
    assert.equal(q.statusCode, 200, q.body);
    assert.equal(q.json().status, 'Released');
  });
});

describe('consumption at an operation', () => {
  let order: string;
  let running: number;
  let pending: number;

  before(async () => {
    order = await insertOrder(t.database.db, { id: 'PO-MAT-1' });
    running = await insertOperation(t.database.db, {
      orderId: order,
      operationId: '40',
      name: 'Install wiring harness',
      bom: [
        { material: 'wiring-harness', quantity: '1' },
        { material: 'welded-body', quantity: '1' },
      ],
      personId: 'op-anna-berger',
    });
    pending = await insertOperation(t.database.db, {
      orderId: order,
      operationId: '50',
      name: 'Fit seats and wheels',
      state: 'Pending',
      bom: [{ material: 'wheel-assembly', quantity: '4' }],
    });
    await receive({ id: 'HARN-C1', material: 'wiring-harness', quantity: 10, status: 'Released' });
    await receive({ id: 'HARN-C-Q', material: 'wiring-harness', quantity: 10 }); // Quarantine
    await receive({ id: 'HARN-C-B', material: 'wiring-harness', quantity: 10, status: 'Released' });
    const held = await send('POST', '/api/lots/HARN-C-B/hold', qa.cookie, {
      reason: 'suspect',
      signature: { password: qa.password, meaning: 'hold' },
    });
    assert.equal(held.statusCode, 200, held.body);
  });

  const consume = (body: unknown, pk = running, cookie = operator, headers: Record<string, string> = {}) =>
    send('POST', `/api/operations/${pk}/consumptions`, cookie, body, headers);

  it('consumes part of a Released lot: quantity taken, consumption and audit and outbox written', async () => {
    await t.database.db.query(`UPDATE production_orders SET external_id = 'ERP-4711' WHERE id = $1`, [order]);
    const r = await consume({ lotId: 'HARN-C1', quantity: '3' });
    assert.equal(r.statusCode, 201, r.body);
    const c = r.json();
    assert.equal(c.quantity, '3');
    assert.equal(c.lot.quantity, '7');
    assert.equal(c.person, 'op-anna-berger');
    assert.equal(c.equipment, 'asm-station-10');
    const [entry] = (await audit('HARN-C1')).filter((e) => e.action === 'lot.consumed');
    assert.equal(entry!.oldValue.quantity, '10');
    assert.equal(entry!.newValue.quantity, '7');
    assert.equal(entry!.newValue.consumption.operation, running);
    const ev = await t.database.db.query(
      `SELECT aggregate_type, aggregate_id, payload FROM outbox_events WHERE event_type = 'MaterialConsumed' ORDER BY id DESC LIMIT 1`,
    );
    assert.equal(ev.rows[0]!.aggregate_type, 'production-order');
    assert.equal(ev.rows[0]!.aggregate_id, order);
    assert.equal(ev.rows[0]!.payload.lot, 'HARN-C1');
    assert.equal(ev.rows[0]!.payload.material, 'wiring-harness');
    assert.equal(ev.rows[0]!.payload.quantity, '3');
    assert.equal(ev.rows[0]!.payload.unit, 'pcs');
    assert.equal(ev.rows[0]!.payload.operation.operationId, '40');
    const ext = await t.database.db.query<{ external_id: string | null }>(
      'SELECT external_id FROM production_orders WHERE id = $1',
      [order],
    );
    assert.equal(
      ev.rows[0]!.payload.externalId,
      ext.rows[0]!.external_id,
      'the ERP order number travels with the event',
    );
  });

  it('refuses each bad consumption with a clear 4xx naming the problem, and changes nothing', async () => {
    const cases: [string, unknown, number, string, number, RegExp][] = [
      [
        'negative quantity',
        { lotId: 'HARN-C1', quantity: -1 },
        running,
        'LOOM_VALIDATION_FAILED',
        400,
        /quantity must be greater than 0/,
      ],
      [
        'non-numeric quantity',
        { lotId: 'HARN-C1', quantity: 'two' },
        running,
        'LOOM_VALIDATION_FAILED',
        400,
        /quantity must be a decimal/,
      ],
      [
        'zero quantity',
        { lotId: 'HARN-C1', quantity: 0 },
        running,
        'LOOM_VALIDATION_FAILED',
        400,
        /greater than 0/,
      ],
      [
        'unknown lot',
        { lotId: 'NO-SUCH-LOT', quantity: 1 },
        running,
        'LOOM_LOT_NOT_FOUND',
        404,
        /NO-SUCH-LOT/,
      ],
      [
        'Blocked lot',
        { lotId: 'HARN-C-B', quantity: 1 },
        running,
        'LOOM_LOT_NOT_RELEASED',
        409,
        /is Blocked/,
      ],
      [
        'Quarantine lot',
        { lotId: 'HARN-C-Q', quantity: 1 },
        running,
        'LOOM_LOT_NOT_RELEASED',
        409,
        /is Quarantine/,
      ],
      [
        'operation not Running',
        { lotId: 'HARN-C1', quantity: 1 },
        pending,
        'LOOM_OPERATION_NOT_RUNNING',
        409,
        /is Pending/,
      ],
      [
        'unknown operation',
        { lotId: 'HARN-C1', quantity: 1 },
        999999,
        'LOOM_OPERATION_NOT_FOUND',
        404,
        /999999/,
      ],
      [
        'material not in BOM',
        { lotId: 'COIL-R1', quantity: 1 },
        running,
        'LOOM_MATERIAL_NOT_IN_BOM',
        422,
        /steel-coil, which is not in the bill of materials/,
      ],
      [
        'more than on hand',
        { lotId: 'HARN-C1', quantity: '7.5' },
        running,
        'LOOM_LOT_INSUFFICIENT',
        409,
        /has 7 pcs on hand; 7.5 pcs/,
      ],
      [
        'unknown field',
        { lotId: 'HARN-C1', quantity: 1, force: true },
        running,
        'LOOM_VALIDATION_FAILED',
        400,
        /force/,
      ],
    ];
    const before = await counts();
    for (const [name, body, pk, code, status, detail] of cases) {
      const r = await consume(body, pk);
      assert.equal(r.statusCode, status, `${name}: ${r.body}`);
      assert.equal(r.json().code, code, name);
      assert.match(r.json().detail, detail, name);
    }
    const supervisorToo = await consume({ lotId: 'HARN-C1', quantity: 8 }, running, supervisor);
    assert.equal(supervisorToo.statusCode, 409);
    const qualityMayNot = await consume({ lotId: 'HARN-C1', quantity: 1 }, running, qa.cookie);
    assert.equal(qualityMayNot.statusCode, 403);
    assert.deepEqual(await counts(), before);
    assert.equal(await quantityOf('HARN-C1'), '7.000000 Released');
  });

  it('turns a lot consumed to 0 into Consumed and refuses the next consumption naming that', async () => {
    const r = await consume({ lotId: 'HARN-C1', quantity: 7 });
    assert.equal(r.statusCode, 201, r.body);
    assert.equal(r.json().lot.status, 'Consumed');
    assert.equal(r.json().lot.quantity, '0');
    const again = await consume({ lotId: 'HARN-C1', quantity: 1 });
    assert.equal(again.statusCode, 409);
    assert.equal(again.json().code, 'LOOM_LOT_CONSUMED');
    assert.match(again.json().detail, /is Consumed/);
  });

  it('never overdraws a lot under 20 parallel consumers: exactly what was on hand is consumed', async () => {
    await receive({ id: 'HARN-P1', material: 'wiring-harness', quantity: '7.5', status: 'Released' });
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        consume({ lotId: 'HARN-P1', quantity: i % 2 === 0 ? '0.5' : '1' }),
      ),
    );
    const codes = results.map((r) => r.statusCode);
    assert.ok(
      codes.every((c) => c === 201 || c === 409),
      codes.join(','),
    );
    for (const r of results.filter((x) => x.statusCode === 409)) {
      assert.ok(['LOOM_LOT_INSUFFICIENT', 'LOOM_LOT_CONSUMED'].includes(r.json().code), r.body);
    }
    const granted = results
      .filter((r) => r.statusCode === 201)
      .reduce((s, r) => s + Math.round(Number(r.json().quantity) * 10), 0);
    const consumed = await t.database.db.query<{ total: string; n: number }>(
      `SELECT sum(quantity)::text AS total, count(*)::int AS n FROM material_consumptions WHERE lot_id = 'HARN-P1'`,
    );
    const left = await t.database.db.query<{ q: string }>(
      `SELECT quantity::text AS q FROM lots WHERE id = 'HARN-P1'`,
    );
    assert.equal(Number(consumed.rows[0]!.total) + Number(left.rows[0]!.q), 7.5);
    assert.equal(granted / 10, Number(consumed.rows[0]!.total));
    assert.equal(consumed.rows[0]!.n, codes.filter((c) => c === 201).length);
    assert.ok(codes.includes(409), 'some requests must have been refused');
    // Whatever is left is less than the smallest refused request: nobody was refused needlessly.
    assert.ok(Number(left.rows[0]!.q) < 0.5 || !results.some((r, i) => r.statusCode === 409 && i % 2 === 0));
    const audited = (await audit('HARN-P1')).filter((e) => e.action === 'lot.consumed').length;
    assert.equal(audited, consumed.rows[0]!.n);
  });

  it('never overdraws with equal requests: 20 × 0.5 against 7.5 gives 15 granted, 5 refused, lot Consumed', async () => {
    await receive({ id: 'HARN-P2', material: 'wiring-harness', quantity: '7.5', status: 'Released' });
    const results = await Promise.all(
      Array.from({ length: 20 }, () => consume({ lotId: 'HARN-P2', quantity: '0.5' })),
    );
    assert.equal(results.filter((r) => r.statusCode === 201).length, 15);
    assert.equal(results.filter((r) => r.statusCode === 409).length, 5);
    assert.equal(await quantityOf('HARN-P2'), '0.000000 Consumed');
    const sum = await t.database.db.query<{ total: string }>(
      `SELECT sum(quantity)::text AS total FROM material_consumptions WHERE lot_id = 'HARN-P2'`,
    );
    assert.equal(sum.rows[0]!.total, '7.500000');
  });

  it('has the database refuse an overdraw even past the row lock (the CHECK constraint)', async () => {
    await receive({ id: 'HARN-K1', material: 'wiring-harness', quantity: 2, status: 'Released' });
    const store = postgresLotStore(t.database.db);
    const three = parsePositiveQuantity('3');
    assert.ok(three.ok);
    const taken = await t.database.db.transaction((client) =>
      store.take(asTx(client), 'HARN-K1', three.value),
    );
    assert.equal(taken, false);
    assert.equal(await quantityOf('HARN-K1'), '2.000000 Released');
  });

  it('replays a retried consumption with the same Idempotency-Key and body instead of consuming twice', async () => {
    await receive({ id: 'HARN-I1', material: 'wiring-harness', quantity: 5, status: 'Released' });
    const key = { 'idempotency-key': 'scan-4711-1' };
    const first = await consume({ lotId: 'HARN-I1', quantity: 2 }, running, operator, key);
    assert.equal(first.statusCode, 201, first.body);
    const before = await counts();
    const retry = await consume({ lotId: 'HARN-I1', quantity: 2 }, running, operator, key);
    assert.equal(retry.statusCode, 201);
    assert.equal(retry.headers['idempotent-replayed'], 'true');
    assert.deepEqual(retry.json(), first.json());
    assert.deepEqual(await counts(), before);
    assert.equal(await quantityOf('HARN-I1'), '3.000000 Released');

    const other = await consume({ lotId: 'HARN-I1', quantity: 1 }, running, operator, key);
    assert.equal(other.statusCode, 422);
    assert.equal(other.json().code, 'LOOM_IDEMPOTENCY_KEY_REUSED');
    assert.equal(await quantityOf('HARN-I1'), '3.000000 Released');

    const parallel = await Promise.all(
      Array.from({ length: 5 }, () =>
        consume({ lotId: 'HARN-I1', quantity: 1 }, running, operator, { 'idempotency-key': 'scan-4711-2' }),
      ),
    );
    assert.ok(
      parallel.every((r) => r.statusCode === 201),
      parallel.map((r) => r.body).join('\n'),
    );
    assert.equal(new Set(parallel.map((r) => r.json().id)).size, 1);
    assert.equal(await quantityOf('HARN-I1'), '2.000000 Released');
  });

  it('keeps a refused request’s key free: after fixing the cause the same key works', async () => {
    const key = { 'idempotency-key': 'scan-4711-3' };
    const tooMuch = await consume({ lotId: 'HARN-I1', quantity: 50 }, running, operator, key);
    assert.equal(tooMuch.statusCode, 409);
    const again = await consume({ lotId: 'HARN-I1', quantity: 50 }, running, operator, key);
    assert.equal(again.statusCode, 409);
  });
});

describe('output at an operation', () => {
  let op: number;
  before(async () => {
    const order = await insertOrder(t.database.db, { id: 'PO-MAT-2' });
    op = await insertOperation(t.database.db, {
      orderId: order,
      operationId: '10',
      name: 'Weld body in white',
      workCenter: 'body-line-1',
      workUnit: 'weld-robot-1',
      bom: [{ material: 'body-panel', quantity: '14', unit: 'pcs' }],
    });
  });

  it('produces a serial linked to every consumption of the operation made without into', async () => {
    await receive({ id: 'PANEL-O1', material: 'body-panel', quantity: 28, status: 'Released' });
    const c = await send('POST', `/api/operations/${op}/consumptions`, operator, {
      lotId: 'PANEL-O1',
      quantity: 14,
    });
    assert.equal(c.statusCode, 201, c.body);
    assert.deepEqual(c.json().edgesTo, []);
    const r = await send(
      'POST',
      `/api/operations/${op}/outputs`,
      operator,
      { lotId: 'WB-O1', material: 'welded-body' },
      {
        'idempotency-key': 'out-1',
      },
    );
    assert.equal(r.statusCode, 201, r.body);
    const out = r.json();
    assert.equal(out.lot.kind, 'serial');
    assert.equal(out.lot.quantity, '1');
    assert.equal(out.lot.status, 'Released');
    assert.equal(out.lot.orderId, 'PO-MAT-2');
    assert.equal(out.lot.producedBy, op);
    assert.deepEqual(
      out.consumedFrom.map((x: { lotId: string; quantity: string }) => `${x.lotId} ${x.quantity}`),
      ['PANEL-O1 14'],
    );
    const replay = await send(
      'POST',
      `/api/operations/${op}/outputs`,
      operator,
      { lotId: 'WB-O1', material: 'welded-body' },
      {
        'idempotency-key': 'out-1',
      },
    );
    assert.equal(replay.statusCode, 201);
    assert.deepEqual(replay.json(), out);
    const [entry] = await audit('WB-O1');
    assert.equal(entry!.action, 'lot.produced');
    const ev = await t.database.db.query(
      `SELECT payload FROM outbox_events WHERE event_type = 'MaterialProduced'`,
    );
    assert.equal(ev.rows.length, 1);
    assert.equal(ev.rows[0]!.payload.lot, 'WB-O1');
    assert.equal(ev.rows[0]!.payload.quantity, '1');
  });

  it('draws an edge to what the operation already produced when material is consumed afterwards', async () => {
    const c = await send('POST', `/api/operations/${op}/consumptions`, operator, {
      lotId: 'PANEL-O1',
      quantity: '0.5',
    });
    assert.equal(c.statusCode, 201, c.body);
    assert.deepEqual(c.json().edgesTo, ['WB-O1']);
  });

  it("builds material into a unit of the same order, and refuses a received lot or another order's unit as into", async () => {
    const into = await send('POST', `/api/operations/${op}/consumptions`, operator, {
      lotId: 'PANEL-O1',
      quantity: '0.5',
      into: 'WB-O1',
    });
    assert.equal(into.statusCode, 201, into.body);
    assert.deepEqual(into.json().edgesTo, ['WB-O1']);
    await receive({ id: 'PANEL-O9', material: 'body-panel', quantity: 5, status: 'Released' });
    await t.database.db.query(
      `INSERT INTO lots (id, kind, material_id, quantity, unit_id, status, order_id)
       SELECT 'WB-OTHER', 'serial', 'welded-body', 1, unit_id, 'Released', 'PO-MAT-1' FROM material_definitions WHERE id = 'welded-body'`,
    );
    const before = await counts();
    for (const [target, orderText] of [
      ['PANEL-O9', 'was not produced by any order'],
      ['WB-OTHER', 'belongs to order PO-MAT-1'],
    ] as const) {
      const r = await send('POST', `/api/operations/${op}/consumptions`, operator, {
        lotId: 'PANEL-O1',
        quantity: '0.5',
        into: target,
      });
      assert.equal(r.statusCode, 422, r.body);
      assert.equal(r.json().code, 'LOOM_LOT_NOT_OF_ORDER');
      assert.match(r.json().detail, new RegExp(`'${target}' ${orderText}`));
      assert.equal(r.json().issues[0].path, 'into');
    }
    assert.deepEqual(await counts(), before, 'nothing consumed, no edge drawn');
  });

  it('refuses a serial of quantity 2, a kind that does not fit the material, a duplicate id, a stopped operation', async () => {
    const before = await counts();
    const two = await send('POST', `/api/operations/${op}/outputs`, operator, {
      lotId: 'WB-O2',
      material: 'welded-body',
      quantity: 2,
    });
    assert.equal(two.statusCode, 400);
    const kind = await send('POST', `/api/operations/${op}/outputs`, operator, {
      lotId: 'WB-O2',
      material: 'welded-body',
      kind: 'lot',
    });
    assert.equal(kind.statusCode, 400);
    assert.match(kind.json().detail, /kind must be 'serial'/);
    const dup = await send('POST', `/api/operations/${op}/outputs`, operator, {
      lotId: 'WB-O1',
      material: 'welded-body',
    });
    assert.equal(dup.statusCode, 409);
    assert.equal(dup.json().code, 'LOOM_LOT_EXISTS');
    await t.database.db.query(`UPDATE order_operations SET state = 'Paused' WHERE id = $1`, [op]);
    const paused = await send('POST', `/api/operations/${op}/outputs`, operator, {
      lotId: 'WB-O3',
      material: 'welded-body',
    });
    assert.equal(paused.statusCode, 409);
    assert.match(paused.json().detail, /is Paused/);
    assert.deepEqual(await counts(), before);
  });
});

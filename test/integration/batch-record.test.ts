/**
 * The electronic batch record over HTTP on a real PostgreSQL: an order built through the API
 * (signed lot release, consumption, output, a failing result, a signed rework disposition, the
 * rework run) and read back as JSON and as the printable HTML page.
 */
import assert from 'node:assert/strict';
import type { LightMyRequestResponse } from 'fastify';
import { after, before, describe, it } from 'node:test';
import type { BatchRecord } from '../../src/app/execution/batch-record.ts';
import { createTestApp, type TestApp } from '../support/app.ts';
import { importExamplePlant } from '../support/plant.ts';

type User = { cookie: string; id: number; password: string };

let t: TestApp;
let planner: User;
let anna: User;
let qe: User;
let engineer: User;
let orderId: string;
let op10: number;
let rework: number;

const HOSTILE_REASON = 'Re-weld spot 7 <script>alert("ncr")</script>';
const HOSTILE_PAUSE = '</td><script>alert(1)</script>';
const HOSTILE_EXTERNAL = 'ERP&<i>4711</i>';

const post = (url: string, cookie: string, payload: object = {}) =>
  t.app.inject({ method: 'POST', url, headers: { cookie }, payload });
const get = (url: string, cookie: string, headers: Record<string, string> = {}) =>
  t.app.inject({ method: 'GET', url, headers: { cookie, ...headers } });

async function ok(res: Promise<LightMyRequestResponse>, status: number, what: string) {
  const r = await res;
  assert.equal(r.statusCode, status, `${what}: ${r.body}`);
  return r.json();
}

before(async () => {
  t = await createTestApp();
  await importExamplePlant(t);
  planner = await t.userWithRoles('planner', ['supervisor']);
  anna = await t.userWithRoles('anna.berger', ['operator']);
  qe = await t.userWithRoles('qe.klein', ['quality']);
  engineer = await t.userWithRoles('eng.stein', ['engineer']);

  const created = await ok(
    post('/api/orders', planner.cookie, {
      product: 'compact-sedan',
      quantity: 2,
      externalId: HOSTILE_EXTERNAL,
      priority: 10,
    }),
    201,
    'create order',
  );
  orderId = created.order.id;
  op10 = created.operations[0].id;

  // Panels arrive in quarantine (an operator receives them) and quality releases them, signed.
  await ok(
    post('/api/lots', anna.cookie, { id: 'BP-2026-001', material: 'body-panel', quantity: 28 }),
    201,
    'receive panels',
  );
  await ok(
    post('/api/lots/BP-2026-001/release', qe.cookie, {
      reason: 'incoming inspection passed',
      signature: { password: qe.password, meaning: 'released after incoming inspection' },
    }),
    200,
    'release panels',
  );
  await ok(
    post('/api/lots', qe.cookie, { id: 'SS-77', material: 'seam-sealer', quantity: 5, status: 'Released' }),
    201,
    'receive sealer',
  );

  await ok(post(`/api/operations/${op10}/start`, anna.cookie, { workUnit: 'weld-robot-1' }), 200, 'start');
  await ok(post(`/api/operations/${op10}/pause`, anna.cookie, { reason: HOSTILE_PAUSE }), 200, 'pause');
  await ok(post(`/api/operations/${op10}/resume`, anna.cookie), 200, 'resume');
  await ok(
    post(`/api/operations/${op10}/consumptions`, anna.cookie, { lotId: 'BP-2026-001', quantity: 14 }),
    201,
    'consume panels',
  );
  await ok(
    post(`/api/operations/${op10}/consumptions`, anna.cookie, { lotId: 'SS-77', quantity: '0.6' }),
    201,
    'consume sealer',
  );
  await ok(
    post(`/api/operations/${op10}/outputs`, anna.cookie, { lotId: 'WB-0001', material: 'welded-body' }),
    201,
    'produce body',
  );
  const measured = await ok(
    post(`/api/operations/${op10}/results`, anna.cookie, {
      results: [
        { characteristic: 'nugget-diameter', value: 4.2, lotId: 'WB-0001' },
        { characteristic: 'body-gap-check', value: 'pass' },
      ],
    }),
    201,
    'results',
  );
  const ncrId = measured.results[0].ncr.id;
  const disposed = await ok(
    post(`/api/ncrs/${ncrId}/disposition`, qe.cookie, {
      disposition: 'rework',
      cause: 'weld',
      reason: HOSTILE_REASON,
      signature: { password: qe.password, meaning: 'rework approved' },
    }),
    200,
    'disposition',
  );
  rework = disposed.reworkOperation.pk;
  await ok(post(`/api/operations/${op10}/complete`, anna.cookie, { good: 1 }), 200, 'complete 10');
  await ok(
    post(`/api/operations/${rework}/start`, anna.cookie, { workUnit: 'weld-robot-2' }),
    200,
    'start rw',
  );
  await ok(post(`/api/operations/${rework}/complete`, anna.cookie, { good: 1 }), 200, 'complete rw');
});
after(async () => {
  await t?.close();
});

describe('GET /api/orders/:id/record', () => {
  let record: BatchRecord;
  before(async () => {
    const res = await get(`/api/orders/${orderId}/record`, engineer.cookie);
    assert.equal(res.statusCode, 200, res.body);
    assert.match(String(res.headers['content-type']), /^application\/json/);
    record = res.json<BatchRecord>();
  });

  it('heads the record with the order as created', () => {
    assert.equal(record.format, 'loom.batch-record/1');
    assert.equal(record.order.id, orderId);
    assert.equal(record.order.externalId, HOSTILE_EXTERNAL);
    assert.equal(record.order.product, 'compact-sedan');
    assert.equal(record.order.quantity, '2');
    assert.equal(record.order.unit, 'pcs');
    assert.equal(record.order.priority, 10);
    assert.equal(record.order.state, 'InProgress');
    assert.equal(record.order.createdBy, 'planner');
    assert.ok(record.order.startedAt);
  });

  it("counts the rework operation's output against the step it repairs, not as first pass", async () => {
    const ev = await t.database.db.query<{ routing_step: string; first_pass: boolean }>(
      `SELECT routing_step, first_pass FROM production_events WHERE operation_pk = $1 AND kind = 'good'`,
      [rework],
    );
    assert.deepEqual(ev.rows, [{ routing_step: '10', first_pass: false }]);
  });

  it('lists every operation in sequence, the rework loop right after the step it reworks', () => {
    assert.deepEqual(
      record.operations.map((o) => [o.operation, o.sequence, o.state]),
      [
        ['10', 100, 'Completed'],
        ['10-RW1', 101, 'Completed'],
        ['20', 200, 'Ready'],
        ['30', 300, 'Pending'],
        ['40', 400, 'Pending'],
        ['50', 500, 'Pending'],
        ['60', 600, 'Pending'],
      ],
    );
    const [first, rw] = record.operations;
    assert.equal(first!.rework, null);
    assert.equal(rw!.id, rework);
    assert.equal(rw!.isRework, true);
    assert.equal(rw!.reworkOf, op10);
    assert.deepEqual(rw!.rework, { loop: 1, of: '10', ncr: first!.ncrs[0]!.number });
    assert.equal(rw!.workUnit, 'weld-robot-2');
    assert.equal(rw!.goodQuantity, '1');
  });

  it('shows who ran each operation, when, with which parameters and quantities', () => {
    const op = record.operations[0]!;
    assert.equal(op.workCenter, 'body-line-1');
    assert.equal(op.workUnit, 'weld-robot-1');
    assert.equal(op.startedBy, 'anna.berger');
    assert.equal(op.person, 'op-anna-berger');
    assert.equal(op.completedBy, 'anna.berger');
    assert.ok(op.startedAt && op.completedAt);
    assert.deepEqual(
      op.parameters.map((p) => (p as { name: string }).name),
      ['weld-program', 'weld-current'],
    );
    assert.deepEqual(
      [op.plannedQuantity, op.goodQuantity, op.scrapQuantity, op.reworkQuantity, op.unit],
      ['2', '1', '0', '1', 'pcs'],
    );
    assert.equal(record.people['op-anna-berger'], 'Anna Berger');
  });

  it('keeps the activity timeline of each operation, with the pause reason', () => {
    assert.deepEqual(
      record.operations[0]!.timeline.map((a) => a.kind),
      ['start', 'pause', 'resume', 'complete'],
    );
    const pause = record.operations[0]!.timeline[1]!;
    assert.deepEqual(pause.detail, { reason: HOSTILE_PAUSE });
    assert.equal(pause.actor, 'anna.berger');
    assert.deepEqual(
      record.operations[1]!.timeline.map((a) => a.kind),
      ['rework-inserted', 'start', 'complete'],
    );
    assert.equal(record.operations[1]!.timeline[0]!.actor, 'qe.klein');
  });

  it('lists the lots consumed and produced at the operation', () => {
    const op = record.operations[0]!;
    assert.deepEqual(
      op.consumed.map((c) => [c.lot, c.material, c.quantity, c.unit, c.actor, c.person, c.equipment]),
      [
        ['BP-2026-001', 'body-panel', '14', 'pcs', 'anna.berger', 'op-anna-berger', 'weld-robot-1'],
        ['SS-77', 'seam-sealer', '0.6', 'l', 'anna.berger', 'op-anna-berger', 'weld-robot-1'],
      ],
    );
    assert.deepEqual(
      op.produced.map((l) => [l.id, l.kind, l.material, l.quantity]),
      [['WB-0001', 'serial', 'welded-body', '1']],
    );
    assert.deepEqual(record.operations[1]!.consumed, []);
  });

  it('records the quality results with limits and verdicts, and the NCR with its signed disposition', () => {
    const op = record.operations[0]!;
    const [nugget, gap] = op.qualityResults;
    assert.deepEqual(
      [nugget!.characteristic, nugget!.value, nugget!.lsl, nugget!.usl, nugget!.verdict, nugget!.lot],
      ['nugget-diameter', 4.2, 5, null, 'fail', 'WB-0001'],
    );
    assert.equal(nugget!.actor, 'anna.berger');
    assert.equal(gap!.verdict, 'pass');
    assert.equal(gap!.ncr, null);
    const ncr = op.ncrs[0]!;
    assert.equal(nugget!.ncr, ncr.number);
    assert.equal(op.ncrs.length, 1);
    assert.equal(ncr.state, 'Dispositioned');
    assert.equal(ncr.disposition, 'rework');
    assert.equal(ncr.cause, 'weld');
    assert.equal(ncr.dispositionReason, HOSTILE_REASON);
    assert.equal(ncr.dispositionedBy, 'qe.klein');
    assert.equal(ncr.reworkOperationPk, rework);
    assert.equal(ncr.signature?.meaning, 'rework approved');
    assert.equal(ncr.signature?.signerName, 'qe.klein (qe.klein)');
  });

  it('gathers every electronic signature of the order, its NCRs and its lots', () => {
    assert.deepEqual(
      record.signatures.map((s) => [s.action, s.entityType, s.entityId, s.meaning, s.signerName]),
      [
        ['lot.released', 'lot', 'BP-2026-001', 'released after incoming inspection', 'qe.klein (qe.klein)'],
        [
          'ncr.dispositioned',
          'ncr',
          record.operations[0]!.ncrs[0]!.number,
          'rework approved',
          'qe.klein (qe.klein)',
        ],
      ],
    );
    for (const s of record.signatures) {
      assert.match(s.signedAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      assert.match(s.signedRecordHash, /^[0-9a-f]{64}$/);
    }
  });

  it('appends the audit trail of the order and its operations', () => {
    const actions = record.auditTrail.map((e) => `${e.entityType} ${e.entityId} ${e.action}`);
    assert.equal(actions[0], `production-order ${orderId} order.created`);
    for (const expected of [
      `order-operation ${op10} operation.started`,
      `order-operation ${op10} operation.paused`,
      `order-operation ${op10} operation.resumed`,
      `order-operation ${op10} operation.completed`,
      `order-operation ${rework} operation.rework-inserted`,
      `order-operation ${rework} operation.started`,
      `order-operation ${rework} operation.completed`,
    ]) {
      assert.ok(actions.includes(expected), `${expected} missing from ${actions.join('; ')}`);
    }
    assert.ok(record.auditTrail.every((e) => ['production-order', 'order-operation'].includes(e.entityType)));
    const paused = record.auditTrail.find((e) => e.action === 'operation.paused')!;
    assert.equal(paused.reason, HOSTILE_PAUSE);
    assert.equal(paused.actor, 'anna.berger');
    const times = record.auditTrail.map((e) => e.at);
    assert.deepEqual([...times].sort(), times, 'in time order');
  });

  it('says the audit chain was intact and who generated the record when', () => {
    assert.equal(record.footer.auditChain.ok, true);
    assert.ok(record.footer.auditChain.entries > 0);
    assert.equal(record.footer.generatedBy, 'eng.stein');
    assert.equal(record.footer.generatedAt, t.clock.now().toISOString());
  });

  it('hashes the content: the same data gives the same recordHash, a change gives another', async () => {
    assert.match(record.recordHash, /^[0-9a-f]{64}$/);
    t.clock.set('2026-11-25T10:01:00Z');
    const again = (await get(`/api/orders/${orderId}/record`, qe.cookie)).json<BatchRecord>();
    assert.equal(again.recordHash, record.recordHash, 'another reader at another time, same data');
    assert.notEqual(again.footer.generatedAt, record.footer.generatedAt);

    await ok(post(`/api/orders/${orderId}/hold`, qe.cookie, { reason: 'audit sample' }), 200, 'hold order');
    const held = (await get(`/api/orders/${orderId}/record`, qe.cookie)).json<BatchRecord>();
    assert.notEqual(held.recordHash, record.recordHash);
    assert.equal(held.order.state, 'OnHold');
    assert.ok(held.auditTrail.some((e) => e.action === 'order.held' && e.reason === 'audit sample'));
    await ok(post(`/api/orders/${orderId}/release`, qe.cookie, { reason: 'sample done' }), 200, 'release');
  });

  it('refuses operators, and answers 404 LOOM_ORDER_NOT_FOUND for an unknown order', async () => {
    for (const url of [`/api/orders/${orderId}/record`, `/api/orders/${orderId}/record.html`]) {
      const res = await get(url, anna.cookie);
      assert.equal(res.statusCode, 403, url);
      assert.equal(res.json().code, 'LOOM_AUTH_FORBIDDEN');
    }
    for (const url of ['/api/orders/PO-999999/record', '/api/orders/PO-999999/record.html']) {
      const res = await get(url, engineer.cookie);
      assert.equal(res.statusCode, 404, url);
      assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
      assert.equal(res.json().code, 'LOOM_ORDER_NOT_FOUND');
      assert.match(res.json().detail, /PO-999999/);
    }
    assert.equal(
      (await t.app.inject({ method: 'GET', url: `/api/orders/${orderId}/record` })).statusCode,
      401,
    );
  });
});

describe('GET /api/orders/:id/record.html', () => {
  let html: string;
  let json: BatchRecord;
  before(async () => {
    const res = await get(`/api/orders/${orderId}/record.html`, planner.cookie);
    assert.equal(res.statusCode, 200, res.body);
    assert.match(String(res.headers['content-type']), /^text\/html; charset=utf-8/);
    assert.match(String(res.headers['content-security-policy']), /default-src 'none'/);
    html = res.body;
    json = (await get(`/api/orders/${orderId}/record`, planner.cookie)).json<BatchRecord>();
  });

  it('is a self-contained A4 page with the order, one operation per page and the record hash', () => {
    assert.match(html, /^<!doctype html>/);
    assert.ok(html.includes(`order ${orderId}`));
    assert.match(html, /@page \{ size: A4/);
    assert.match(html, /page-break-before: always/);
    assert.equal(html.match(/<section class="operation">/g)?.length, json.operations.length);
    assert.ok(html.includes(json.recordHash));
    assert.ok(html.includes('10-RW1'));
    assert.ok(html.includes('BP-2026-001') && html.includes('WB-0001'));
    assert.ok(html.includes('Anna Berger (op-anna-berger)'));
    assert.ok(html.includes('released after incoming inspection'));
    assert.match(html, /Audit trail: <span class="chain-ok">intact/);
    assert.ok(html.includes('<td>good 1, scrap 0</td>'), "a completion's detail reads as text");
    assert.doesNotMatch(html, /\{&quot;good&quot;/, 'not as JSON');
    assert.doesNotMatch(html, /<(script|link|img|iframe)\b/i, 'no scripts or external assets');
    assert.doesNotMatch(html, /(src|href)=/i);
  });

  it('escapes every recorded value: a script in an NCR reason, a pause reason or the ERP id stays text', () => {
    assert.ok(!html.includes('<script>'));
    assert.ok(!html.includes('<i>4711'));
    assert.ok(html.includes('ERP&amp;&lt;i&gt;4711&lt;/i&gt;'));
    assert.ok(html.includes('Re-weld spot 7 &lt;script&gt;alert(&quot;ncr&quot;)&lt;/script&gt;'));
    assert.ok(html.includes('&lt;/td&gt;&lt;script&gt;alert(1)&lt;/script&gt;'));
  });
});

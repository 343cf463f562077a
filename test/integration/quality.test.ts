/**
 * Quality results and nonconformances over HTTP on a real PostgreSQL: results judged against the
 * operation's snapshot limits, NCRs raised automatically, every disposition's effect on the order,
 * e-signature and separation of duties for use-as-is, idempotent retries, audit and outbox.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createTestApp, type TestApp } from '../support/app.ts';
import {
  createLot,
  createOrder,
  importExamplePlant,
  setOperation,
  type FixtureOrder,
} from '../support/quality-fixtures.ts';

let t: TestApp;
let operator: { cookie: string; id: number; password: string };
let qe1: { cookie: string; id: number; password: string };
let qe2: { cookie: string; id: number; password: string };

before(async () => {
  t = await createTestApp();
  await importExamplePlant(t);
  operator = await t.userWithRoles('op1', ['operator']);
  qe1 = await t.userWithRoles('qe1', ['quality']);
  qe2 = await t.userWithRoles('qe2', ['quality']);
});
after(async () => {
  await t?.close();
});

const post = (url: string, payload: unknown, cookie: string, headers: Record<string, string> = {}) =>
  t.app.inject({
    method: 'POST',
    url,
    headers: { cookie, ...headers },
    payload: payload as Record<string, unknown>,
  });
const get = (url: string, cookie: string) => t.app.inject({ method: 'GET', url, headers: { cookie } });

const results = (
  pk: number,
  list: unknown[],
  cookie = operator.cookie,
  headers: Record<string, string> = {},
) => post(`/api/operations/${pk}/results`, { results: list }, cookie, headers);

async function count(sql: string, params: unknown[] = []): Promise<number> {
  const r = await t.database.db.query<{ n: number }>(`SELECT (${sql})::int AS n`, params);
  return r.rows[0]!.n;
}

async function tableCounts() {
  const r = await t.database.db.query(
    `SELECT (SELECT count(*) FROM quality_results)::int AS results, (SELECT count(*) FROM ncrs)::int AS ncrs,
            (SELECT count(*) FROM audit_log)::int AS audit, (SELECT count(*) FROM outbox_events)::int AS outbox,
            (SELECT count(*) FROM order_operations)::int AS ops, (SELECT count(*) FROM production_events)::int AS events`,
  );
  return r.rows[0] as Record<string, number>;
}

async function operationRow(pk: number) {
  const r = await t.database.db.query('SELECT * FROM order_operations WHERE id = $1', [pk]);
  return r.rows[0] as Record<string, unknown>;
}

async function manualNcr(
  o: FixtureOrder,
  step: string,
  quantity: string,
  extra: Record<string, unknown> = {},
  cookie = operator.cookie,
) {
  const res = await post(
    '/api/ncrs',
    { operation: o.ops[step], quantity, description: `Found at step ${step}`, ...extra },
    cookie,
  );
  assert.equal(res.statusCode, 201, res.body);
  return res.json<{ id: number; number: string }>();
}

const disposition = (
  id: number,
  body: Record<string, unknown>,
  cookie = qe1.cookie,
  headers: Record<string, string> = {},
) => post(`/api/ncrs/${id}/disposition`, body, cookie, headers);

describe('recording quality results', () => {
  let order: FixtureOrder;
  before(async () => {
    order = await createOrder(t, 'compact-sedan', '10');
    await setOperation(t, order.ops['10']!, 'Running', 'weld-robot-1');
    await setOperation(t, order.ops['30']!, 'Paused', 'paint-oven-1');
  });

  it('judges in-limit and on-limit values as pass and an out-of-limit value as fail, raising one NCR with its audit entry and outbox event', async () => {
    const before = await tableCounts();
    const res = await results(order.ops['10']!, [
      { characteristic: 'nugget-diameter', value: 6.2 },
      { characteristic: 'nugget-diameter', value: 5 },
      { characteristic: 'nugget-diameter', value: 4.2 },
      { characteristic: 'body-gap-check', value: 'pass' },
    ]);
    assert.equal(res.statusCode, 201, res.body);
    const body = res.json();
    assert.deepEqual(
      body.results.map((r: { verdict: string }) => r.verdict),
      ['pass', 'pass', 'fail', 'pass'],
    );
    assert.equal(body.results[1].lsl, 5);
    assert.equal(body.results[1].usl, null);
    assert.equal(body.results[0].ncr, null);
    const ncr = body.results[2].ncr;
    assert.equal(ncr.state, 'Open');
    assert.equal(ncr.quantity, '1');
    assert.equal(ncr.characteristic, 'nugget-diameter');
    assert.equal(ncr.resultId, body.results[2].id);
    assert.equal(ncr.orderId, order.id);
    assert.equal(ncr.createdBy, 'op1');
    assert.match(ncr.number, /^NCR-\d{6}$/);
    assert.match(ncr.description, /Weld nugget diameter \(nugget-diameter\) measured 4\.2 mm/);
    assert.match(ncr.description, /LSL 5 mm, no USL/);

    const after = await tableCounts();
    assert.equal(after.results! - before.results!, 4);
    assert.equal(after.ncrs! - before.ncrs!, 1);
    const [raised] = await t.loom.audit.list({ entityType: 'ncr', entityId: ncr.number, limit: 10 });
    assert.equal(raised?.action, 'ncr.raised');
    assert.equal(raised?.actorName, 'op1');
    assert.equal((raised?.newValue as { description: string }).description, ncr.description);
    const recorded = await t.loom.audit.list({
      entityType: 'quality-result',
      entityId: String(body.results[0].id),
      limit: 10,
    });
    assert.equal(recorded[0]?.action, 'quality-result.recorded');
    assert.equal(
      await count(
        `SELECT count(*) FROM outbox_events WHERE event_type = 'QualityResultRecorded' AND aggregate_id = $1`,
        [order.id],
      ),
      4,
    );
    assert.equal(
      await count(
        `SELECT count(*) FROM outbox_events WHERE event_type = 'NonconformanceRaised' AND aggregate_id = $1`,
        [order.id],
      ),
      1,
    );
    assert.equal((await t.loom.audit.verify()).ok, true);
  });

  it('treats the upper limit as conforming and a failed attribute as a nonconformance, on a Paused operation, with a given quantity', async () => {
    const res = await results(order.ops['30']!, [
      { characteristic: 'film-thickness', value: 140 },
      { characteristic: 'film-thickness', value: 140.1, quantity: '2.5' },
    ]);
    assert.equal(res.statusCode, 201, res.body);
    const [onLimit, over] = res.json().results;
    assert.equal(onLimit.verdict, 'pass');
    assert.equal(over.verdict, 'fail');
    assert.equal(over.ncr.quantity, '2.5');
    assert.match(over.ncr.description, /measured 140\.1 um, outside the limits \(LSL 90 um, USL 140 um\)/);

    const attr = await results(order.ops['10']!, [{ characteristic: 'body-gap-check', value: 'fail' }]);
    assert.equal(attr.statusCode, 201, attr.body);
    assert.match(attr.json().results[0].ncr.description, /Door gap gauge check \(body-gap-check\) failed/);
  });

  it('refuses a characteristic the operation does not have, naming it, and records nothing', async () => {
    const before = await tableCounts();
    const res = await results(order.ops['10']!, [
      { characteristic: 'nugget-diameter', value: 4 },
      { characteristic: 'film-thickness', value: 100 },
    ]);
    assert.equal(res.statusCode, 422, res.body);
    const p = res.json();
    assert.equal(p.code, 'LOOM_QUALITY_UNKNOWN_CHARACTERISTIC');
    assert.match(p.detail, /'film-thickness'/);
    assert.deepEqual(p.issues, [
      {
        path: 'results[1].characteristic',
        message: "'film-thickness' is not a characteristic of this operation",
      },
    ]);
    assert.deepEqual(p.characteristics, ['nugget-diameter', 'body-gap-check']);
    assert.deepEqual(await tableCounts(), before);
  });

  it('refuses a value of the wrong kind, an unknown lot and a bad quantity, each by path, and records nothing', async () => {
    const before = await tableCounts();
    const res = await results(order.ops['10']!, [
      { characteristic: 'nugget-diameter', value: 'pass' },
      { characteristic: 'body-gap-check', value: 'maybe' },
      { characteristic: 'nugget-diameter', value: 6, lotId: 'NO-SUCH-LOT' },
      { characteristic: 'nugget-diameter', value: 4, quantity: -1 },
    ]);
    assert.equal(res.statusCode, 400, res.body);
    assert.deepEqual(
      res.json().issues.map((i: { path: string }) => i.path),
      ['results[0].value', 'results[1].value', 'results[2].lotId', 'results[3].quantity'],
    );
    assert.deepEqual(await tableCounts(), before);
  });

  it('refuses results for an operation that is not Running or Paused, naming its state', async () => {
    const res = await results(order.ops['20']!, [{ characteristic: 'runs-and-sags', value: 'pass' }]);
    assert.equal(res.statusCode, 409);
    assert.equal(res.json().code, 'LOOM_QUALITY_OPERATION_NOT_ACTIVE');
    assert.match(res.json().detail, /it is Pending/);
    const missing = await results(999999, [{ characteristic: 'x', value: 1 }]);
    assert.equal(missing.statusCode, 404);
    assert.equal(missing.json().code, 'LOOM_QUALITY_OPERATION_NOT_FOUND');
  });

  it('lists the results of an operation with the NCRs they raised; engineers may not record', async () => {
    const res = await get(`/api/operations/${order.ops['10']!}/results`, qe1.cookie);
    assert.equal(res.statusCode, 200);
    const list = res.json();
    assert.equal(list.length, 5);
    assert.equal(list[2].value, 4.2);
    assert.match(list[2].ncr.number, /^NCR-/);
    assert.equal(list[4].value, 'fail');
    const eng = await t.userWithRoles('eng1', ['engineer']);
    const refused = await results(
      order.ops['10']!,
      [{ characteristic: 'nugget-diameter', value: 6 }],
      eng.cookie,
    );
    assert.equal(refused.statusCode, 403);
  });
});

describe('NCR dispositions', () => {
  let order: FixtureOrder;
  before(async () => {
    order = await createOrder(t, 'compact-sedan', '50');
    await setOperation(t, order.ops['10']!, 'Running', 'weld-robot-2');
    await createLot(t, 'PANEL-LOT-7', 'body-panel', '500');
  });

  it('rework inserts a Ready copy of the step right after it, records the rework event and counts each loop', async () => {
    const op10 = order.ops['10']!;
    const raised = await results(op10, [{ characteristic: 'nugget-diameter', value: 3.9 }]);
    const ncr = raised.json().results[0].ncr;

    const res = await disposition(ncr.id, {
      disposition: 'rework',
      cause: 'weld',
      reason: 'Re-weld the seam',
    });
    assert.equal(res.statusCode, 200, res.body);
    const { ncr: done, reworkOperation: rw1 } = res.json();
    assert.equal(done.state, 'Dispositioned');
    assert.equal(done.disposition, 'rework');
    assert.equal(done.cause, 'weld');
    assert.equal(done.dispositionedBy, 'qe1');
    assert.equal(done.reworkOperationPk, rw1.pk);
    assert.deepEqual(
      {
        operationId: rw1.operationId,
        sequence: rw1.sequence,
        loop: rw1.loop,
        name: rw1.name,
        reworkOf: rw1.reworkOf,
      },
      {
        operationId: '10-RW1',
        sequence: 101,
        loop: 1,
        name: 'Rework of 10: Weld body in white',
        reworkOf: op10,
      },
    );

    const original = await operationRow(op10);
    const row = await operationRow(rw1.pk);
    assert.equal(row.state, 'Ready');
    assert.equal(row.is_rework, true);
    assert.equal(row.rework_of, op10);
    assert.equal(
      await count('SELECT count(*) FROM operation_queue WHERE operation_pk = $1 AND work_center_id = $2', [
        rw1.pk,
        original.work_center_id,
      ]),
      1,
      'the rework operation enters the dispatch queue of its work center',
    );
    assert.equal(row.rework_loop, 1);
    assert.equal(row.planned_quantity, '1.000000');
    for (const field of [
      'work_center_id',
      'allowed_work_units',
      'required_qualifications',
      'parameters',
      'characteristics',
    ]) {
      assert.deepEqual(row[field], original[field], field);
    }
    assert.equal(original.rework_quantity, '1.000000');

    const ev = await t.database.db.query(`SELECT * FROM production_events WHERE ncr_id = $1`, [ncr.id]);
    assert.equal(ev.rowCount, 1);
    assert.equal(ev.rows[0]!.kind, 'rework');
    assert.equal(ev.rows[0]!.quantity, '1.000000');
    assert.equal(ev.rows[0]!.first_pass, true);
    assert.equal(ev.rows[0]!.routing_step, '10');
    assert.equal(ev.rows[0]!.operation_pk, op10);
    assert.equal(ev.rows[0]!.cause_code, 'weld');
    assert.equal(ev.rows[0]!.work_unit_id, 'weld-robot-2');
    assert.ok(ev.rows[0]!.shift_id);

    const audit = await t.loom.audit.list({ entityType: 'ncr', entityId: ncr.number, limit: 10 });
    assert.deepEqual(
      audit.map((a) => a.action),
      ['ncr.raised', 'ncr.dispositioned'],
    );
    assert.equal(audit[1]?.reason, 'Re-weld the seam');
    const inserted = await t.loom.audit.list({
      entityType: 'order-operation',
      entityId: String(rw1.pk),
      limit: 10,
    });
    assert.equal(inserted[0]?.action, 'operation.rework-inserted');
    assert.equal(
      await count(
        `SELECT count(*) FROM outbox_events WHERE event_type = 'NonconformanceDispositioned' AND payload->'ncr'->>'number' = $1`,
        [ncr.number],
      ),
      1,
    );

    // The rework fails again: the second loop of step 10 goes in after the first.
    await setOperation(t, rw1.pk, 'Running', 'weld-robot-3');
    const again = await results(rw1.pk, [{ characteristic: 'nugget-diameter', value: 4.5 }]);
    assert.equal(again.statusCode, 201, again.body);
    const ncr2 = again.json().results[0].ncr;
    const res2 = await disposition(ncr2.id, {
      disposition: 'rework',
      cause: 'weld',
      reason: 'Second attempt',
    });
    assert.equal(res2.statusCode, 200, res2.body);
    const rw2 = res2.json().reworkOperation;
    assert.deepEqual(
      { operationId: rw2.operationId, sequence: rw2.sequence, loop: rw2.loop, reworkOf: rw2.reworkOf },
      { operationId: '10-RW2', sequence: 102, loop: 2, reworkOf: op10 },
    );
    const ev2 = await t.database.db.query(`SELECT * FROM production_events WHERE ncr_id = $1`, [ncr2.id]);
    assert.equal(ev2.rows[0]!.first_pass, false, 'a rework loop is not first pass');
    assert.equal(ev2.rows[0]!.routing_step, '10');
    assert.equal(ev2.rows[0]!.operation_pk, rw1.pk);
    assert.equal((await operationRow(rw1.pk)).rework_quantity, '1.000000');
    assert.equal(
      await count(`SELECT count(*) FROM order_operations WHERE order_id = $1 AND rework_of = $2`, [
        order.id,
        op10,
      ]),
      2,
    );
  });

  it('numbers concurrent rework dispositions of one step as distinct loops', async () => {
    const other = await createOrder(t, 'compact-sedan', '3');
    const ids = [
      (await manualNcr(other, '20', '1')).id,
      (await manualNcr(other, '20', '1')).id,
      (await manualNcr(other, '20', '1')).id,
    ];
    const [a, b, c] = [qe1, qe2, qe1];
    const all = await Promise.all(
      ids.map((id, i) =>
        disposition(
          id,
          { disposition: 'rework', cause: 'surface', reason: `parallel ${i}` },
          [a, b, c][i]!.cookie,
        ),
      ),
    );
    for (const res of all) assert.equal(res.statusCode, 200, res.body);
    const loops = all.map((res) => res.json().reworkOperation.loop).sort();
    assert.deepEqual(loops, [1, 2, 3]);
    const rows = await t.database.db.query(
      `SELECT operation_id, sequence FROM order_operations WHERE order_id = $1 AND is_rework ORDER BY sequence`,
      [other.id],
    );
    assert.deepEqual(
      rows.rows.map((r) => `${r.operation_id}@${r.sequence}`),
      ['20-RW1@201', '20-RW2@202', '20-RW3@203'],
    );
  });

  it('scrap takes the quantity out of the order with its cause', async () => {
    const ncr = await manualNcr(order, '10', '2.5', { cause: 'handling' });
    const res = await disposition(ncr.id, {
      disposition: 'scrap',
      cause: 'dimension',
      reason: 'Panel cracked',
    });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json().reworkOperation, null);
    assert.equal(res.json().ncr.cause, 'dimension');
    assert.equal((await operationRow(order.ops['10']!)).scrap_quantity, '2.500000');
    const ev = await t.database.db.query(`SELECT * FROM production_events WHERE ncr_id = $1`, [ncr.id]);
    assert.deepEqual(
      [ev.rows[0]!.kind, ev.rows[0]!.quantity, ev.rows[0]!.cause_code, ev.rows[0]!.first_pass],
      ['scrap', '2.500000', 'dimension', true],
    );
  });

  it('use-as-is is refused without a signature and with a wrong password, and stores a valid signature with the NCR and its audit entry', async () => {
    const ncr = await manualNcr(order, '10', '1');
    const before = await tableCounts();

    const unsigned = await disposition(ncr.id, {
      disposition: 'use-as-is',
      cause: 'surface',
      reason: 'Cosmetic only',
    });
    assert.equal(unsigned.statusCode, 422, unsigned.body);
    assert.equal(unsigned.json().code, 'LOOM_NCR_SIGNATURE_REQUIRED');

    const wrong = await disposition(ncr.id, {
      disposition: 'use-as-is',
      cause: 'surface',
      reason: 'Cosmetic only',
      signature: { password: 'not the password', meaning: 'Accepted under concession' },
    });
    assert.equal(wrong.statusCode, 401, wrong.body);
    assert.equal(wrong.json().code, 'LOOM_SIGNATURE_INVALID');
    assert.deepEqual(await tableCounts(), before, 'nothing changed');
    assert.equal((await get(`/api/ncrs/${ncr.id}`, qe1.cookie)).json().state, 'Open');

    const goodBefore = (await operationRow(order.ops['10']!)).good_quantity;
    const signed = await disposition(ncr.id, {
      disposition: 'use-as-is',
      cause: 'surface',
      reason: 'Cosmetic only',
      signature: { password: qe1.password, meaning: 'Accepted under concession' },
    });
    assert.equal(signed.statusCode, 200, signed.body);
    const sig = signed.json().ncr.signature;
    assert.equal(sig.signerId, qe1.id);
    assert.equal(sig.meaning, 'Accepted under concession');
    assert.match(sig.recordHash, /^[0-9a-f]{64}$/);
    const stored = await get(`/api/ncrs/${ncr.id}`, qe2.cookie);
    assert.deepEqual(stored.json().signature, sig);
    const audit = await t.loom.audit.list({ entityType: 'ncr', entityId: ncr.number, limit: 10 });
    assert.deepEqual(audit.at(-1)?.signature, sig);
    assert.equal(audit.at(-1)?.action, 'ncr.dispositioned');
    assert.equal(goodBefore, '0.000000');
    assert.equal((await operationRow(order.ops['10']!)).good_quantity, '1.000000');
    const ev = await t.database.db.query(`SELECT kind, first_pass FROM production_events WHERE ncr_id = $1`, [
      ncr.id,
    ]);
    assert.deepEqual(ev.rows, [{ kind: 'good', first_pass: true }]);
  });

  it('refuses use-as-is by the person who raised the NCR (separation of duties); another quality engineer may', async () => {
    const ncr = await manualNcr(order, '10', '1', { cause: 'surface' }, qe1.cookie);
    const body = {
      disposition: 'use-as-is',
      cause: 'surface',
      reason: 'Within cosmetic standard',
      signature: { password: qe1.password, meaning: 'Accepted under concession' },
    };
    const same = await disposition(ncr.id, body, qe1.cookie);
    assert.equal(same.statusCode, 409, same.body);
    assert.equal(same.json().code, 'LOOM_NCR_SAME_PERSON');
    assert.match(same.json().detail, /raised by qe1/);
    const other = await disposition(
      ncr.id,
      { ...body, signature: { password: qe2.password, meaning: 'Accepted under concession' } },
      qe2.cookie,
    );
    assert.equal(other.statusCode, 200, other.body);
    assert.equal(other.json().ncr.dispositionedBy, 'qe2');
  });

  it('return-to-supplier needs a lot on the NCR and blocks that lot', async () => {
    const noLot = await manualNcr(order, '10', '1');
    const refused = await disposition(noLot.id, {
      disposition: 'return-to-supplier',
      cause: 'material',
      reason: 'Bad panels',
    });
    assert.equal(refused.statusCode, 422);
    assert.equal(refused.json().code, 'LOOM_NCR_NO_LOT');

    const ncr = await manualNcr(order, '10', '14', { lotId: 'PANEL-LOT-7', cause: 'material' });
    const res = await disposition(ncr.id, {
      disposition: 'return-to-supplier',
      cause: 'material',
      reason: 'Panels warped',
    });
    assert.equal(res.statusCode, 200, res.body);
    const lot = await t.database.db.query(`SELECT status FROM lots WHERE id = 'PANEL-LOT-7'`);
    assert.equal(lot.rows[0]!.status, 'Blocked');
    const audit = await t.loom.audit.list({ entityType: 'lot', entityId: 'PANEL-LOT-7', limit: 10 });
    assert.equal(audit[0]?.action, 'lot.blocked');
    assert.deepEqual(audit[0]?.newValue, { status: 'Blocked' });
  });

  it('refuses illegal transitions naming the current state, an unknown cause, an unknown NCR and the wrong role', async () => {
    const ncr = await manualNcr(order, '10', '1');
    const closeOpen = await post(`/api/ncrs/${ncr.id}/close`, {}, qe1.cookie);
    assert.equal(closeOpen.statusCode, 409);
    assert.equal(closeOpen.json().code, 'LOOM_NCR_ILLEGAL_TRANSITION');
    assert.match(closeOpen.json().detail, /it is Open/);

    const badCause = await disposition(ncr.id, { disposition: 'scrap', cause: 'gremlins', reason: 'x' });
    assert.equal(badCause.statusCode, 422);
    assert.equal(badCause.json().code, 'LOOM_NCR_UNKNOWN_CAUSE');
    const byOperator = await disposition(
      ncr.id,
      { disposition: 'scrap', cause: 'weld', reason: 'x' },
      operator.cookie,
    );
    assert.equal(byOperator.statusCode, 403);

    assert.equal(
      (await disposition(ncr.id, { disposition: 'scrap', cause: 'weld', reason: 'x' })).statusCode,
      200,
    );
    const twice = await disposition(ncr.id, { disposition: 'rework', cause: 'weld', reason: 'x' });
    assert.equal(twice.statusCode, 409);
    assert.match(twice.json().detail, /it is Dispositioned/);

    const closed = await post(`/api/ncrs/${ncr.id}/close`, { reason: 'Scrapped and counted' }, qe1.cookie);
    assert.equal(closed.statusCode, 200, closed.body);
    assert.equal(closed.json().state, 'Closed');
    const audit = await t.loom.audit.list({ entityType: 'ncr', entityId: ncr.number, limit: 10 });
    assert.equal(audit.at(-1)?.action, 'ncr.closed');
    const again = await post(`/api/ncrs/${ncr.id}/close`, {}, qe1.cookie);
    assert.equal(again.statusCode, 409);
    assert.match(again.json().detail, /it is Closed/);

    const missing = await get('/api/ncrs/987654', qe1.cookie);
    assert.equal(missing.statusCode, 404);
    assert.equal(missing.json().code, 'LOOM_NCR_NOT_FOUND');
  });

  it('lists NCRs by state and order', async () => {
    const open = await get(`/api/ncrs?state=Open&order=${order.id}`, operator.cookie);
    assert.equal(open.statusCode, 200);
    assert.ok(open.json().length >= 1);
    assert.ok(
      open
        .json()
        .every((n: { state: string; orderId: string }) => n.state === 'Open' && n.orderId === order.id),
    );
    const closed = await get(`/api/ncrs?state=Closed&order=${order.id}`, operator.cookie);
    assert.equal(closed.json().length, 1);
    const bad = await get('/api/ncrs?state=Sideways', operator.cookie);
    assert.equal(bad.statusCode, 400);
  });

  it('replays a disposition retried with the same Idempotency-Key without a second rework operation, and refuses the key for another body', async () => {
    const ncr = await manualNcr(order, '10', '1', { cause: 'weld' });
    const body = { disposition: 'rework', cause: 'weld', reason: 'Re-weld' };
    const headers = { 'idempotency-key': 'dispo-key-1' };
    const first = await disposition(ncr.id, body, qe1.cookie, headers);
    assert.equal(first.statusCode, 200, first.body);
    const afterFirst = await tableCounts();

    const retry = await disposition(ncr.id, body, qe1.cookie, headers);
    assert.equal(retry.statusCode, 200, retry.body);
    assert.equal(retry.headers['idempotent-replayed'], 'true');
    assert.deepEqual(retry.json(), first.json());
    assert.deepEqual(await tableCounts(), afterFirst, 'no second effect');

    const other = await disposition(ncr.id, { ...body, reason: 'Something else' }, qe1.cookie, headers);
    assert.equal(other.statusCode, 422);
    assert.equal(other.json().code, 'LOOM_IDEMPOTENCY_KEY_REUSED');
    assert.equal((await t.loom.audit.verify()).ok, true);
  });
});

describe('units under NCRs when an operation completes', () => {
  const complete = (pk: number, body: Record<string, unknown>) =>
    post(`/api/operations/${pk}/complete`, body, operator.cookie);

  it("refuses an NCR naming more of the operation's units than it plans, or an unknown lot, and records nothing", async () => {
    const o = await createOrder(t, 'compact-sedan', '2');
    await manualNcr(o, '10', '1');
    const before = await tableCounts();
    const tooMany = await post(
      '/api/ncrs',
      { operation: o.ops['10'], quantity: '1.5', description: 'Two more bad welds' },
      operator.cookie,
    );
    assert.equal(tooMany.statusCode, 422, tooMany.body);
    assert.equal(tooMany.json().code, 'LOOM_NCR_QUANTITY_EXCEEDS_PLAN');
    assert.equal(tooMany.json().issues[0].message, 'at most 1');
    const unknown = await post(
      '/api/ncrs',
      { operation: o.ops['10'], quantity: '1', description: 'x', lotId: 'NO-SUCH-LOT' },
      operator.cookie,
    );
    assert.equal(unknown.statusCode, 404, unknown.body);
    assert.equal(unknown.json().code, 'LOOM_LOT_NOT_FOUND');
    assert.equal(unknown.json().issues[0].path, 'lotId');
    assert.deepEqual(await tableCounts(), before);
    // Consumed material is counted in its own unit, not against the operation's plan.
    await createLot(t, 'PANEL-NCR-2', 'body-panel', '400');
    await manualNcr(o, '10', '20', { lotId: 'PANEL-NCR-2' });
    // Units already reported leave no room: a completed operation's good units are not raised
    // there again (good + scrap would exceed the plan after a scrap disposition).
    const done = await createOrder(t, 'compact-sedan', '1');
    await setOperation(t, done.ops['10']!, 'Running', 'weld-robot-1');
    const completed = await post(`/api/operations/${done.ops['10']}/complete`, { good: 1 }, operator.cookie);
    assert.equal(completed.statusCode, 200, completed.body);
    const late = await post(
      '/api/ncrs',
      { operation: done.ops['10'], quantity: '1', description: 'Found at end of line' },
      operator.cookie,
    );
    assert.equal(late.statusCode, 422, late.body);
    assert.match(
      late.json().detail,
      /1 are reported good or scrap .* at most 0\. A unit found nonconforming after its operation completed is raised at the operation it is at now/,
    );
    // Two NCRs raised at once for the last unit: one is raised, the other refused.
    const both = await Promise.all(
      [1, 2].map((i) =>
        post(
          '/api/ncrs',
          { operation: o.ops['10'], quantity: '1', description: `race ${i}` },
          operator.cookie,
        ),
      ),
    );
    assert.deepEqual(both.map((r) => r.statusCode).sort(), [201, 422]);
  });

  it('counts a unit scrapped by its NCR once: the rest can be reported good', async () => {
    const o = await createOrder(t, 'compact-sedan', '10');
    await setOperation(t, o.ops['10']!, 'Running', 'weld-robot-1');
    const ncr = await manualNcr(o, '10', '1');
    const res = await disposition(ncr.id, { disposition: 'scrap', cause: 'weld', reason: 'Burnt through' });
    assert.equal(res.statusCode, 200, res.body);
    const over = await complete(o.ops['10']!, { good: 10 });
    assert.equal(over.statusCode, 422, over.body);
    assert.match(
      over.json().detail,
      /plans 10; good 10 \+ scrap 0 \+ 0 under NCR \+ 1 already counted \(good or scrap by NCR disposition\) would report 11/,
    );
    assert.equal(over.json().issues[0].message, 'at most 9');
    const done = await complete(o.ops['10']!, { good: 9 });
    assert.equal(done.statusCode, 200, done.body);
    const row = await operationRow(o.ops['10']!);
    assert.deepEqual([row.good_quantity, row.scrap_quantity], ['9.000000', '1.000000']);
    assert.equal((await operationRow(o.ops['20']!)).planned_quantity, '9.000000');
  });

  it('does not count an NCR on consumed material as units of the operation', async () => {
    const o = await createOrder(t, 'compact-sedan', '4');
    await setOperation(t, o.ops['10']!, 'Running', 'weld-robot-1');
    await createLot(t, 'PANEL-NCR-1', 'body-panel', '400');
    await manualNcr(o, '10', '20', { lotId: 'PANEL-NCR-1' });
    const done = await complete(o.ops['10']!, { good: 4 });
    assert.equal(done.statusCode, 200, done.body);
  });

  it('completes a rework operation whose only unit went on to the next loop, and passes reworked units on to the next step', async () => {
    const o = await createOrder(t, 'compact-sedan', '2');
    const op10 = o.ops['10']!;
    await setOperation(t, op10, 'Running', 'weld-robot-1');
    const first = (await results(op10, [{ characteristic: 'nugget-diameter', value: 3.9 }])).json().results[0]
      .ncr;
    const rw1 = (
      await disposition(first.id, { disposition: 'rework', cause: 'weld', reason: 'Re-weld' })
    ).json().reworkOperation;
    // Step 10 reports its other unit good; the reworked one is still under its NCR.
    const done10 = await complete(op10, { good: 1 });
    assert.equal(done10.statusCode, 200, done10.body);
    assert.equal(done10.json().next.plannedQuantity, '1');
    await setOperation(t, rw1.pk, 'Running', 'weld-robot-2');
    const again = (await results(rw1.pk, [{ characteristic: 'nugget-diameter', value: 4.1 }])).json()
      .results[0].ncr;
    const rw2 = (
      await disposition(again.id, { disposition: 'rework', cause: 'weld', reason: 'Once more' })
    ).json().reworkOperation;

    const nothing = await complete(rw1.pk, { good: 1 });
    assert.equal(nothing.statusCode, 422, nothing.body);
    assert.equal(nothing.json().issues[0].message, 'at most 0');
    const rw1Done = await complete(rw1.pk, { good: 0 });
    assert.equal(rw1Done.statusCode, 200, rw1Done.body);
    assert.equal(rw1Done.json().operation.state, 'Completed');
    assert.equal((await operationRow(o.ops['20']!)).planned_quantity, '1.000000', 'nothing passed on yet');

    await setOperation(t, rw2.pk, 'Running', 'weld-robot-2');
    const rw2Done = await complete(rw2.pk, { good: 1 });
    assert.equal(rw2Done.statusCode, 200, rw2Done.body);
    assert.equal(rw2Done.json().next.plannedQuantity, '2', 'the reworked unit rejoins at step 20');
    assert.equal((await operationRow(o.ops['20']!)).planned_quantity, '2.000000');

    // An operation with nothing reported and nothing under an NCR still refuses good 0.
    await setOperation(t, o.ops['20']!, 'Running', 'paint-oven-1');
    const empty = await complete(o.ops['20']!, { good: 0 });
    assert.equal(empty.statusCode, 400, empty.body);
  });
});

describe('a serial under an NCR', () => {
  async function serial(id: string, orderId: string) {
    await t.database.db.query(
      `INSERT INTO lots (id, kind, material_id, quantity, unit_id, status, order_id)
       VALUES ($1, 'serial', 'welded-body', 1, 'pcs', 'Released', $2)`,
      [id, orderId],
    );
  }
  const status = async (id: string) =>
    (await t.database.db.query<{ status: string }>('SELECT status FROM lots WHERE id = $1', [id])).rows[0]!
      .status;

  it('is set apart in Quarantine until its disposition: released for rework or use, blocked when scrapped', async () => {
    const o = await createOrder(t, 'compact-sedan', '3');
    const op10 = o.ops['10']!;
    await setOperation(t, op10, 'Running', 'weld-robot-1');
    await serial('WB-NCR-1', o.id);
    await serial('WB-NCR-2', o.id);

    const failed = await results(op10, [
      { characteristic: 'nugget-diameter', value: 3.9, lotId: 'WB-NCR-1' },
    ]);
    assert.equal(failed.statusCode, 201, failed.body);
    const ncr1 = failed.json().results[0].ncr;
    assert.equal(await status('WB-NCR-1'), 'Quarantine');
    const [quarantined] = await t.loom.audit.list({ entityType: 'lot', entityId: 'WB-NCR-1', limit: 5 });
    assert.equal(quarantined?.action, 'lot.quarantined');
    assert.match(quarantined?.reason ?? '', new RegExp(`${ncr1.number} raised`));
    const res = await disposition(ncr1.id, { disposition: 'rework', cause: 'weld', reason: 'Re-weld' });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(await status('WB-NCR-1'), 'Released', 'reworked: back in the flow');

    const ncr2 = await manualNcr(o, '10', '1', { lotId: 'WB-NCR-2' });
    assert.equal(await status('WB-NCR-2'), 'Quarantine');
    const scrapped = await disposition(ncr2.id, {
      disposition: 'scrap',
      cause: 'weld',
      reason: 'Burnt through',
    });
    assert.equal(scrapped.statusCode, 200, scrapped.body);
    assert.equal(await status('WB-NCR-2'), 'Blocked');
    const actions = (await t.loom.audit.list({ entityType: 'lot', entityId: 'WB-NCR-2', limit: 5 })).map(
      (a) => a.action,
    );
    assert.deepEqual(actions.sort(), ['lot.blocked', 'lot.quarantined']);
  });
});

describe('a result raising an NCR and a completion of the same operation at once', () => {
  it('never both count the same unit: the completion waits for the NCR and is refused', async () => {
    const order = await createOrder(t, 'compact-sedan', '1');
    const pk = order.ops['10']!;
    await setOperation(t, pk, 'Running', 'weld-robot-1');
    // Widen the race: the result's transaction pauses 400 ms after writing its NCR, before commit.
    // What keeps the completion from counting the unit twice: the NCR's foreign key to the order
    // share-locks the order's row, so the completion's order lock waits for the NCR to commit and
    // then reads it (its read of the operations is a new statement with a new snapshot).
    await t.database.db.query(`
      CREATE FUNCTION test_slow_ncr() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN PERFORM pg_sleep(0.4); RETURN NEW; END $$;
      CREATE TRIGGER test_slow_ncr AFTER INSERT ON ncrs FOR EACH ROW EXECUTE FUNCTION test_slow_ncr();`);
    try {
      const recording = results(pk, [{ characteristic: 'nugget-diameter', value: 4.2 }]);
      await new Promise((r) => setTimeout(r, 150));
      const completed = await post(`/api/operations/${pk}/complete`, { good: 1 }, operator.cookie);
      const recorded = await recording;
      assert.equal(recorded.statusCode, 201, recorded.body);
      assert.equal(completed.statusCode, 422, completed.body);
      assert.equal(completed.json().code, 'LOOM_OPERATION_OVERREPORTED');
      const row = await operationRow(pk);
      assert.equal(row.state, 'Running');
      assert.equal(Number(row.good_quantity), 0);
    } finally {
      await t.database.db.query(`DROP TRIGGER test_slow_ncr ON ncrs; DROP FUNCTION test_slow_ncr();`);
    }
  });
});

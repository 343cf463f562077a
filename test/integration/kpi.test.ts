/**
 * Quality KPIs from production events on a real PostgreSQL: a constructed data set over two shifts
 * and two products, with rework (two loops), scrap and use-as-is made through the NCR API and good
 * quantities as the completion endpoint records them. Every number is worked out by hand below.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createTestApp, type TestApp } from '../support/app.ts';
import { createOrder, goodEvent, importExamplePlant, setOperation } from '../support/quality-fixtures.ts';

let t: TestApp;
let supervisor: string;

const DAY = '2026-03-10';
const EARLY = new Date(`${DAY}T08:00:00Z`);
const LATE = new Date(`${DAY}T16:00:00Z`);

/*
 * The data set (product A = compact-sedan, B = service-door-panel):
 *  early  A/10 good 8 (first pass, weld-robot-1); NCR 2 → rework (weld) → 10-RW1
 *         A/10-RW1 good 1 (weld-robot-2, not first pass)
 *         A/20 good 9 (paint-booth-1); NCR 1 → scrap (surface)
 *  late   A/10-RW1 NCR 1 → rework (weld) → 10-RW2 (loop 2, not first pass); 10-RW2 good 1
 *         B/10 good 18 (press-1); NCR 2 → scrap (dimension); NCR 1 → use-as-is (dimension)
 */
before(async () => {
  t = await createTestApp();
  await importExamplePlant(t);
  supervisor = (await t.userWithRoles('sup1', ['supervisor'])).cookie;
  const operator = await t.userWithRoles('op1', ['operator']);
  const quality = await t.userWithRoles('qe1', ['quality']);

  const ncr = async (operation: number, quantity: string, cause: string) => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/ncrs',
      headers: { cookie: operator.cookie },
      payload: { operation, quantity, description: 'found in test', cause },
    });
    assert.equal(res.statusCode, 201, res.body);
    return res.json<{ id: number }>().id;
  };
  const dispose = async (id: number, disposition: string, cause: string) => {
    const res = await t.app.inject({
      method: 'POST',
      url: `/api/ncrs/${id}/disposition`,
      headers: { cookie: quality.cookie },
      payload: {
        disposition,
        cause,
        reason: 'test',
        ...(disposition === 'use-as-is'
          ? { signature: { password: quality.password, meaning: 'Accepted under concession' } }
          : {}),
      },
    });
    assert.equal(res.statusCode, 200, res.body);
    return res.json<{ reworkOperation: { pk: number } | null }>().reworkOperation;
  };

  const a = await createOrder(t, 'compact-sedan', '10');
  const b = await createOrder(t, 'service-door-panel', '21');
  await setOperation(t, a.ops['10']!, 'Running', 'weld-robot-1');
  await setOperation(t, a.ops['20']!, 'Running', 'paint-booth-1');
  await setOperation(t, b.ops['10']!, 'Running', 'press-1');

  t.clock.set(EARLY);
  await goodEvent(t, a.ops['10']!, '8', EARLY);
  const rw1 = (await dispose(await ncr(a.ops['10']!, '2', 'weld'), 'rework', 'weld'))!;
  await setOperation(t, rw1.pk, 'Running', 'weld-robot-2');
  await goodEvent(t, rw1.pk, '1', EARLY);
  await goodEvent(t, a.ops['20']!, '9', EARLY);
  await dispose(await ncr(a.ops['20']!, '1', 'surface'), 'scrap', 'surface');

  t.clock.set(LATE);
  const rw2 = (await dispose(await ncr(rw1.pk, '1', 'weld'), 'rework', 'weld'))!;
  await setOperation(t, rw2.pk, 'Running', 'weld-robot-2');
  await goodEvent(t, rw2.pk, '1', LATE);
  await goodEvent(t, b.ops['10']!, '18', LATE);
  await dispose(await ncr(b.ops['10']!, '2', 'dimension'), 'scrap', 'dimension');
  await dispose(await ncr(b.ops['10']!, '1', 'dimension'), 'use-as-is', 'dimension');
});
after(async () => {
  await t?.close();
});

const kpi = async (query: string, cookie = supervisor) => {
  const res = await t.app.inject({ method: 'GET', url: `/api/kpi/quality?${query}`, headers: { cookie } });
  assert.equal(res.statusCode, 200, res.body);
  return res.json();
};

const row = (
  processed: string,
  firstPassGood: string,
  good: string,
  rework: string,
  scrap: string,
  firstPassYield: number | null,
  reworkRate: number | null,
  scrapRate: number | null,
) => ({ processed, firstPassGood, good, rework, scrap, firstPassYield, reworkRate, scrapRate });

const RANGE = `from=${DAY}T00:00:00Z&to=${DAY}T23:59:59Z`;

describe('quality KPIs', () => {
  it('the events fall into the early and late shift', async () => {
    const r = await t.database.db.query(`SELECT DISTINCT shift_id FROM production_events ORDER BY 1`);
    assert.deepEqual(
      r.rows.map((x) => x.shift_id),
      ['early', 'late'],
    );
  });

  it('by operation: first-pass yield, rework and scrap rates per routing step, rolled throughput yield per product and the rework loops', async () => {
    const r = await kpi(`${RANGE}&groupBy=operation`);
    assert.deepEqual(r.groups, [
      { key: { product: 'compact-sedan', operation: '10' }, ...row('10', '8', '10', '3', '0', 0.8, 0.3, 0) },
      { key: { product: 'compact-sedan', operation: '20' }, ...row('10', '9', '9', '0', '1', 0.9, 0, 0.1) },
      {
        key: { product: 'service-door-panel', operation: '10' },
        ...row('21', '18', '19', '0', '2', 0.857143, 0, 0.095238),
      },
    ]);
    assert.deepEqual(r.totals, row('41', '35', '38', '3', '3', 0.853659, 0.073171, 0.073171));
    assert.deepEqual(r.rolledThroughputYield, [
      {
        product: 'compact-sedan',
        steps: [
          { operation: '10', processed: '10', firstPassYield: 0.8 },
          { operation: '20', processed: '10', firstPassYield: 0.9 },
        ],
        rolledThroughputYield: 0.72,
      },
      {
        product: 'service-door-panel',
        steps: [{ operation: '10', processed: '21', firstPassYield: 0.857143 }],
        rolledThroughputYield: 0.857143,
      },
    ]);
    assert.deepEqual(r.reworkLoops, [
      { product: 'compact-sedan', operation: '10', reworkOperations: 2, maxLoop: 2, reworkQuantity: '3' },
    ]);
    assert.equal(r.groupBy, 'operation');
  });

  it('by product', async () => {
    const r = await kpi(`${RANGE}&groupBy=product`);
    assert.deepEqual(r.groups, [
      { key: { product: 'compact-sedan' }, ...row('20', '17', '19', '3', '1', 0.85, 0.15, 0.05) },
      { key: { product: 'service-door-panel' }, ...row('21', '18', '19', '0', '2', 0.857143, 0, 0.095238) },
    ]);
  });

  it('by shift', async () => {
    const r = await kpi(`${RANGE}&groupBy=shift`);
    assert.deepEqual(r.groups, [
      { key: { shift: 'early' }, ...row('20', '17', '18', '2', '1', 0.85, 0.1, 0.05) },
      { key: { shift: 'late' }, ...row('21', '18', '20', '1', '2', 0.857143, 0.047619, 0.095238) },
    ]);
  });

  it('by work unit: a rework station processes nothing first-pass, so its rates are null', async () => {
    const r = await kpi(`${RANGE}&groupBy=workUnit`);
    assert.deepEqual(r.groups, [
      { key: { workUnit: 'paint-booth-1' }, ...row('10', '9', '9', '0', '1', 0.9, 0, 0.1) },
      { key: { workUnit: 'press-1' }, ...row('21', '18', '19', '0', '2', 0.857143, 0, 0.095238) },
      { key: { workUnit: 'weld-robot-1' }, ...row('10', '8', '8', '2', '0', 0.8, 0.2, 0) },
      { key: { workUnit: 'weld-robot-2' }, ...row('0', '0', '2', '1', '0', null, null, null) },
    ]);
  });

  it('by cause: what each cause cost, as a share of everything processed', async () => {
    const r = await kpi(`${RANGE}&groupBy=cause`);
    assert.deepEqual(r.groups, [
      { key: { cause: 'dimension' }, ...row('41', '0', '1', '0', '2', null, 0, 0.04878) },
      { key: { cause: 'surface' }, ...row('41', '0', '0', '0', '1', null, 0, 0.02439) },
      { key: { cause: 'weld' }, ...row('41', '0', '0', '3', '0', null, 0.073171, 0) },
    ]);
  });

  it('over a time range and for one product', async () => {
    const late = await kpi(`from=${DAY}T12:00:00Z&to=${DAY}T23:00:00Z&groupBy=operation`);
    assert.deepEqual(late.groups, [
      {
        key: { product: 'compact-sedan', operation: '10' },
        ...row('0', '0', '1', '1', '0', null, null, null),
      },
      {
        key: { product: 'service-door-panel', operation: '10' },
        ...row('21', '18', '19', '0', '2', 0.857143, 0, 0.095238),
      },
    ]);
    assert.deepEqual(late.reworkLoops, [
      { product: 'compact-sedan', operation: '10', reworkOperations: 1, maxLoop: 2, reworkQuantity: '1' },
    ]);
    assert.equal(
      late.rolledThroughputYield[0].rolledThroughputYield,
      null,
      'no first pass at step 10 in range',
    );

    const sedan = await kpi(`${RANGE}&groupBy=shift&product=compact-sedan`);
    assert.deepEqual(sedan.groups, [
      { key: { shift: 'early' }, ...row('20', '17', '18', '2', '1', 0.85, 0.1, 0.05) },
      { key: { shift: 'late' }, ...row('0', '0', '1', '1', '0', null, null, null) },
    ]);
    assert.deepEqual(
      sedan.rolledThroughputYield.map((p: { product: string }) => p.product),
      ['compact-sedan'],
    );

    const empty = await kpi('from=2020-01-01T00:00:00Z&to=2020-01-02T00:00:00Z');
    assert.deepEqual(empty.groups, []);
    assert.deepEqual(empty.totals, row('0', '0', '0', '0', '0', null, null, null));
  });

  it('refuses operators, a reversed range, an unknown grouping and an unknown product', async () => {
    const op = await t.login('op1', 'correct horse battery 3');
    const refused = await t.app.inject({ method: 'GET', url: '/api/kpi/quality', headers: { cookie: op } });
    assert.equal(refused.statusCode, 403);
    const reversed = await t.app.inject({
      method: 'GET',
      url: `/api/kpi/quality?from=${DAY}T10:00:00Z&to=${DAY}T09:00:00Z`,
      headers: { cookie: supervisor },
    });
    assert.equal(reversed.statusCode, 400);
    const bad = await t.app.inject({
      method: 'GET',
      url: '/api/kpi/quality?groupBy=colour',
      headers: { cookie: supervisor },
    });
    assert.equal(bad.statusCode, 400);
    const unknown = await t.app.inject({
      method: 'GET',
      url: '/api/kpi/quality?product=flying-car',
      headers: { cookie: supervisor },
    });
    assert.equal(unknown.statusCode, 404, unknown.body);
    assert.equal(unknown.json().code, 'LOOM_KPI_UNKNOWN_PRODUCT');
  });
});

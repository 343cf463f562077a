import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import {
  encodeProductionPerformance,
  productionPerformanceDocument,
  validateOutbound,
} from '../../src/adapters/erp/b2mml-performance.ts';
import { createXsdValidator, type XsdValidator } from '../../src/adapters/erp/xsd-validator.ts';
import { createTestApp, type TestApp } from '../support/app.ts';
import { importExamplePlant } from '../support/plant.ts';

const fixture = (name: string) => readFileSync(new URL(`../fixtures/b2mml/${name}`, import.meta.url), 'utf8');

let t: TestApp;
let bearer: Record<string, string>;
let validator: XsdValidator;

before(async () => {
  t = await createTestApp();
  await importExamplePlant(t);
  const erp = await t.userWithRoles('sap-erp', ['integration']);
  const created = await t.app.inject({
    method: 'POST',
    url: '/api/tokens',
    headers: { cookie: await t.adminCookie() },
    payload: { userId: erp.id, name: 'SAP' },
  });
  assert.equal(created.statusCode, 201, created.body);
  bearer = { authorization: `Bearer ${created.json<{ token: string }>().token}` };
  validator = await createXsdValidator();
});
after(async () => {
  await t?.close();
});

async function counts() {
  const r = await t.database.db.query<{
    orders: number;
    ops: number;
    lots: number;
    inbound: number;
    audit: number;
  }>(
    `SELECT (SELECT count(*) FROM production_orders)::int AS orders,
            (SELECT count(*) FROM order_operations)::int AS ops,
            (SELECT count(*) FROM lots)::int AS lots,
            (SELECT count(*) FROM erp_inbound_messages)::int AS inbound,
            (SELECT count(*) FROM audit_log)::int AS audit`,
  );
  return r.rows[0]!;
}

const post = (url: string, payload: unknown, headers: Record<string, string> = {}) =>
  t.app.inject({ method: 'POST', url, headers: { ...bearer, ...headers }, payload: payload as object });

const postXml = (xml: string, headers: Record<string, string> = {}) =>
  t.app.inject({
    method: 'POST',
    url: '/api/erp/b2mml',
    headers: { ...bearer, 'content-type': 'application/xml', ...headers },
    payload: xml,
  });

const order = (externalId: string, extra: Record<string, unknown> = {}) => ({
  externalId,
  product: 'compact-sedan',
  quantity: 10,
  dueAt: '2026-12-01T14:00:00Z',
  priority: 200,
  ...extra,
});

async function assertLoomAnswers() {
  const res = await t.app.inject({ method: 'GET', url: '/api/orders?limit=1', headers: bearer });
  assert.equal(res.statusCode, 200);
}

describe('POST /api/erp/orders', () => {
  it('creates a batch of orders in one transaction and lists each with its outcome', async () => {
    const before = await counts();
    const res = await post('/api/erp/orders', {
      orders: [
        order('ERP-1'),
        order('ERP-2', { quantity: '2.5', product: 'service-door-panel' }),
        order('ERP-3', { product: 'service-door-panel' }),
      ],
    });
    assert.equal(res.statusCode, 201, res.body);
    const body = res.json();
    assert.deepEqual([body.created, body.updated, body.unchanged], [3, 0, 0]);
    assert.deepEqual(
      body.orders.map((o: { index: number; order: { externalId: string; quantity: string } }) => [
        o.index,
        o.order.externalId,
        o.order.quantity,
      ]),
      [
        [0, 'ERP-1', '10'],
        [1, 'ERP-2', '2.5'],
        [2, 'ERP-3', '10'],
      ],
    );
    assert.equal((await counts()).orders, before.orders + 3);
  });

  it('answers a repeat with the same orders and creates nothing', async () => {
    const first = await post('/api/erp/orders', { orders: [order('REP-1'), order('REP-2')] });
    assert.equal(first.statusCode, 201);
    const before = await counts();
    const again = await post('/api/erp/orders', { orders: [order('REP-1'), order('REP-2')] });
    assert.equal(again.statusCode, 200, again.body);
    assert.deepEqual(again.json().unchanged, 2);
    assert.deepEqual(
      again.json().orders.map((o: { order: { id: string } }) => o.order.id),
      first.json().orders.map((o: { order: { id: string } }) => o.order.id),
    );
    const afterCounts = await counts();
    assert.equal(afterCounts.orders, before.orders);
    assert.equal(afterCounts.ops, before.ops);
  });

  it('accepts a single order and updates it when the ERP changes it before it starts', async () => {
    const created = await post('/api/erp/orders', order('CHG-1'));
    assert.equal(created.statusCode, 201, created.body);
    assert.equal(created.json().outcome, 'created');
    const changed = await post('/api/erp/orders', order('CHG-1', { quantity: 25, priority: 50 }));
    assert.equal(changed.statusCode, 200, changed.body);
    assert.equal(changed.json().outcome, 'updated');
    assert.equal(changed.json().order.id, created.json().order.id);
    assert.equal(changed.json().order.quantity, '25');
    assert.equal(changed.json().order.priority, 50);
    assert.ok(
      changed.json().operations.every((o: { plannedQuantity: string }) => o.plannedQuantity === '25'),
    );
  });

  it('refuses a change to a started order with the reason, and the rest of the batch with it', async () => {
    const created = await post('/api/erp/orders', order('STARTED-1'));
    const id = created.json().order.id as string;
    await t.database.db.query(
      `UPDATE production_orders SET state = 'InProgress', started_at = now() WHERE id = $1`,
      [id],
    );
    const before = await counts();
    const res = await post('/api/erp/orders', {
      orders: [order('NEW-AFTER-STARTED'), order('STARTED-1', { quantity: 99 })],
    });
    assert.equal(res.statusCode, 422, res.body);
    const p = res.json();
    assert.equal(p.code, 'LOOM_ERP_ORDERS_REJECTED');
    assert.equal(p.errors[0].path, 'orders[1]');
    assert.equal(p.errors[0].code, 'LOOM_ORDER_ALREADY_STARTED');
    assert.match(p.errors[0].message, /InProgress.*can no longer be changed/);
    assert.equal(
      (await counts()).orders,
      before.orders,
      'the valid order of the batch was not created either',
    );

    const single = await post('/api/erp/orders', order('STARTED-1', { quantity: 99 }));
    assert.equal(single.statusCode, 409);
    assert.equal(single.json().code, 'LOOM_ORDER_ALREADY_STARTED');
  });

  it('names every bad item by its path (unknown product, negative quantity) and creates nothing', async () => {
    const before = await counts();
    const bad = await post('/api/erp/orders', {
      orders: [
        order('OK-1'),
        order('NEG-1', { quantity: -5 }),
        order('OK-2'),
        order('BAD-1', { product: 'hovercraft' }),
      ],
    });
    assert.equal(bad.statusCode, 400, bad.body);
    assert.deepEqual(
      bad.json().issues.map((i: { path: string }) => i.path),
      ['orders[1].quantity'],
      'shape and quantity are checked before anything touches the database',
    );
    const unknown = await post('/api/erp/orders', {
      orders: [order('OK-1'), order('OK-2'), order('OK-3'), order('BAD-1', { product: 'hovercraft' })],
    });
    assert.equal(unknown.statusCode, 422, unknown.body);
    assert.equal(unknown.json().errors[0].path, 'orders[3].product');
    assert.equal(unknown.json().errors[0].code, 'LOOM_ORDER_UNKNOWN_PRODUCT');
    assert.deepEqual(await counts(), before);
  });

  it('refuses a batch that repeats an externalId, a unit other than the product’s, and more than 1000 orders', async () => {
    const dup = await post('/api/erp/orders', { orders: [order('DUP-1'), order('DUP-1')] });
    assert.equal(dup.statusCode, 400);
    assert.equal(dup.json().issues[0].path, 'orders[1].externalId');
    const unit = await post('/api/erp/orders', order('UNIT-1', { unit: 'kg' }));
    assert.equal(unit.statusCode, 422);
    assert.equal(unit.json().code, 'LOOM_ORDER_UNIT_MISMATCH');
    const many = await post('/api/erp/orders', {
      orders: Array.from({ length: 1001 }, (_, i) => order(`MANY-${i}`)),
    });
    assert.equal(many.statusCode, 400);
  });

  it('is for integrations and admins only', async () => {
    const op = await t.userWithRoles('erp-op', ['operator']);
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/erp/orders',
      headers: { cookie: op.cookie },
      payload: order('OP-1'),
    });
    assert.equal(res.statusCode, 403);
  });
});

describe('JSONata mappings', () => {
  it('turns SAP-like orders into Loom orders through examples/erp-mappings/sap-like.jsonata', async () => {
    const res = await post('/api/erp/orders/mapped/sap-like', {
      ORDERS: [
        {
          AUFNR: '000001000777',
          MATNR: 'compact-sedan',
          GAMNG: '12.000',
          GMEIN: 'ST',
          GLTRP: '20261127',
          PRIOK: '1',
        },
        { AUFNR: '000001000778', MATNR: 'service-door-panel', GAMNG: 40, GLTRP: '20261130' },
      ],
    });
    assert.equal(res.statusCode, 201, res.body);
    const [a, b] = res.json().orders.map((o: { order: unknown }) => o.order);
    assert.equal(a.externalId, '1000777');
    assert.equal(a.quantity, '12');
    assert.equal(a.unit, 'pcs');
    assert.equal(a.dueAt, '2026-11-27T23:59:59.000Z');
    assert.equal(a.priority, 100);
    assert.equal(b.product, 'service-door-panel');
    assert.equal(b.priority, 500);
  });

  it('reports a bad mapped order by its path, and refuses unknown or unsafe mapping names', async () => {
    const bad = await post('/api/erp/orders/mapped/sap-like', {
      AUFNR: '1',
      MATNR: 'compact-sedan',
      GAMNG: '-3',
    });
    assert.equal(bad.statusCode, 400);
    assert.equal(bad.json().issues[0].path, 'orders[0].quantity');
    assert.equal((await post('/api/erp/orders/mapped/oracle-like', {})).statusCode, 404);
    const traversal = await post('/api/erp/orders/mapped/..%2F..%2Fpackage', {});
    assert.ok([400, 404].includes(traversal.statusCode), traversal.body);
    assert.notEqual(traversal.json().code, 'LOOM_ERP_MAPPING_FAILED');
  });
});

describe('material definitions and lot receipts (REST)', () => {
  it('creates and replaces material definitions once per ERP document id', async () => {
    const doc = {
      documentId: 'MATMAS-0001',
      materialDefinitions: [
        { id: 'hinge-pin', name: 'Hinge pin', unit: 'pcs', class: 'component', tracking: 'lot' },
      ],
    };
    const first = await post('/api/erp/material-definitions', doc);
    assert.equal(first.statusCode, 200, first.body);
    assert.deepEqual(first.json().materialDefinitions, [{ id: 'hinge-pin', outcome: 'created' }]);
    const again = await post('/api/erp/material-definitions', doc);
    assert.equal(again.statusCode, 200);
    assert.equal(again.headers['idempotent-replayed'], 'true');
    assert.deepEqual(again.json(), first.json());
    const reused = await post('/api/erp/material-definitions', {
      ...doc,
      materialDefinitions: [{ ...doc.materialDefinitions[0], name: 'Other' }],
    });
    assert.equal(reused.statusCode, 422);
    assert.equal(reused.json().code, 'LOOM_ERP_MESSAGE_ID_REUSED');
    const replaced = await post(
      '/api/erp/material-definitions',
      { materialDefinitions: [{ ...doc.materialDefinitions[0], name: 'Hinge pin, zinc plated' }] },
      { 'idempotency-key': 'MATMAS-0002' },
    );
    assert.equal(replaced.statusCode, 200, replaced.body);
    assert.deepEqual(replaced.json().materialDefinitions, [{ id: 'hinge-pin', outcome: 'updated' }]);
  });

  it('requires a document id and names a bad definition by its path', async () => {
    const none = await post('/api/erp/material-definitions', {
      materialDefinitions: [{ id: 'x', name: 'x', unit: 'pcs', class: 'raw', tracking: 'lot' }],
    });
    assert.equal(none.statusCode, 400);
    assert.equal(none.json().code, 'LOOM_ERP_DOCUMENT_ID_REQUIRED');
    const before = await counts();
    const bad = await post('/api/erp/material-definitions', {
      documentId: 'MATMAS-BAD',
      materialDefinitions: [
        { id: 'ok-part', name: 'x', unit: 'pcs', class: 'raw', tracking: 'lot' },
        { id: 'bad-part', name: 'x', unit: 'furlong', class: 'raw', tracking: 'lot' },
      ],
    });
    assert.equal(bad.statusCode, 422, bad.body);
    assert.equal(bad.json().issues[0].path, 'materialDefinitions[1].unit');
    assert.deepEqual(await counts(), before);
  });

  it('receives the lots of a goods receipt once per document id, all or nothing', async () => {
    const receipt = {
      documentId: 'GR-5000001',
      lots: [
        { id: 'COIL-REST-1', material: 'steel-coil', quantity: '800', unit: 'kg', supplierLot: 'TK-1' },
        { id: 'COIL-REST-2', material: 'steel-coil', quantity: 750.25, status: 'Released' },
      ],
    };
    const first = await post('/api/erp/lot-receipts', receipt);
    assert.equal(first.statusCode, 201, first.body);
    assert.deepEqual(
      first.json().lots.map((l: { id: string; status: string }) => [l.id, l.status]),
      [
        ['COIL-REST-1', 'Quarantine'],
        ['COIL-REST-2', 'Released'],
      ],
    );
    const before = await counts();
    const again = await post('/api/erp/lot-receipts', receipt);
    assert.equal(again.statusCode, 200);
    assert.deepEqual(again.json(), first.json());
    assert.deepEqual(await counts(), before);

    const bad = await post('/api/erp/lot-receipts', {
      documentId: 'GR-5000002',
      lots: [
        { id: 'COIL-REST-3', material: 'steel-coil', quantity: '10' },
        { id: 'COIL-REST-4', material: 'unobtainium', quantity: '10' },
      ],
    });
    assert.equal(bad.statusCode, 422, bad.body);
    assert.equal(bad.json().errors[0].path, 'lots[1].material');
    assert.deepEqual(await counts(), before);
  });
});

describe('POST /api/erp/b2mml', () => {
  it('turns a ProcessProductionSchedule into orders and answers AcknowledgeProductionSchedule', async () => {
    const before = await counts();
    const res = await postXml(fixture('process-production-schedule.xml'));
    assert.equal(res.statusCode, 200, res.body);
    assert.match(res.headers['content-type'] as string, /application\/xml/);
    assert.match(res.body, /<AcknowledgeProductionSchedule /);
    assert.match(res.body, /<BODID>6f1c2d5e-0b6a-4a55-9d33-0c7c1c1e4a01<\/BODID>/);
    assert.match(res.body, /<ID>1000451<\/ID><Description>Loom order PO-\d+: created<\/Description>/);
    assert.deepEqual(await validator.validate(res.body, 'B2MML-V0600-ProductionSchedule.xsd'), {
      valid: true,
    });
    const after1 = await counts();
    assert.equal(after1.orders, before.orders + 2);
    assert.equal(after1.inbound, before.inbound + 1);

    const orders = await t.database.db.query<{
      external_id: string;
      quantity: string;
      priority: number;
      due_at: Date;
    }>(
      `SELECT external_id, quantity::text, priority, due_at FROM production_orders WHERE external_id IN ('1000451', '1000452') ORDER BY external_id`,
    );
    assert.deepEqual(
      orders.rows.map((r) => [r.external_id, Number(r.quantity), r.priority, r.due_at.toISOString()]),
      [
        ['1000451', 12, 200, '2026-11-27T14:00:00.000Z'],
        ['1000452', 40, 500, '2026-11-28T13:00:00.000Z'],
      ],
    );

    const again = await postXml(fixture('process-production-schedule.xml'));
    assert.equal(again.statusCode, 200);
    assert.equal(again.headers['idempotent-replayed'], 'true');
    assert.equal(again.body, res.body, 'the same BODID gets the same acknowledgement');
    assert.deepEqual(await counts(), after1);
  });

  it('refuses a DOCTYPE (billion laughs) before parsing: 400, nothing created, Loom still answers', async () => {
    const before = await counts();
    const started = Date.now();
    const res = await postXml(fixture('billion-laughs.xml'), { accept: 'application/problem+json' });
    assert.equal(res.statusCode, 400, res.body);
    assert.equal(res.json().code, 'LOOM_B2MML_DOCTYPE_REFUSED');
    assert.equal(res.json().issues[0].path, 'line 2');
    assert.ok(Date.now() - started < 2000);
    const xml = await postXml('<?xml version="1.0"?>\n<!ENTITY x "y"><a/>');
    assert.equal(xml.statusCode, 400);
    assert.equal(xml.headers['loom-error-code'], 'LOOM_B2MML_DOCTYPE_REFUSED');
    assert.match(xml.body, /<ConfirmBOD /);
    assert.match(xml.body, /actionCode="Rejected">LOOM_B2MML_DOCTYPE_REFUSED/);
    assert.deepEqual(await counts(), before);
    await assertLoomAnswers();
  });

  it('answers malformed XML with 400 naming the line and element', async () => {
    const before = await counts();
    const res = await postXml(fixture('malformed.xml'), { accept: 'application/json' });
    assert.equal(res.statusCode, 400, res.body);
    assert.equal(res.json().code, 'LOOM_B2MML_MALFORMED');
    assert.match(res.json().issues[0].path, /^line 12, element ProductionRequest/);
    const xml = await postXml(fixture('malformed.xml'));
    assert.equal(xml.statusCode, 400);
    assert.deepEqual(await validator.validate(xml.body, 'B2MML-V0600-ConfirmBOD.xsd'), { valid: true });
    assert.match(
      xml.body,
      /<Note>line 12, element ProductionRequest: Expected closing tag &apos;ProductionRequest&apos; \(opened in line 10/,
    );
    assert.deepEqual(await counts(), before);
  });

  it('answers a schema-invalid message with 422 naming the line and element', async () => {
    const before = await counts();
    const res = await postXml(fixture('schema-invalid.xml'), { accept: 'application/json' });
    assert.equal(res.statusCode, 422, res.body);
    assert.equal(res.json().code, 'LOOM_B2MML_SCHEMA_INVALID');
    assert.deepEqual(
      res.json().issues.map((i: { path: string }) => i.path),
      ['line 13, element Priority', 'line 14, element OrderQuantity'],
    );
    assert.deepEqual(await counts(), before);
  });

  it('refuses a message it does not handle, one without BODID, and an unknown product', async () => {
    const other = await postXml(
      fixture('process-production-schedule.xml').replaceAll(
        'ProcessProductionSchedule',
        'CancelProductionSchedule',
      ),
      { accept: 'application/json' },
    );
    assert.equal(other.statusCode, 422);
    assert.equal(other.json().code, 'LOOM_B2MML_UNSUPPORTED_MESSAGE');
    const noBodId = await postXml(
      fixture('process-production-schedule.xml').replace(/<BODID>.*<\/BODID>/, ''),
      { accept: 'application/json' },
    );
    assert.equal(noBodId.statusCode, 422);
    assert.equal(noBodId.json().code, 'LOOM_B2MML_BODID_REQUIRED');
    const before = await counts();
    const unknown = await postXml(
      fixture('process-production-schedule.xml')
        .replace('6f1c2d5e-0b6a-4a55-9d33-0c7c1c1e4a01', 'b0d1d000-0000-4000-8000-000000000001')
        .replace('>1000452<', '>2000452<')
        .replace('service-door-panel', 'hovercraft'),
    );
    assert.equal(unknown.statusCode, 422, unknown.body);
    assert.match(unknown.body, /ProductionRequest\[1\] \(ID 2000452\)\.product/);
    assert.deepEqual(await counts(), before);
  });

  it('refuses a 60 MB body with 413 and keeps answering', async () => {
    const huge = `<a>${'x'.repeat(60 * 1024 * 1024)}</a>`;
    const res = await postXml(huge);
    assert.equal(res.statusCode, 413);
    assert.equal(res.json().code, 'LOOM_HTTP_BODY_TOO_LARGE');
    const json = await post('/api/erp/orders', { orders: [{ externalId: 'x'.repeat(2 * 1024 * 1024) }] });
    assert.equal(json.statusCode, 413);
    await assertLoomAnswers();
  });

  it('applies SyncMaterialDefinition and SyncMaterialLot once each, answering ConfirmBOD', async () => {
    const def = await postXml(fixture('sync-material-definition.xml'));
    assert.equal(def.statusCode, 200, def.body);
    assert.match(def.body, /actionCode="Accepted"/);
    assert.match(def.body, /door-seal created/);
    assert.deepEqual(await validator.validate(def.body, 'B2MML-V0600-ConfirmBOD.xsd'), { valid: true });
    const stored = await t.app.inject({
      method: 'GET',
      url: '/api/plant/materials/door-seal',
      headers: bearer,
    });
    assert.equal(stored.statusCode, 200, stored.body);
    assert.deepEqual(
      { name: stored.json().name, unit: stored.json().unit, class: stored.json().class },
      { name: 'EPDM door seal & clip set', unit: 'm', class: 'component' },
    );

    const lot = await postXml(fixture('sync-material-lot.xml'));
    assert.equal(lot.statusCode, 200, lot.body);
    assert.match(lot.body, /COIL-2026-0815 \(1250\.5 kg, Released\)/);
    const before = await counts();
    const again = await postXml(fixture('sync-material-lot.xml'));
    assert.equal(again.statusCode, 200);
    assert.equal(again.body, lot.body);
    assert.deepEqual(await counts(), before);
    const received = await t.app.inject({ method: 'GET', url: '/api/lots/COIL-2026-0815', headers: bearer });
    assert.equal(received.json().supplierLot, 'TK-88231');
    assert.equal(received.json().location, 'WH-A-01');
  });
});

describe('B2MML production performance (actuals out)', () => {
  const messageId = '3f2e1d0c-b9a8-4766-9544-332211009988';

  it('encodes each actuals event as a ProcessProductionPerformance that validates, BODID = message id', async () => {
    const events = [
      {
        eventType: 'OperationCompleted',
        payload: {
          order: 'PO-000001',
          externalId: '1000451',
          operation: '10',
          isRework: false,
          workUnit: 'press-1',
          good: '10',
          scrap: '1',
          scrapCause: 'crack',
          unit: 'pcs',
          at: '2026-11-25T10:00:00.000Z',
        },
      },
      {
        eventType: 'MaterialConsumed',
        payload: {
          orderId: 'PO-000001',
          operation: { id: 1, operationId: '10', name: 'Press' },
          lot: 'COIL-1',
          material: 'steel-coil',
          quantity: '12.5',
          unit: 'kg',
          person: 'op-anna-berger',
          equipment: 'press-1',
          at: '2026-11-25T10:00:00.000Z',
        },
      },
      {
        eventType: 'MaterialProduced',
        payload: {
          orderId: 'PO-000001',
          operation: { id: 1, operationId: '10', name: 'Press' },
          lot: 'PANEL-1',
          material: 'body-panel',
          quantity: '1',
          unit: 'pcs',
          person: null,
          equipment: 'press-1',
          at: '2026-11-25T10:00:00.000Z',
        },
      },
      {
        eventType: 'OrderCompleted',
        payload: {
          order: {
            id: 'PO-000001',
            externalId: '1000451',
            product: 'compact-sedan',
            material: 'compact-sedan',
            unit: 'pcs',
          },
          goodQuantity: '10',
          at: '2026-11-25T12:00:00.000Z',
        },
      },
    ];
    for (const e of events) {
      const r = await productionPerformanceDocument({ messageId, aggregateId: 'PO-000001', ...e }, validator);
      assert.ok(r.ok, `${e.eventType}: ${JSON.stringify(!r.ok && r.error)}`);
      assert.match(r.value, new RegExp(`<BODID>${messageId}</BODID>`));
      assert.match(
        r.value,
        /<ProductionRequestID>1000451<\/ProductionRequestID>|MaterialConsumedActual|MaterialProducedActual/,
      );
    }
    const same = encodeProductionPerformance({ messageId, aggregateId: 'PO-000001', ...events[0]! });
    const again = encodeProductionPerformance({ messageId, aggregateId: 'PO-000001', ...events[0]! });
    assert.deepEqual(same, again, 'a redelivery is byte-identical');
  });

  it('returns an error for a document that does not validate, and for an event without a B2MML form', async () => {
    const good = encodeProductionPerformance({
      messageId,
      eventType: 'OperationCompleted',
      aggregateId: 'PO-1',
      payload: { order: 'PO-1', operation: '10', good: '1', unit: 'pcs', at: '2026-11-25T10:00:00Z' },
    });
    assert.ok(good.ok);
    const broken = await validateOutbound(
      good.value.replace('<Process/>', '<Process/><Unexpected/>'),
      validator,
    );
    assert.ok(!broken.ok);
    assert.equal(broken.error.code, 'LOOM_B2MML_INVALID_DOCUMENT');
    assert.match(broken.error.message, /Unexpected/);
    const other = encodeProductionPerformance({
      messageId,
      eventType: 'OrderReleased',
      aggregateId: 'PO-1',
      payload: {},
    });
    assert.ok(!other.ok);
    assert.equal(other.error.code, 'LOOM_B2MML_UNSUPPORTED_EVENT');
  });
});

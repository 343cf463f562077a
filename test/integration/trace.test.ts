/**
 * Genealogy over HTTP and the CLI on a real PostgreSQL: a three-level build (supplier lots →
 * welded bodies → cars) traced backward and forward with operations, people, equipment and
 * quality results on every edge; recall from a supplier lot; cycle protection.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { createTestApp, type TestApp } from '../support/app.ts';
import { insertOperation, insertOrder } from '../support/execution-fixtures.ts';
import { runLoom } from '../support/loom-process.ts';
import { postgresGenealogyStore, textArrayLiteral } from '../../src/adapters/db/postgres-genealogy-store.ts';
import { traceListsWorker, type TraceListsWorker } from '../../src/adapters/db/trace-lists-worker.ts';
import type { TraceListsSource } from '../../src/app/material/material-ports.ts';
import { GenealogyTrace, reachedKeys } from '../../src/app/material/trace-genealogy.ts';
import pino from 'pino';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const EXAMPLE = readFileSync(path.join(ROOT, 'examples/plant.yaml'), 'utf8');

let t: TestApp;
let operator: string;
let qa: string;

const send = (method: 'GET' | 'POST', url: string, cookie: string, payload?: unknown) =>
  t.app.inject({
    method,
    url,
    headers: { cookie },
    ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }),
  });

async function ok(method: 'GET' | 'POST', url: string, cookie: string, payload?: unknown) {
  const r = await send(method, url, cookie, payload);
  assert.ok(r.statusCode < 300, `${method} ${url}: ${r.statusCode} ${r.body}`);
  return r.json();
}

interface Lot {
  id: string;
  material: string;
  materialName: string;
  materialClass: string;
  unit: string;
}
interface QualityResult {
  characteristicId: string;
  verdict: string;
  value: string;
  lotId: string | null;
}
interface Operation {
  id: number;
  orderId: string;
  operationId: string;
  name: string;
  workUnit: string | null;
  qualityResults: QualityResult[];
}
interface Edge {
  kind: string;
  quantity: string;
  from: string;
  to: string;
  actor: string;
  person: { id: string; name: string } | null;
  equipment: string | null;
  operation: number | null;
  at: string;
}
/** The tree as the API sends it: lot ids and edges, the lots and operations once beside it. */
interface RawNode {
  lot: string;
  via?: Edge;
  repeated?: boolean;
  children: RawNode[];
}
interface Trace {
  direction: string;
  root: RawNode;
  lots: Record<string, Lot>;
  operations: Record<string, Operation>;
  lotCount: number;
  edgeCount: number;
  depthLimit: number;
  depthLimitReached: boolean;
}
/** A node with its lot, operation and the operation's results for the lot the edge went into filled in. */
interface Node {
  lot: Lot;
  via?: Omit<Edge, 'operation'> & { operation: Operation | null; qualityResults: QualityResult[] };
  repeated?: boolean;
  children: Node[];
}

function resolve(trace: Trace, n: RawNode = trace.root): Node {
  const lot = trace.lots[n.lot];
  assert.ok(lot, `lot ${n.lot} is listed in lots`);
  const op = n.via?.operation == null ? null : trace.operations[n.via.operation];
  if (n.via?.operation != null) assert.ok(op, `operation ${n.via.operation} is listed in operations`);
  return {
    lot,
    ...(n.via
      ? {
          via: {
            ...n.via,
            operation: op ?? null,
            qualityResults: (op?.qualityResults ?? []).filter(
              (q) => q.lotId === null || q.lotId === n.via!.to,
            ),
          },
        }
      : {}),
    ...(n.repeated ? { repeated: true } : {}),
    children: n.children.map((c) => resolve(trace, c)),
  };
}

const find = (n: Node, id: string): Node | undefined =>
  n.lot.id === id && !n.repeated ? n : n.children.map((c) => find(c, id)).find((x) => x !== undefined);
const ids = (n: Node): string[] => [n.lot.id, ...n.children.flatMap(ids)];

let weld1: number;
let weld2: number;
let asm1: number;
let asm2: number;

before(async () => {
  t = await createTestApp();
  const admin = await t.adminCookie();
  const imported = await t.app.inject({
    method: 'POST',
    url: '/api/plant/import',
    headers: { cookie: admin, 'content-type': 'application/yaml' },
    payload: EXAMPLE,
  });
  assert.equal(imported.statusCode, 200, imported.body);
  operator = (await t.userWithRoles('anna.berger', ['operator'])).cookie;
  qa = (await t.userWithRoles('quinn.qa', ['quality'])).cookie;
  const db = t.database.db;

  // Received material (level 3 from a car): panels, sealer, a supplier harness lot split in two.
  await ok('POST', '/api/lots', qa, {
    id: 'PANEL-L1',
    material: 'body-panel',
    quantity: 28,
    status: 'Released',
    supplierLot: 'PRESS-0815',
  });
  await ok('POST', '/api/lots', qa, {
    id: 'SEAL-L1',
    material: 'seam-sealer',
    quantity: '5',
    status: 'Released',
  });
  await ok('POST', '/api/lots', qa, {
    id: 'HARN-SUP',
    material: 'wiring-harness',
    quantity: 10,
    status: 'Released',
    supplierLot: 'LEONI-2291',
  });
  await ok('POST', '/api/lots/HARN-SUP/split', operator, { newId: 'HARN-SUP-B', quantity: 4 });

  // Two orders for cars; the second only gets a harness from the split-off part.
  await insertOrder(db, { id: 'PO-T-1' });
  await insertOrder(db, { id: 'PO-T-2' });
  weld1 = await insertOperation(db, {
    orderId: 'PO-T-1',
    operationId: '10',
    name: 'Weld body in white',
    workCenter: 'body-line-1',
    workUnit: 'weld-robot-1',
    bom: [
      { material: 'body-panel', quantity: '14' },
      { material: 'seam-sealer', quantity: '0.6' },
    ],
    personId: 'op-anna-berger',
  });
  asm1 = await insertOperation(db, {
    orderId: 'PO-T-1',
    operationId: '40',
    name: 'Install wiring harness',
    bom: [
      { material: 'wiring-harness', quantity: '1' },
      { material: 'welded-body', quantity: '1' },
    ],
  });
  weld2 = await insertOperation(db, {
    orderId: 'PO-T-2',
    operationId: '10',
    name: 'Weld body in white',
    workCenter: 'body-line-1',
    workUnit: 'weld-robot-2',
    bom: [{ material: 'body-panel', quantity: '14' }],
  });
  asm2 = await insertOperation(db, {
    orderId: 'PO-T-2',
    operationId: '40',
    name: 'Install wiring harness',
    bom: [
      { material: 'wiring-harness', quantity: '1' },
      { material: 'welded-body', quantity: '1' },
    ],
  });

  // Order 1, op 10: consume first, then produce → edges from the consumptions to WB-1.
  await ok('POST', `/api/operations/${weld1}/consumptions`, operator, { lotId: 'PANEL-L1', quantity: 14 });
  await ok('POST', `/api/operations/${weld1}/consumptions`, operator, { lotId: 'SEAL-L1', quantity: '0.6' });
  await ok('POST', `/api/operations/${weld1}/outputs`, operator, { lotId: 'WB-1', material: 'welded-body' });
  await db.query(
    `INSERT INTO quality_results (operation_pk, characteristic_id, kind, value_numeric, lsl, verdict, lot_id, actor)
     VALUES ($1, 'nugget-diameter', 'numeric', 6.1, 5, 'pass', 'WB-1', 'anna.berger')`,
    [weld1],
  );
  // A result of the same operation for a body that went nowhere yet: no trace of CAR-1 shows it.
  await db.query(
    `INSERT INTO lots (id, kind, material_id, quantity, unit_id, status) VALUES ('WB-SPARE', 'lot', 'welded-body', 1, 'pcs', 'Released')`,
  );
  await db.query(
    `INSERT INTO quality_results (operation_pk, characteristic_id, kind, value_numeric, lsl, verdict, lot_id, actor)
     VALUES ($1, 'nugget-diameter', 'numeric', 4.2, 5, 'fail', 'WB-SPARE', 'anna.berger')`,
    [weld1],
  );
  // Order 1, op 40: produce the car first, then build into it.
  await ok('POST', `/api/operations/${asm1}/outputs`, operator, { lotId: 'CAR-1' });
  await ok('POST', `/api/operations/${asm1}/consumptions`, operator, {
    lotId: 'WB-1',
    quantity: 1,
    into: 'CAR-1',
  });
  await ok('POST', `/api/operations/${asm1}/consumptions`, operator, {
    lotId: 'HARN-SUP',
    quantity: 1,
    into: 'CAR-1',
  });
  await db.query(
    `INSERT INTO quality_results (operation_pk, characteristic_id, kind, value_attribute, verdict, actor)
     VALUES ($1, 'harness-connectors-seated', 'attribute', 'pass', 'pass', 'anna.berger')`,
    [asm1],
  );
  // Order 2.
  await ok('POST', `/api/operations/${weld2}/consumptions`, operator, { lotId: 'PANEL-L1', quantity: 14 });
  await ok('POST', `/api/operations/${weld2}/outputs`, operator, { lotId: 'WB-2', material: 'welded-body' });
  await ok('POST', `/api/operations/${asm2}/outputs`, operator, { lotId: 'CAR-2' });
  await ok('POST', `/api/operations/${asm2}/consumptions`, operator, {
    lotId: 'WB-2',
    quantity: 1,
    into: 'CAR-2',
  });
  await ok('POST', `/api/operations/${asm2}/consumptions`, operator, {
    lotId: 'HARN-SUP-B',
    quantity: 1,
    into: 'CAR-2',
  });
});
after(async () => {
  await t?.close();
});

describe('backward trace', () => {
  it('returns every level down to received material, with operation, person, equipment and quality on each edge', async () => {
    const trace = await ok('GET', '/api/trace/backward/CAR-1', operator);
    assert.equal(trace.direction, 'backward');
    const root = resolve(trace as Trace);
    assert.equal(root.lot.id, 'CAR-1');
    assert.equal(root.lot.materialClass, 'finished');
    assert.deepEqual(root.children.map((c) => c.lot.id).sort(), ['HARN-SUP', 'WB-1']);

    const wb = find(root, 'WB-1')!;
    assert.equal(wb.via!.kind, 'consume');
    assert.equal(wb.via!.quantity, '1');
    assert.equal(wb.via!.operation!.orderId, 'PO-T-1');
    assert.equal(wb.via!.operation!.operationId, '40');
    assert.equal(wb.via!.operation!.name, 'Install wiring harness');
    assert.equal(wb.via!.operation!.workUnit, 'asm-station-10');
    assert.equal(wb.via!.actor, 'anna.berger');
    // No person on the operation: the consuming user's person record (examples/plant.yaml).
    assert.deepEqual(wb.via!.person, { id: 'op-anna-berger', name: 'Anna Berger' });
    assert.deepEqual(
      wb.via!.qualityResults.map((q) => `${q.characteristicId} ${q.verdict}`),
      ['harness-connectors-seated pass'],
    );
    assert.ok(!Number.isNaN(Date.parse(wb.via!.at)));

    // Level 2 and 3: what the welded body was made from.
    assert.deepEqual(wb.children.map((c) => c.lot.id).sort(), ['PANEL-L1', 'SEAL-L1']);
    const panel = find(wb, 'PANEL-L1')!;
    assert.equal(panel.via!.quantity, '14');
    assert.equal(panel.via!.operation!.operationId, '10');
    assert.equal(panel.via!.equipment, 'weld-robot-1');
    assert.deepEqual(
      panel.via!.qualityResults.map((q) => `${q.characteristicId} ${q.value}`),
      ['nugget-diameter 6.1'],
    );
    assert.equal(find(wb, 'SEAL-L1')!.via!.quantity, '0.6');
    assert.equal(trace.depthLimitReached, false);
    assert.equal(trace.edgeCount, 4);
  });

  it('states each lot and each operation once, beside a tree of ids and edges', async () => {
    const res = await send('GET', '/api/trace/backward/CAR-1', operator);
    assert.equal(res.headers['content-type'], 'application/json; charset=utf-8');
    assert.equal(Number(res.headers['content-length']), Buffer.byteLength(res.body));
    const trace = res.json<Trace>();
    assert.deepEqual(Object.keys(trace.lots).sort(), ['CAR-1', 'HARN-SUP', 'PANEL-L1', 'SEAL-L1', 'WB-1']);
    assert.equal(trace.lotCount, 5);
    assert.equal(typeof trace.root.lot, 'string');
    assert.deepEqual(Object.keys(trace.lots['PANEL-L1']!), [
      'id',
      'kind',
      'material',
      'materialName',
      'materialClass',
      'quantity',
      'unit',
      'status',
      'orderId',
      'supplierLot',
    ]);
    assert.equal(trace.lots['PANEL-L1']!.material, 'body-panel');
    const ops = Object.values(trace.operations);
    assert.deepEqual(ops.map((o) => o.id).sort(), [asm1, weld1].sort());
    const weld = trace.operations[weld1]!;
    assert.equal(weld.workUnit, 'weld-robot-1');
    // The weld's result for WB-1 is there; its result for a body not in this trace is not.
    assert.deepEqual(
      weld.qualityResults.map((q) => `${q.lotId} ${q.value} ${q.verdict}`),
      ['WB-1 6.1 pass'],
    );
    // Both edges the weld wrote name it by id.
    const wb = trace.root.children.find((c) => c.lot === 'WB-1')!;
    assert.deepEqual(
      wb.children.map((c) => c.via!.operation),
      [weld1, weld1],
    );
  });

  it('follows a split back to the supplier lot it came from', async () => {
    const trace = await ok('GET', '/api/trace/backward/CAR-2', operator);
    const root = resolve(trace as Trace);
    assert.deepEqual(ids(root).sort(), ['CAR-2', 'HARN-SUP', 'HARN-SUP-B', 'PANEL-L1', 'WB-2']);
    const sup = find(root, 'HARN-SUP')!;
    assert.equal(sup.via!.kind, 'split');
    assert.equal(sup.via!.operation, null);
    assert.equal(sup.via!.quantity, '4');
  });

  it('answers 404 for an unknown lot and needs a login', async () => {
    const r = await send('GET', '/api/trace/backward/NOPE', operator);
    assert.equal(r.statusCode, 404);
    assert.equal(r.json().code, 'LOOM_LOT_NOT_FOUND');
    const anon = await t.app.inject({ method: 'GET', url: '/api/trace/backward/CAR-1' });
    assert.equal(anon.statusCode, 401);
  });
});

describe('forward trace and recall', () => {
  it('traces a supplier lot forward through every level to the cars', async () => {
    const trace = await ok('GET', '/api/trace/forward/HARN-SUP', qa);
    const root = resolve(trace as Trace);
    assert.deepEqual(root.children.map((c) => c.lot.id).sort(), ['CAR-1', 'HARN-SUP-B']);
    const b = find(root, 'HARN-SUP-B')!;
    assert.deepEqual(
      b.children.map((c) => c.lot.id),
      ['CAR-2'],
    );
    assert.equal(b.children[0]!.via!.operation!.orderId, 'PO-T-2');

    const panels = resolve((await ok('GET', '/api/trace/forward/PANEL-L1', qa)) as Trace);
    assert.deepEqual(ids(panels).sort(), ['CAR-1', 'CAR-2', 'PANEL-L1', 'WB-1', 'WB-2']);
    assert.equal(find(panels, 'CAR-1')!.via!.from, 'WB-1');
  });

  it('recalls from a supplier lot: every finished car it reached and every order involved', async () => {
    const recall = await ok('GET', '/api/trace/recall/HARN-SUP', qa);
    assert.equal(recall.suspect.id, 'HARN-SUP');
    assert.equal(recall.suspect.supplierLot, 'LEONI-2291');
    assert.deepEqual(
      recall.finished.map((l: { id: string }) => l.id),
      ['CAR-1', 'CAR-2'],
    );
    assert.deepEqual(
      recall.orders.map((o: { id: string }) => o.id),
      ['PO-T-1', 'PO-T-2'],
    );
    const panels = await ok('GET', '/api/trace/recall/PANEL-L1', qa);
    assert.deepEqual(
      panels.finished.map((l: { id: string }) => l.id),
      ['CAR-1', 'CAR-2'],
    );
  });

  it('stops on a cycle in corrupt genealogy data and marks lots already shown', async () => {
    const db = t.database.db;
    await ok('POST', '/api/lots', qa, { id: 'LOOP-A', material: 'steel-coil', quantity: 1 });
    await ok('POST', '/api/lots', qa, { id: 'LOOP-B', material: 'steel-coil', quantity: 1 });
    await db.query(
      `INSERT INTO genealogy_edges (from_lot, to_lot, kind, quantity, actor)
       VALUES ('LOOP-A', 'LOOP-B', 'split', 1, 'test'), ('LOOP-B', 'LOOP-A', 'split', 1, 'test')`,
    );
    const trace = await ok('GET', '/api/trace/forward/LOOP-A', qa);
    const root = resolve(trace as Trace);
    assert.equal(root.children[0]!.lot.id, 'LOOP-B');
    const back = root.children[0]!.children[0]!;
    assert.equal(back.lot.id, 'LOOP-A');
    assert.equal(back.repeated, true);
    assert.deepEqual(back.children, []);
    assert.equal(trace.edgeCount, 2);
  });

  it('stops at the depth limit on a chain longer than any real bill of materials, and says so', async () => {
    const db = t.database.db;
    // DEEP-0 ← DEEP-1 ← … ← DEEP-55: 55 levels, 5 more than the limit of 50.
    await db.query(
      `INSERT INTO lots (id, kind, material_id, quantity, unit_id, status)
       SELECT 'DEEP-' || g, 'lot', 'steel-coil', 1, 'kg', 'Released' FROM generate_series(0, 55) g`,
    );
    await db.query(
      `INSERT INTO genealogy_edges (from_lot, to_lot, kind, quantity, actor)
       SELECT 'DEEP-' || (g + 1), 'DEEP-' || g, 'consume', 1, 'test' FROM generate_series(0, 54) g`,
    );
    const trace = await ok('GET', '/api/trace/backward/DEEP-0', qa);
    assert.equal(trace.edgeCount, 50);
    assert.equal(trace.lotCount, 51, 'DEEP-0 … DEEP-50: no lot beyond the limit is listed');
    assert.equal('DEEP-51' in trace.lots, false);
    assert.equal(trace.depthLimit, 50);
    assert.equal(trace.depthLimitReached, true);
    let node = resolve(trace as Trace);
    for (let level = 1; level <= 50; level++) {
      assert.equal(node.children.length, 1, `level ${level}`);
      node = node.children[0]!;
      assert.equal(node.lot.id, `DEEP-${level}`);
    }
    assert.deepEqual(node.children, [], 'nothing below the limit');
    const exact = await ok('GET', '/api/trace/backward/DEEP-5', qa);
    assert.equal(exact.edgeCount, 50, 'exactly as deep as the limit');
    assert.equal(exact.depthLimitReached, false, 'nothing lies beyond it');
    const short = await ok('GET', '/api/trace/backward/DEEP-10', qa);
    assert.equal(short.edgeCount, 45);
    assert.equal(short.depthLimitReached, false);
  });
});

/** Traces the JSON text is checked on: both directions, truncated or not, and a lot that does not exist. */
const JSON_CASES = [
  ['CAR-1', 'backward'],
  ['CAR-2', 'backward'],
  ['HARN-SUP', 'forward'],
  ['DEEP-0', 'backward'],
  ['DEEP-55', 'forward'],
  ['NOPE', 'backward'],
] as const;

describe('the trace as JSON text', () => {
  it('is exactly JSON.stringify of the trace, in both directions, truncated or not, and the API sends it', async () => {
    const use = new GenealogyTrace({ genealogy: postgresGenealogyStore(t.database.db) });
    const cases = JSON_CASES;
    for (const [lot, direction] of cases) {
      const view = await use.trace(lot, direction);
      const text = await use.traceJson(lot, direction);
      if (!view.ok || !text.ok) {
        assert.equal(view.ok, text.ok, `${lot}: both found or both not`);
        assert.equal(lot, 'NOPE');
        continue;
      }
      assert.equal(text.value, JSON.stringify(view.value), `${direction} ${lot}`);
      const res = await send('GET', `/api/trace/${direction}/${lot}`, qa);
      assert.equal(res.body, text.value, `the API's answer for ${direction} ${lot}`);
    }
  });
});

describe('the trace lists worker (ADR 0017)', () => {
  const silent = pino({ level: 'silent' });
  const cases = JSON_CASES;

  async function until(cond: () => boolean, what: string) {
    const deadline = Date.now() + 20_000;
    while (!cond()) {
      assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Counts the requests the worker answered, so a test knows the answers came from it. */
  function counting(w: TraceListsWorker) {
    const counts = { answered: 0, declined: 0 };
    const source: TraceListsSource = {
      listsJson(lotId, keys) {
        const p = w.listsJson(lotId, keys);
        if (!p) {
          counts.declined++;
          return null;
        }
        return p.then((v) => {
          if (v) counts.answered++;
          else counts.declined++;
          return v;
        });
      },
    };
    return { source, counts };
  }

  it('answers from its own thread exactly what the main thread would, and stops on close', async () => {
    const genealogy = postgresGenealogyStore(t.database.db);
    const w = traceListsWorker({ connection: t.database.db.connection(), logger: silent });
    try {
      const { source, counts } = counting(w);
      const here = new GenealogyTrace({ genealogy });
      const there = new GenealogyTrace({ genealogy, lists: source });
      assert.equal(w.ready, false, 'the thread starts at the first request');
      const first = await there.traceJson('CAR-1', 'backward');
      assert.equal(counts.declined, 1, 'the first request is answered on the main thread');
      assert.deepEqual(first, await here.traceJson('CAR-1', 'backward'));
      await until(() => w.ready, 'the worker thread');
      for (const [lot, direction] of cases) {
        const view = await here.trace(lot, direction);
        const text = await there.traceJson(lot, direction);
        if (!view.ok || !text.ok) {
          assert.equal(lot, 'NOPE');
          assert.equal(text.ok, false);
          assert.equal(!text.ok && text.error.code, 'LOOM_LOT_NOT_FOUND');
          continue;
        }
        assert.equal(text.value, JSON.stringify(view.value), `${direction} ${lot}`);
      }
      assert.equal(counts.answered, cases.length, 'every later request was answered by the thread');
      // A database error reaches the caller as the main thread's own lookup would have raised it.
      const failed = w.listsJson('CAR-1', { lots: ['CAR-1'], operations: [Number.NaN] });
      await assert.rejects(failed!, (e: Error & { code?: string }) => e.code === '22P02');
    } finally {
      await w.close();
    }
    assert.equal(w.ready, false);
    assert.equal(w.listsJson('CAR-1', reachedKeys('CAR-1', [])), null, 'closed: requests are declined');
  });

  it('answers on the main thread when its thread goes away, and starts the thread again', async () => {
    const genealogy = postgresGenealogyStore(t.database.db);
    const w = traceListsWorker({
      connection: t.database.db.connection(),
      logger: silent,
      restartDelayMs: 0,
      threadEntry: new URL('../support/exiting-trace-lists-thread.ts', import.meta.url),
    });
    try {
      const { source, counts } = counting(w);
      const here = new GenealogyTrace({ genealogy });
      const there = new GenealogyTrace({ genealogy, lists: source });
      assert.equal(await there.traceJson('CAR-1', 'backward').then((r) => r.ok), true);
      await until(() => w.ready, 'the worker thread');
      // The thread exits at this request: its caller gets null and serves the trace itself.
      const text = await there.traceJson('CAR-2', 'backward');
      assert.deepEqual(text, await here.traceJson('CAR-2', 'backward'));
      assert.equal(counts.answered, 0);
      assert.equal(counts.declined, 2);
      await until(() => !w.ready, 'the thread to be gone');
      assert.equal(w.listsJson('CAR-1', reachedKeys('CAR-1', [])), null, 'the request that starts it again');
      await until(() => w.ready, 'the thread started again');
    } finally {
      await w.close();
    }
  });
});

describe('a trace lists thread that cannot start', () => {
  it('is started again later each time, twice as long after each failure, and never blocks a trace', async () => {
    const lines: string[] = [];
    const logger = pino({ level: 'warn' }, { write: (l: string) => void lines.push(l) });
    const w = traceListsWorker({
      connection: t.database.db.connection(),
      logger,
      restartDelayMs: 40,
      threadEntry: new URL('../support/failing-trace-lists-thread.ts', import.meta.url),
    });
    const genealogy = postgresGenealogyStore(t.database.db);
    const there = new GenealogyTrace({ genealogy, lists: w });
    const here = new GenealogyTrace({ genealogy });
    try {
      const delays: number[] = [];
      const deadline = Date.now() + 20_000;
      while (delays.length < 3) {
        assert.ok(Date.now() < deadline, `timed out; log: ${lines.join('')}`);
        assert.deepEqual(
          await there.traceJson('CAR-1', 'backward'),
          await here.traceJson('CAR-1', 'backward'),
        );
        delays.splice(
          0,
          delays.length,
          ...lines.flatMap((l) => {
            const m = /starting it again after (\d+) ms/.exec(l);
            return m ? [Number(m[1])] : [];
          }),
        );
        await new Promise((r) => setTimeout(r, 10));
      }
      assert.deepEqual(delays.slice(0, 3), [80, 160, 320]);
      assert.equal(w.ready, false);
    } finally {
      await w.close();
    }
  });
});

describe('lot ids in a text[] literal', () => {
  it('round-trips quotes, backslashes, commas, braces and the word NULL through PostgreSQL', async () => {
    const ids = ['plain', 'a"b', 'c\\d', 'a,b', '{x}', ' sp ', 'NULL', ''];
    const r = await t.database.db.query<{ a: string[] }>('SELECT $1::text[] AS a', [textArrayLiteral(ids)]);
    assert.deepEqual(r.rows[0]!.a, ids);
  });
});

describe('loom trace', () => {
  const loom = (args: string[]) => runLoom(args, { LOOM_DATABASE_URL: t.database.url });

  it('prints the backward tree indented by level', async () => {
    const r = await loom(['trace', 'CAR-1']);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.split('\n');
    assert.match(lines[0]!, /^CAR-1 {2}compact-sedan/);
    const panel = lines.find((l) => l.includes('PANEL-L1  body-panel'))!;
    const wb = lines.find((l) => l.includes('WB-1  welded-body'))!;
    assert.ok(panel.search(/\S/) > wb.search(/\S/), r.stdout);
    assert.match(
      r.stdout,
      /← consume 1 at order PO-T-1 op 40 'Install wiring harness' on asm-station-10 by Anna Berger/,
    );
    assert.match(r.stdout, /backward trace: 5 lots, 4 edges/);
  });

  it('prints the forward tree with --forward, and fails for an unknown lot', async () => {
    const r = await loom(['trace', 'HARN-SUP', '--forward']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /→ split 4/);
    assert.match(r.stdout, /CAR-2 {2}compact-sedan/);
    const missing = await loom(['trace', 'NOPE']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /'NOPE' does not exist/);
  });
});

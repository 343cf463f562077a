import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { dispatchList, type Dispatchable } from './dispatch.ts';
import { transitionOperation } from './operation-state.ts';
import { transitionOrder } from './order-state.ts';

describe('order states', () => {
  it('goes Released › InProgress › Completed › Closed', () => {
    const a = transitionOrder('Released', 'start');
    assert.ok(a.ok && a.value === 'InProgress');
    const b = transitionOrder('InProgress', 'complete');
    assert.ok(b.ok && b.value === 'Completed');
    const c = transitionOrder('Completed', 'close');
    assert.ok(c.ok && c.value === 'Closed');
  });
  it('refuses to complete a Released order and names the current state', () => {
    const r = transitionOrder('Released', 'complete');
    assert.ok(!r.ok);
    assert.equal(r.error.code, 'LOOM_ORDER_ILLEGAL_TRANSITION');
    assert.match(r.error.message, /it is Released/);
  });
  it('releases a held order back to the state it was held in', () => {
    const r = transitionOrder('OnHold', 'release', 'InProgress');
    assert.ok(r.ok && r.value === 'InProgress');
  });
  it('cannot cancel an order in progress', () => {
    assert.equal(transitionOrder('InProgress', 'cancel').ok, false);
  });
});

describe('operation states', () => {
  it('runs Pending › Ready › Running ⇄ Paused › Completed', () => {
    const steps: [
      Parameters<typeof transitionOperation>[0],
      Parameters<typeof transitionOperation>[1],
      string,
    ][] = [
      ['Pending', 'ready', 'Ready'],
      ['Ready', 'start', 'Running'],
      ['Running', 'pause', 'Paused'],
      ['Paused', 'resume', 'Running'],
      ['Running', 'complete', 'Completed'],
    ];
    for (const [from, ev, to] of steps) {
      const r = transitionOperation(from, ev);
      assert.ok(r.ok && r.value === to, `${from} --${ev}--> ${to}`);
    }
  });
  it('refuses to complete an operation that is not Running', () => {
    const r = transitionOperation('Paused', 'complete');
    assert.ok(!r.ok);
    assert.equal(r.error.code, 'LOOM_OPERATION_ILLEGAL_TRANSITION');
    assert.match(r.error.message, /it is Paused/);
  });
  it('releases a held running operation as Paused', () => {
    const r = transitionOperation('OnHold', 'release', 'Running');
    assert.ok(r.ok && r.value === 'Paused');
  });
});

describe('dispatch list', () => {
  const op = (o: Partial<Dispatchable> & { operationKey: string }): Dispatchable => ({
    orderId: 'o',
    position: 1,
    state: 'Ready',
    priority: 5,
    dueAt: null,
    releasedAt: '2026-01-01T00:00:00Z',
    predecessorsCompleted: true,
    ...o,
  });
  it('orders by priority, then due date (none last), then release time', () => {
    const list = dispatchList([
      op({ operationKey: 'late-release', releasedAt: '2026-01-02T00:00:00Z' }),
      op({ operationKey: 'urgent', priority: 1 }),
      op({ operationKey: 'due-soon', dueAt: '2026-01-05T00:00:00Z' }),
      op({ operationKey: 'early-release' }),
    ]);
    assert.deepEqual(
      list.map((o) => o.operationKey),
      ['urgent', 'due-soon', 'early-release', 'late-release'],
    );
  });
  it('leaves out operations whose predecessors are not complete, and finished ones', () => {
    const list = dispatchList([
      op({ operationKey: 'blocked', predecessorsCompleted: false }),
      op({ operationKey: 'done', state: 'Completed' }),
      op({ operationKey: 'pending', state: 'Pending' }),
      op({ operationKey: 'ok' }),
    ]);
    assert.deepEqual(
      list.map((o) => o.operationKey),
      ['ok'],
    );
  });
});

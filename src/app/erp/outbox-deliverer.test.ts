import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fail, ok } from '../../domain/shared/result.ts';
import type { Tx, UnitOfWork } from '../ports.ts';
import { OutboxDeliverer } from './outbox-deliverer.ts';
import type {
  AttemptRecord,
  EndpointAnswer,
  ErpEndpoint,
  OutboundEncoder,
  OutboxMessage,
  OutboxRelayStore,
} from './outbox-ports.ts';

/** The outbox in memory with the claim rules of the PostgreSQL store, on a clock the test moves. */
class FakeOutbox implements OutboxRelayStore {
  now = 0;
  rows: ({ -readonly [K in keyof OutboxMessage]: OutboxMessage[K] } & {
    status: 'pending' | 'delivered' | 'dead';
    dueAt: number;
  })[] = [];
  attempts: { id: number; record: AttemptRecord }[] = [];
  #next = 1;

  add(aggregateId: string, eventType = 'OperationCompleted'): number {
    const id = this.#next++;
    this.rows.push({
      id,
      messageId: `msg-${id}`,
      aggregateType: 'production-order',
      aggregateId,
      eventType,
      payload: { n: id },
      createdAt: new Date(0),
      attempts: 0,
      status: 'pending',
      dueAt: 0,
    });
    return id;
  }
  status(id: number) {
    return this.rows.find((r) => r.id === id)!;
  }
  async claimDue(_tx: Tx, limit: number): Promise<OutboxMessage[]> {
    return this.rows
      .filter(
        (e) =>
          e.status === 'pending' &&
          e.dueAt <= this.now &&
          !this.rows.some((p) => p.aggregateId === e.aggregateId && p.id < e.id && p.status !== 'delivered'),
      )
      .slice(0, limit)
      .map((r) => ({ ...r }));
  }
  async recordAttempt(_tx: Tx, m: OutboxMessage, a: AttemptRecord): Promise<void> {
    const row = this.status(m.id);
    row.attempts = m.attempts + 1;
    if (a.outcome === 'delivered') row.status = 'delivered';
    if (a.outcome === 'dead') row.status = 'dead';
    if (a.outcome === 'failed') row.dueAt = this.now + (a.retryInMs ?? 0);
    this.attempts.push({ id: m.id, record: a });
  }
}

/** Rolls back like a transaction: attempts recorded inside a failed run are discarded. */
function fakeUow(outbox: FakeOutbox): UnitOfWork {
  return {
    async run(fn) {
      const snapshot = structuredClone({ rows: outbox.rows, attempts: outbox.attempts });
      try {
        return await fn({} as Tx);
      } catch (e) {
        outbox.rows = snapshot.rows;
        outbox.attempts = snapshot.attempts;
        throw e;
      }
    },
  };
}

const json: OutboundEncoder = {
  format: 'json',
  encode: (m) => ok({ contentType: 'application/json', body: JSON.stringify({ id: m.messageId }) }),
};

function endpoint(answer: (m: OutboxMessage) => EndpointAnswer | Promise<EndpointAnswer>) {
  const sent: OutboxMessage[] = [];
  const e: ErpEndpoint = {
    async send(m) {
      sent.push(m);
      return answer(m);
    },
  };
  return { e, sent };
}

const policy = { maxAttempts: 4, retryBaseMs: 1000, retryMaxMs: 60_000, batchSize: 8 };

describe('OutboxDeliverer', () => {
  it('marks a 2xx delivered and sends the same message id the event was stored with', async () => {
    const outbox = new FakeOutbox();
    const id = outbox.add('PO-1');
    const { e, sent } = endpoint(() => ({ kind: 'accepted', status: 202 }));
    const d = new OutboxDeliverer(
      { uow: fakeUow(outbox), store: outbox, encoder: json, endpoint: e },
      policy,
    );
    assert.deepEqual(await d.drain(), { claimed: 1, delivered: 1, failed: 0, dead: 0 });
    assert.equal(outbox.status(id).status, 'delivered');
    assert.equal(sent[0]!.messageId, `msg-${id}`);
  });

  it('schedules a retry after a full-jitter backoff drawn from the injected randomness', async () => {
    const outbox = new FakeOutbox();
    const id = outbox.add('PO-1');
    const { e } = endpoint(() => ({ kind: 'refused', status: 503, error: 'ERP answered 503' }));
    const d = new OutboxDeliverer(
      { uow: fakeUow(outbox), store: outbox, encoder: json, endpoint: e, random: () => 0.5 },
      policy,
    );
    await d.drain();
    assert.deepEqual(
      outbox.attempts.map((a) => [a.record.outcome, a.record.retryInMs, a.record.httpStatus]),
      [['failed', 500, 503]],
    );
    outbox.now = 499;
    assert.equal((await d.drain()).claimed, 0, 'not due before its backoff has passed');
    outbox.now = 500;
    await d.drain();
    assert.equal(outbox.attempts[1]!.record.retryInMs, 1000, 'the ceiling doubled');
    assert.equal(outbox.status(id).attempts, 2);
  });

  it('dead-letters an event after maxAttempts and lets the other orders through', async () => {
    const outbox = new FakeOutbox();
    const poison = outbox.add('PO-BAD');
    const behind = outbox.add('PO-BAD');
    const other = [outbox.add('PO-2'), outbox.add('PO-3'), outbox.add('PO-2')];
    const { e, sent } = endpoint((m) =>
      m.aggregateId === 'PO-BAD'
        ? { kind: 'refused', status: 400, error: 'ERP answered 400' }
        : { kind: 'accepted', status: 200 },
    );
    const d = new OutboxDeliverer(
      { uow: fakeUow(outbox), store: outbox, encoder: json, endpoint: e, random: () => 0 },
      policy,
    );
    await d.drain();
    assert.equal(outbox.status(poison).status, 'dead');
    assert.equal(outbox.status(poison).attempts, 4);
    assert.match(outbox.attempts.at(-1)!.record.error!, /attempt 4 of 4: dead-lettered/);
    assert.equal(outbox.status(behind).status, 'pending', 'later events of the order wait behind it');
    assert.equal(outbox.status(behind).attempts, 0);
    for (const id of other) assert.equal(outbox.status(id).status, 'delivered');
    assert.ok(!sent.some((m) => m.id === behind));
  });

  it('never sends two events of one order in the same round', async () => {
    const outbox = new FakeOutbox();
    for (let i = 0; i < 5; i++) outbox.add('PO-1');
    outbox.add('PO-2');
    const { e } = endpoint(() => ({ kind: 'accepted', status: 200 }));
    const d = new OutboxDeliverer(
      { uow: fakeUow(outbox), store: outbox, encoder: json, endpoint: e },
      policy,
    );
    const first = await d.round(new AbortController().signal);
    assert.equal(first.claimed, 2);
    const rest = await d.drain();
    assert.equal(rest.delivered, 4);
  });

  it('dead-letters at once an event the encoder cannot express, without a request', async () => {
    const outbox = new FakeOutbox();
    const id = outbox.add('PO-1');
    const { e, sent } = endpoint(() => ({ kind: 'accepted', status: 200 }));
    const broken: OutboundEncoder = { format: 'b2mml', encode: () => fail('X', 'schema-invalid: Quantity') };
    const d = new OutboxDeliverer(
      { uow: fakeUow(outbox), store: outbox, encoder: broken, endpoint: e },
      policy,
    );
    await d.drain();
    assert.equal(outbox.status(id).status, 'dead');
    assert.match(outbox.attempts[0]!.record.error!, /cannot encode as b2mml: schema-invalid/);
    assert.equal(sent.length, 0);
  });

  it('settles without a request an event the format has no message for', async () => {
    const outbox = new FakeOutbox();
    const id = outbox.add('PO-1', 'OperationStarted');
    const { e, sent } = endpoint(() => ({ kind: 'accepted', status: 200 }));
    const skipping: OutboundEncoder = { format: 'b2mml', encode: () => ok(null) };
    const d = new OutboxDeliverer(
      { uow: fakeUow(outbox), store: outbox, encoder: skipping, endpoint: e },
      policy,
    );
    await d.drain();
    assert.equal(outbox.status(id).status, 'delivered');
    assert.equal(sent.length, 0);
  });

  it('writes actuals to the outbound folder before sending, and retries when the folder fails', async () => {
    const outbox = new FakeOutbox();
    const actual = outbox.add('PO-1', 'OperationCompleted');
    const other = outbox.add('PO-2', 'OrderReleased');
    const written: string[] = [];
    let broken = true;
    const folder = {
      accepts: (t: string) => t === 'OperationCompleted',
      async write(m: OutboxMessage) {
        if (broken) throw new Error('ENOSPC: no space left on device');
        written.push(m.messageId);
      },
    };
    const d = new OutboxDeliverer(
      { uow: fakeUow(outbox), store: outbox, encoder: json, folder, random: () => 0.5 },
      policy,
    );
    await d.drain();
    assert.equal(outbox.status(actual).status, 'pending');
    assert.match(outbox.attempts.find((a) => a.id === actual)!.record.error!, /outbound folder: ENOSPC/);
    assert.equal(outbox.status(other).status, 'delivered');
    broken = false;
    outbox.now = 500;
    await d.drain();
    assert.deepEqual(written, [`msg-${actual}`]);
    assert.equal(outbox.status(actual).status, 'delivered');
  });

  it('on stop, aborts the in-flight batch and records nothing, so it is sent again later', async () => {
    const outbox = new FakeOutbox();
    const id = outbox.add('PO-1');
    let started!: () => void;
    const inFlight = new Promise<void>((r) => (started = r));
    const e: ErpEndpoint = {
      send: (_m, _enc, signal) =>
        new Promise((resolve) => {
          started();
          signal.addEventListener('abort', () => resolve({ kind: 'unreachable', error: 'aborted' }));
        }),
    };
    const d = new OutboxDeliverer(
      { uow: fakeUow(outbox), store: outbox, encoder: json, endpoint: e },
      policy,
    );
    d.start();
    await inFlight;
    assert.equal(d.running, true);
    await d.stop();
    assert.equal(d.running, false);
    assert.equal(outbox.status(id).status, 'pending');
    assert.equal(outbox.status(id).attempts, 0);
    assert.equal(outbox.attempts.length, 0);
  });
});

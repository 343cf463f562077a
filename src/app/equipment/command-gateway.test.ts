import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { systemClock } from '../../domain/shared/clock.ts';
import { ok } from '../../domain/shared/result.ts';
import type { Signal } from '../../domain/signal/signal.ts';
import type { Principal } from '../auth/auth-service.ts';
import type { AuditEntryInput, AuditTrail, Tx } from '../ports.ts';
import { CommandGateway } from './command-gateway.ts';
import type {
  CommandRecord,
  CommandStore,
  ConnectorWrite,
  EquipmentConnector,
  SignalWrite,
} from './command-ports.ts';

const ENGINEER: Principal = {
  userId: 7,
  username: 'eva',
  roles: ['engineer'],
  via: 'session',
  mustChangePassword: false,
};

const signal = (id: string, extra: Partial<Signal> = {}): Signal => ({
  id,
  equipment: 'm1',
  dataType: 'number',
  writable: true,
  source: { sparkplug: { group: 'g', edgeNode: 'e', device: 'm1', metric: id } },
  ...extra,
});
const SIGNALS = [
  signal('a'),
  signal('b'),
  signal('c'),
  signal('state', { dataType: 'string', writable: false, packml: 'state' }),
];

function fakeStore(): CommandStore & { rows: Map<string, CommandRecord> } {
  const rows = new Map<string, CommandRecord>();
  return {
    rows,
    equipment: async (id) => (id === 'm1' ? { id, name: 'Machine 1' } : null),
    signalsOf: async () => SIGNALS,
    operation: async () => null,
    byIdempotencyKey: async () => null,
    async insert(_tx, c) {
      const record: CommandRecord = {
        ...c,
        id: `cmd-${rows.size + 1}`,
        no: rows.size + 1,
        finishedAt: null,
        outcome: 'requested',
        state: null,
        results: [],
        error: null,
      };
      rows.set(record.id, record);
      return record;
    },
    async finish(_tx, id, f) {
      const done = { ...rows.get(id)!, ...f };
      rows.set(id, done);
      return done;
    },
    get: async (id) => rows.get(id) ?? null,
    list: async () => [...rows.values()],
  };
}

/** A connector whose writes answer as scripted, one answer per value, in order. */
function scripted(answers: (ConnectorWrite | 'throw')[]): EquipmentConnector & { sent: string[] } {
  const sent: string[] = [];
  return {
    sent,
    check: () => null,
    read: async (s) => ({
      ok: true,
      value: { value: s.packml === 'state' ? 'Idle' : 1, quality: 'good', at: null, via: 'device' },
    }),
    async write(writes: readonly SignalWrite[]) {
      const out: ConnectorWrite[] = [];
      for (const w of writes) {
        const a = answers.shift();
        if (a === 'throw') throw new Error('socket exploded');
        sent.push(w.signal.id);
        out.push(a!);
        if (!a!.ok) break;
      }
      return out;
    },
  };
}

function gateway(connector: EquipmentConnector) {
  const store = fakeStore();
  const audit: AuditEntryInput[] = [];
  const trail: Pick<AuditTrail, 'append'> = {
    append: async (_tx, e) => {
      audit.push(e);
    },
  };
  const g = new CommandGateway({
    uow: { run: (fn) => fn({} as Tx) },
    store,
    audit: trail as AuditTrail,
    clock: systemClock,
    connectors: { for: () => connector },
    sign: async (p, input) =>
      ok({
        signerId: p.userId,
        signerName: p.username,
        meaning: input.meaning,
        signedAt: '',
        recordHash: 'h',
      }),
    log: { error: () => undefined },
  });
  return { g, store, audit };
}

const RECIPE = {
  kind: 'recipe',
  recipe: 'R1',
  reason: 'new batch',
  signature: { password: 'pw', meaning: 'approved' },
  parameters: [
    { signal: 'a', value: 10 },
    { signal: 'b', value: 20 },
    { signal: 'c', value: 30 },
  ],
};
const ctx = { requestId: 'req-1', idempotency: null };

describe('command gateway (fakes)', () => {
  it('shows a partial recipe download: what was written, what failed, what was not sent', async () => {
    const connector = scripted([
      { ok: true, readBack: 10, via: 'device' },
      {
        ok: false,
        error: {
          code: 'LOOM_MODBUS_EXCEPTION',
          message: 'exception 2 (illegal data address)',
          kind: 'failed',
        },
      },
      { ok: true, readBack: 30, via: 'device' },
    ]);
    const { g, store, audit } = gateway(connector);
    const r = await g.send(ENGINEER, 'm1', RECIPE, ctx);
    assert.ok(!r.ok);
    assert.equal(r.error.code, 'LOOM_COMMAND_WRITE_FAILED');
    assert.match(
      r.error.message,
      /Writing 'b' of m1 failed: exception 2 .* Already written: a\. Not sent: c\./,
    );
    assert.deepEqual(connector.sent, ['a', 'b']);
    const [record] = store.rows.values();
    assert.equal(record?.outcome, 'failed');
    assert.deepEqual(
      record?.results.map((x) => x.status),
      ['confirmed', 'failed', 'not-sent'],
    );
    assert.deepEqual(r.error.details?.written, ['a']);
    assert.deepEqual(
      audit.map((e) => e.action),
      ['equipment-command.requested', 'equipment-command.failed'],
    );
    assert.equal(audit[0]?.signature?.meaning, 'approved');
  });

  it('records a failed command, not a silent requested one, when a connector throws', async () => {
    const { g, store } = gateway(scripted(['throw']));
    const r = await g.send(ENGINEER, 'm1', RECIPE, ctx);
    assert.ok(!r.ok);
    assert.equal([...store.rows.values()][0]?.outcome, 'failed');
    assert.match(r.error.message, /a value may have been written/);
  });

  it('calls a write without an answer not confirmed, and a clamped value a variance', async () => {
    const timeout = gateway(
      scripted([
        {
          ok: false,
          error: { code: 'LOOM_MODBUS_TIMEOUT', message: 'no answer in 2000 ms', kind: 'unconfirmed' },
        },
      ]),
    );
    const t = await timeout.g.send(
      ENGINEER,
      'm1',
      { kind: 'setpoint', signal: 'a', value: 5, reason: 'r' },
      ctx,
    );
    assert.ok(!t.ok && t.error.code === 'LOOM_COMMAND_NOT_CONFIRMED');
    const clamp = gateway(scripted([{ ok: true, readBack: 4, via: 'device' }]));
    const c = await clamp.g.send(
      ENGINEER,
      'm1',
      { kind: 'setpoint', signal: 'a', value: 5, reason: 'r' },
      ctx,
    );
    assert.ok(c.ok);
    assert.equal(c.command.outcome, 'variance');
    assert.deepEqual(
      [c.command.results[0]?.requested, c.command.results[0]?.readBack, c.command.results[0]?.difference],
      [5, 4, -1],
    );
  });
});

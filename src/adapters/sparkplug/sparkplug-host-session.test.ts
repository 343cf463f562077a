import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { TagSample } from '../../domain/signal/sample.ts';
import { DataType, type RawMetricValue, type SparkplugMetric } from './sparkplug-payload-codec.ts';
import { SparkplugHostSession, type EdgeMessage, type HostAction } from './sparkplug-host-session.ts';
import type { EdgeMessageType } from './sparkplug-topic.ts';

const G = 'plant1';
const E = 'press-edge';

const metric = (p: Partial<SparkplugMetric>): SparkplugMetric => ({
  name: null,
  alias: null,
  timestamp: null,
  datatype: null,
  isHistorical: false,
  isTransient: false,
  isNull: false,
  value: { field: 'none' },
  quality: null,
  ...p,
});
const int = (value: number): RawMetricValue => ({ field: 'int', value });
const dbl = (value: number): RawMetricValue => ({ field: 'double', value });
const long = (value: bigint): RawMetricValue => ({ field: 'long', value });

const bdSeq = (n: number) => metric({ name: 'bdSeq', datatype: DataType.Int64, value: long(BigInt(n)) });
const nodeBirthMetrics = [
  bdSeq(0),
  metric({
    name: 'Node Control/Rebirth',
    datatype: DataType.Boolean,
    value: { field: 'boolean', value: false },
  }),
  metric({ name: 'Uptime', alias: 1, datatype: DataType.Int32, value: int(5) }),
];
const deviceBirthMetrics = [
  metric({ name: 'Temp', alias: 10, datatype: DataType.Double, value: dbl(20) }),
  metric({ name: 'Count', alias: 11, datatype: DataType.Int32, value: int(0) }),
];

function msg(
  type: EdgeMessageType,
  payload: { seq?: number | null; timestamp?: number | null; metrics: SparkplugMetric[] },
  device: string | null = type.startsWith('D') ? 'press-1' : null,
): EdgeMessage {
  return {
    type,
    group: G,
    edgeNode: E,
    device,
    payload: {
      ok: true,
      payload: { seq: payload.seq ?? null, timestamp: payload.timestamp ?? 1000, metrics: payload.metrics },
    },
  };
}

const of = <T extends HostAction['type']>(actions: readonly HostAction[], type: T) =>
  actions.filter((a): a is Extract<HostAction, { type: T }> => a.type === type);
const samplesOf = (actions: readonly HostAction[]): TagSample[] =>
  of(actions, 'samples').flatMap((a) => a.samples);
const problems = (actions: readonly HostAction[]) => of(actions, 'problem').map((p) => p.counter);
const tag = (device: string | null, name: string) => `spb:${G}/${E}/${device ?? ''}/${name}`;

/** A session with node + device born: NBIRTH seq 0, DBIRTH seq 1; the next seq is 2. */
function bornSession(options = { reorderTimeoutMs: 200, rebirthIntervalMs: 5000 }) {
  const s = new SparkplugHostSession(options);
  s.receive(msg('NBIRTH', { seq: 0, metrics: nodeBirthMetrics }), 100);
  s.receive(msg('DBIRTH', { seq: 1, metrics: deviceBirthMetrics }), 100);
  return s;
}
const ddata = (seq: number, alias = 10, v = 21) =>
  msg('DDATA', { seq, metrics: [metric({ alias, value: dbl(v), timestamp: 2000 + seq })] });

describe('SparkplugHostSession: births and data', () => {
  it('turns an NBIRTH into samples (not bdSeq) and marks the node online', () => {
    const s = new SparkplugHostSession({ reorderTimeoutMs: 200, rebirthIntervalMs: 5000 });
    const a = s.receive(msg('NBIRTH', { seq: 0, timestamp: 900, metrics: nodeBirthMetrics }), 1000);
    assert.deepEqual(
      samplesOf(a).map((x) => [x.tag, x.value, x.sourceTs, x.serverTs]),
      [
        [tag(null, 'Node Control/Rebirth'), false, 900, 1000],
        [tag(null, 'Uptime'), 5, 900, 1000],
      ],
    );
    const states = of(a, 'state');
    assert.deepEqual(states.at(-1), {
      type: 'state',
      kind: 'edge-node',
      id: `${G}/${E}`,
      state: 'online',
      detail: 'NBIRTH bdSeq 0',
    });
    assert.deepEqual(s.summary(), { online: 1, stale: 0, offline: 0 });
  });

  it('H15: resolves DDATA aliases from the DBIRTH; sourceTs is the metric timestamp', () => {
    const s = bornSession();
    const a = s.receive(ddata(2), 3000);
    assert.deepEqual(samplesOf(a), [
      {
        tag: tag('press-1', 'Temp'),
        value: 21,
        quality: 'good',
        sourceTs: 2002,
        serverTs: 3000,
        historical: false,
      },
    ]);
    assert.deepEqual(problems(a), []);
  });

  it('H16/H17: is_historical, is_null, is_transient and the Quality property reach the sample', () => {
    const s = bornSession();
    const a = s.receive(
      msg('DDATA', {
        seq: 2,
        metrics: [
          metric({ alias: 10, value: dbl(19), isHistorical: true, timestamp: 50 }),
          metric({ alias: 11, isNull: true }),
          metric({ alias: 10, value: dbl(22), isTransient: true, quality: 0 }),
          metric({ alias: 11, value: int(3), quality: 64 }),
        ],
      }),
      3000,
    );
    const got = samplesOf(a).map((x) => ({
      v: x.value,
      h: x.historical,
      t: x.transient ?? false,
      q: x.quality,
    }));
    assert.deepEqual(got, [
      { v: 19, h: true, t: false, q: 'good' },
      { v: null, h: false, t: false, q: 'good' },
      { v: 22, h: false, t: true, q: 'bad' },
      { v: 3, h: false, t: false, q: 'uncertain' },
    ]);
  });
});

describe('SparkplugHostSession: seq and reordering', () => {
  it('H8: seq runs across DBIRTH/NDATA/DDATA/DDEATH and wraps 255 → 0', () => {
    const s = new SparkplugHostSession({ reorderTimeoutMs: 200, rebirthIntervalMs: 5000 });
    s.receive(msg('NBIRTH', { seq: 253, metrics: nodeBirthMetrics }), 1);
    const all = [
      ...s.receive(msg('DBIRTH', { seq: 254, metrics: deviceBirthMetrics }), 2),
      ...s.receive(ddata(255), 3),
      ...s.receive(msg('NDATA', { seq: 0, metrics: [metric({ alias: 1, value: int(6) })] }), 4),
      ...s.receive(msg('DDEATH', { seq: 1, metrics: [] }), 5),
      ...s.receive(msg('DBIRTH', { seq: 2, metrics: deviceBirthMetrics }), 6),
      ...s.receive(ddata(3), 7),
    ];
    assert.deepEqual(problems(all), []);
    assert.deepEqual(of(all, 'rebirth'), []);
    assert.equal(s.nextDeadline(), null);
  });

  it('H9: holds a message that came early and applies it in order when the gap fills', () => {
    const s = bornSession();
    const early = s.receive(ddata(3, 10, 30), 1000);
    assert.deepEqual(samplesOf(early), []);
    assert.deepEqual(problems(early), ['outOfOrder']);
    assert.equal(s.nextDeadline(), 1200);
    const filled = s.receive(ddata(2, 10, 20), 1100);
    assert.deepEqual(
      samplesOf(filled).map((x) => x.value),
      [20, 30],
    );
    assert.equal(s.nextDeadline(), null);
    assert.deepEqual(of(s.tick(5000), 'rebirth'), []);
  });

  it('H9/H11: a gap not filled in time applies what waited, requests one rebirth, and rate-limits the next', () => {
    const s = bornSession();
    s.receive(ddata(3, 10, 30), 1000);
    assert.deepEqual(s.tick(1199), []);
    const expired = s.tick(1200);
    assert.deepEqual(
      samplesOf(expired).map((x) => x.value),
      [30],
    );
    assert.equal(of(expired, 'rebirth').length, 1);
    assert.match(of(expired, 'rebirth')[0]!.reason, /seq 2 did not arrive within 200 ms/);
    assert.equal(of(expired, 'state').at(-1)?.state, 'stale');
    // Another gap within the interval: no second NCMD.
    s.receive(ddata(9), 2000);
    assert.deepEqual(of(s.tick(2200), 'rebirth'), []);
    // After the interval, a node still talking without rebirth is asked again.
    const later = s.receive(ddata(10), 6300);
    assert.equal(of(later, 'rebirth').length, 1);
    // The NBIRTH ends the wait.
    const reborn = s.receive(msg('NBIRTH', { seq: 0, metrics: nodeBirthMetrics }), 6400);
    assert.deepEqual(
      of(reborn, 'state').map((x) => [x.kind, x.state]),
      [
        ['edge-node', 'online'],
        ['device', 'stale'],
      ],
    );
    assert.deepEqual(s.summary(), { online: 1, stale: 0, offline: 0 });
  });
});

describe('SparkplugHostSession: rebirth triggers (H11)', () => {
  it('data before NBIRTH requests a rebirth and leaves the node stale', () => {
    const s = new SparkplugHostSession({ reorderTimeoutMs: 200, rebirthIntervalMs: 5000 });
    const a = s.receive(msg('NDATA', { seq: 5, metrics: [metric({ alias: 1, value: int(1) })] }), 10);
    assert.deepEqual(problems(a), ['beforeBirth']);
    assert.equal(of(a, 'rebirth').length, 1);
    assert.equal(of(a, 'state')[0]?.state, 'stale');
    assert.deepEqual(s.summary(), { online: 0, stale: 1, offline: 0 });
  });

  it('an unknown alias is counted and rebirths, the known metrics of the message still flow', () => {
    const s = bornSession();
    const a = s.receive(
      msg('DDATA', {
        seq: 2,
        metrics: [metric({ alias: 99, value: dbl(1) }), metric({ alias: 10, value: dbl(2) })],
      }),
      10,
    );
    assert.deepEqual(problems(a), ['unknownAlias']);
    assert.deepEqual(
      samplesOf(a).map((x) => x.value),
      [2],
    );
    assert.equal(of(a, 'rebirth').length, 1);
  });

  it('H15: an alias of another device does not resolve in this device', () => {
    const s = bornSession();
    s.receive(
      msg(
        'DBIRTH',
        {
          seq: 2,
          metrics: [metric({ name: 'Speed', alias: 20, datatype: DataType.Double, value: dbl(1) })],
        },
        'press-2',
      ),
      10,
    );
    const a = s.receive(
      msg('DDATA', { seq: 3, metrics: [metric({ alias: 20, value: dbl(2) })] }, 'press-1'),
      11,
    );
    assert.deepEqual(problems(a), ['unknownAlias']);
  });

  it('H15: a DBIRTH reusing an alias of the node is refused with a rebirth', () => {
    const s = bornSession();
    const a = s.receive(
      msg(
        'DBIRTH',
        { seq: 2, metrics: [metric({ name: 'X', alias: 1, datatype: DataType.Int32, value: int(1) })] },
        'press-2',
      ),
      10,
    );
    assert.deepEqual(problems(a), ['duplicateAlias']);
    assert.equal(of(a, 'rebirth').length, 1);
    assert.deepEqual(samplesOf(a), []);
  });

  it('H15: aliases come only from the current session', () => {
    const s = bornSession();
    s.receive(msg('NBIRTH', { seq: 0, metrics: [bdSeq(1)] }), 10);
    s.receive(
      msg('DBIRTH', {
        seq: 1,
        metrics: [metric({ name: 'Temp', datatype: DataType.Double, value: dbl(1) })],
      }),
      11,
    );
    const a = s.receive(ddata(2, 10), 12);
    assert.deepEqual(problems(a), ['unknownAlias']);
  });

  it('a value of another type than the BIRTH declared is wrongType with a rebirth', () => {
    const s = bornSession();
    const a = s.receive(
      msg('DDATA', { seq: 2, metrics: [metric({ alias: 11, value: { field: 'string', value: 'x' } })] }),
      10,
    );
    assert.deepEqual(problems(a), ['wrongType']);
    assert.equal(of(a, 'rebirth').length, 1);
    const b = new SparkplugHostSession({ reorderTimeoutMs: 200, rebirthIntervalMs: 0 });
    b.receive(msg('NBIRTH', { seq: 0, metrics: nodeBirthMetrics }), 1);
    const c = b.receive(
      msg('NDATA', {
        seq: 1,
        metrics: [metric({ alias: 1, datatype: DataType.Float, value: { field: 'float', value: 1 } })],
      }),
      2,
    );
    assert.deepEqual(problems(c), ['wrongType']);
  });

  it('an unreadable payload counts on the node and requests a rebirth; rebirths can be switched off', () => {
    const s = bornSession();
    const a = s.receive(
      {
        type: 'NDATA',
        group: G,
        edgeNode: E,
        device: null,
        payload: { ok: false, problem: 'notProtobuf', detail: 'x' },
      },
      10,
    );
    assert.deepEqual(
      of(a, 'problem').map((p) => [p.counter, p.code]),
      [['malformed', 'notProtobuf']],
    );
    assert.equal(of(a, 'rebirth').length, 1);
    const quiet = new SparkplugHostSession({
      reorderTimeoutMs: 200,
      rebirthIntervalMs: 0,
      requestRebirths: false,
    });
    const b = quiet.receive(msg('NDATA', { seq: 1, metrics: [] }), 1);
    assert.deepEqual(of(b, 'rebirth'), []);
    assert.equal(of(b, 'state')[0]?.state, 'stale');
  });
});

describe('SparkplugHostSession: deaths', () => {
  it('H12: NDEATH takes node and devices offline and every tag stale at the host clock', () => {
    const s = bornSession();
    const a = s.receive(msg('NDEATH', { timestamp: 1, metrics: [bdSeq(0)] }), 7777);
    assert.deepEqual(of(a, 'stale'), [
      { type: 'stale', tagPrefix: `spb:${G}/${E}/`, at: 7777, reason: 'NDEATH bdSeq 0' },
    ]);
    assert.deepEqual(
      of(a, 'state').map((x) => [x.kind, x.state]),
      [
        ['edge-node', 'offline'],
        ['device', 'offline'],
      ],
    );
    assert.deepEqual(s.summary(), { online: 0, stale: 0, offline: 1 });
  });

  it('H13: ignores an NDEATH of another session and treats a second one as a no-op', () => {
    const s = bornSession();
    const old = s.receive(msg('NDEATH', { metrics: [bdSeq(7)] }), 10);
    assert.deepEqual(problems(old), ['staleDeath']);
    assert.deepEqual(of(old, 'stale'), []);
    assert.equal(of(s.receive(msg('NDEATH', { metrics: [bdSeq(0)] }), 11), 'stale').length, 1);
    const again = s.receive(msg('NDEATH', { metrics: [bdSeq(0)] }), 12);
    assert.deepEqual(of(again, 'stale'), []);
    assert.deepEqual(problems(again), []);
  });

  it('a new NBIRTH with an unchanged bdSeq after NDEATH starts a new session and says so once', () => {
    const s = bornSession();
    s.receive(msg('NDEATH', { metrics: [bdSeq(0)] }), 10);
    const a = s.receive(msg('NBIRTH', { seq: 0, metrics: nodeBirthMetrics }), 11);
    assert.deepEqual(
      of(a, 'notice').map((n) => n.code),
      ['bdSeqUnchanged'],
    );
    assert.equal(of(a, 'state').at(-1)?.state, 'online');
  });

  it('H14: DDEATH takes the device offline, its tags stale at the DDEATH timestamp, and keeps seq', () => {
    const s = bornSession();
    const a = s.receive(msg('DDEATH', { seq: 2, timestamp: 4242, metrics: [] }), 9999);
    assert.deepEqual(of(a, 'stale'), [
      { type: 'stale', tagPrefix: `spb:${G}/${E}/press-1/`, at: 4242, reason: 'DDEATH' },
    ]);
    assert.equal(of(a, 'state').at(-1)?.state, 'offline');
    const next = s.receive(msg('NDATA', { seq: 3, metrics: [metric({ alias: 1, value: int(9) })] }), 10_000);
    assert.deepEqual(problems(next), []);
    const dead = s.receive(ddata(4), 10_001);
    assert.deepEqual(problems(dead), ['beforeBirth']);
  });

  it('a lost broker connection stales every live node and forgets its session', () => {
    const s = bornSession();
    const a = s.connectionLost(50);
    assert.deepEqual(
      of(a, 'stale').map((x) => x.tagPrefix),
      [`spb:${G}/${E}/`],
    );
    assert.deepEqual(problems(s.receive(ddata(2), 60)), ['beforeBirth']);
  });
});

describe('SparkplugHostSession.prepareCommand (H18)', () => {
  it('sends known metrics by alias, with the BIRTH datatype', () => {
    const s = bornSession();
    const r = s.prepareCommand({ group: G, edgeNode: E, device: 'press-1' }, [{ name: 'Count', value: 3 }]);
    assert.ok(r.ok);
    assert.deepEqual(r.value.metrics, [{ alias: 11, type: 'Int32', value: 3 }]);
  });

  it('refuses unknown metrics, wrong types, offline devices and stale or unknown nodes', () => {
    const s = bornSession();
    const code = (r: ReturnType<SparkplugHostSession['prepareCommand']>) => (r.ok ? 'ok' : r.error.code);
    assert.equal(
      code(s.prepareCommand({ group: G, edgeNode: E, device: 'press-1' }, [{ name: 'Nope', value: 1 }])),
      'LOOM_SPARKPLUG_UNKNOWN_METRIC',
    );
    assert.equal(
      code(s.prepareCommand({ group: G, edgeNode: E, device: 'press-1' }, [{ name: 'Count', value: 'x' }])),
      'LOOM_SPARKPLUG_TYPE_MISMATCH',
    );
    assert.equal(
      code(s.prepareCommand({ group: G, edgeNode: E, device: 'press-9' }, [{ name: 'Count', value: 1 }])),
      'LOOM_SPARKPLUG_DEVICE_OFFLINE',
    );
    assert.equal(
      code(s.prepareCommand({ group: G, edgeNode: 'other' }, [{ name: 'Uptime', value: 1 }])),
      'LOOM_SPARKPLUG_NODE_OFFLINE',
    );
    assert.equal(
      code(s.prepareCommand({ group: 'a/b', edgeNode: E }, [{ name: 'Uptime', value: 1 }])),
      'LOOM_SPARKPLUG_INVALID_TARGET',
    );
    s.receive(ddata(2, 99), 10);
    assert.equal(
      code(s.prepareCommand({ group: G, edgeNode: E }, [{ name: 'Uptime', value: 1 }])),
      'LOOM_SPARKPLUG_NODE_STALE',
    );
  });
});

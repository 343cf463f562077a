import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import protoRoot from 'sparkplug-payload/lib/sparkplugPayloadProto.js';
import * as sparkplug from 'sparkplug-payload';
import {
  RollingBuffer,
  SampleStore,
  birthMetric,
  changed,
  commandValue,
  dataMetric,
  deathPayload,
  decodeCommand,
  encodePayload,
  parseState,
  topics,
  type MetricDefinition,
  type Sample,
} from './sparkplug-edge-protocol.ts';

const tahu = sparkplug.get('spBv1.0')!;
const { Payload } = protoRoot.org.eclipse.tahu.protobuf;
const num = (v: unknown): number => (typeof v === 'number' ? v : (v as { toNumber(): number }).toNumber());

const TEMP: MetricDefinition = { name: 'Temperature', datatype: 'Double', alias: 7 };
const sample = (value: number, ts: number, metric: MetricDefinition = TEMP): Sample => ({
  device: 'oven-1',
  metric,
  value,
  ts,
});

describe('Sparkplug topics', () => {
  it('builds namespace topics for node, device and STATE', () => {
    assert.equal(topics.node('plant1', 'line1-edge', 'NBIRTH'), 'spBv1.0/plant1/NBIRTH/line1-edge');
    assert.equal(
      topics.device('plant1', 'line1-edge', 'DDATA', 'oven-1'),
      'spBv1.0/plant1/DDATA/line1-edge/oven-1',
    );
    assert.equal(topics.state('loom'), 'spBv1.0/STATE/loom');
  });
});

describe('payload encoding', () => {
  it('E7/E10: a BIRTH metric carries name, alias, datatype, timestamp and value, readable by Tahu', () => {
    const bytes = encodePayload({
      timestamp: 1000,
      seq: 0,
      metrics: [
        birthMetric(TEMP, 21.5, 1000),
        birthMetric({ name: 'Node Control/Rebirth', datatype: 'Boolean' }, false, 1000),
        birthMetric({ name: 'Strokes', datatype: 'Int64', alias: 8 }, 12345678901, 1000),
        birthMetric({ name: 'Offset', datatype: 'Int32', alias: 9 }, -5, 1000),
        birthMetric({ name: 'Recipe/Id', datatype: 'String', alias: 10 }, 'A-1', 1000),
        birthMetric({ name: 'Missing', datatype: 'Double', alias: 11 }, null, 1000),
      ],
    });
    const p = tahu.decodePayload(bytes);
    assert.equal(num(p.seq), 0);
    const [t, rebirth, strokes, offset, recipe, missing] = p.metrics!;
    assert.equal(t!.name, 'Temperature');
    assert.equal(num(t!.alias), 7);
    assert.equal(t!.type, 'Double');
    assert.equal(t!.value, 21.5);
    assert.equal(num(t!.timestamp), 1000);
    assert.equal(rebirth!.name, 'Node Control/Rebirth');
    assert.equal(rebirth!.type, 'Boolean');
    assert.equal(rebirth!.value, false);
    assert.equal(rebirth!.alias, undefined, 'Node Control/Rebirth has no alias (H15)');
    assert.equal(num(strokes!.value), 12345678901);
    assert.equal(offset!.value, -5);
    assert.equal(recipe!.value, 'A-1');
    assert.equal(missing!.value, null);
  });

  it('E10: a DATA metric has alias and timestamp but neither name nor datatype; historical when flushed', () => {
    const live = Payload.decode(
      encodePayload({ timestamp: 5, seq: 3, metrics: [dataMetric(sample(1.25, 4), false)] }),
    );
    const m = live.metrics[0]!;
    assert.equal(num(m.alias), 7);
    assert.equal(num(m.timestamp), 4);
    assert.equal(m.doubleValue, 1.25);
    assert.ok(!Object.prototype.hasOwnProperty.call(m, 'name'), 'no name');
    assert.ok(!Object.prototype.hasOwnProperty.call(m, 'datatype'), 'no datatype');
    assert.ok(!Object.prototype.hasOwnProperty.call(m, 'isHistorical'), 'live data is not historical');
    const old = Payload.decode(
      encodePayload({ timestamp: 5, seq: 4, metrics: [dataMetric(sample(1, 2), true)] }),
    );
    assert.equal(old.metrics[0]!.isHistorical, true);
  });

  it('E2: the death payload is a single bdSeq Int64 metric and no seq', () => {
    const p = tahu.decodePayload(deathPayload(200, 99));
    assert.equal(p.seq, undefined);
    assert.equal(p.metrics!.length, 1);
    assert.equal(p.metrics![0]!.name, 'bdSeq');
    assert.equal(p.metrics![0]!.type, 'Int64');
    assert.equal(num(p.metrics![0]!.value), 200);
  });
});

describe('command decoding', () => {
  const cmd = (metric: Record<string, unknown>) =>
    decodeCommand(
      Payload.encode(Payload.create({ timestamp: 1, metrics: [Payload.Metric.create(metric)] })).finish(),
      1024,
    );

  it('reads a value by the target datatype, converting among numbers only', () => {
    const d = cmd({ alias: 7, doubleValue: 150.5 });
    assert.ok(d.ok);
    const m = d.metrics[0]!;
    assert.equal(m.alias, 7);
    assert.equal(commandValue(m, 'Double'), 150.5);
    assert.equal(commandValue(m, 'Boolean'), undefined);
    assert.equal(commandValue(m, 'String'), undefined);
  });

  it('reads signed Int64 and Int32 from their two’s complement, unsigned when declared so', () => {
    const long = cmd({ name: 'X', datatype: 4, longValue: -42 });
    assert.ok(long.ok);
    assert.equal(commandValue(long.metrics[0]!, 'Int64'), -42);
    const int = cmd({ name: 'X', datatype: 3, intValue: -7 >>> 0 });
    assert.ok(int.ok);
    assert.equal(commandValue(int.metrics[0]!, 'Int32'), -7);
    const u16 = cmd({ name: 'X', datatype: 6, intValue: 65535 });
    assert.ok(u16.ok);
    assert.equal(commandValue(u16.metrics[0]!, 'Int32'), 65535);
  });

  it('reads Boolean and String values only from their own fields; marks is_null', () => {
    const b = cmd({ name: 'Node Control/Rebirth', booleanValue: true });
    assert.ok(b.ok);
    assert.equal(b.metrics[0]!.name, 'Node Control/Rebirth');
    assert.equal(commandValue(b.metrics[0]!, 'Boolean'), true);
    assert.equal(commandValue(b.metrics[0]!, 'Double'), undefined);
    const s = cmd({ alias: 3, stringValue: 'BREAD-7' });
    assert.ok(s.ok);
    assert.equal(commandValue(s.metrics[0]!, 'String'), 'BREAD-7');
    const n = cmd({ alias: 3, isNull: true });
    assert.ok(n.ok);
    assert.equal(n.metrics[0]!.isNull, true);
  });

  it('refuses garbage and oversize payloads instead of throwing (rule 10)', () => {
    const garbage = decodeCommand(Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]), 1024);
    assert.equal(garbage.ok, false);
    const big = decodeCommand(Buffer.alloc(2048), 1024);
    assert.equal(big.ok, false);
    assert.match((big as { message: string }).message, /exceeds 1024/);
  });
});

describe('SampleStore', () => {
  it('keeps samples oldest first and hands them out in batches', () => {
    const s = new SampleStore(10);
    for (let i = 0; i < 5; i++) s.push(sample(i, i));
    assert.equal(s.size, 5);
    assert.deepEqual(
      s.take(3).map((x) => x.ts),
      [0, 1, 2],
    );
    assert.deepEqual(
      s.take(10).map((x) => x.ts),
      [3, 4],
    );
    assert.equal(s.size, 0);
  });

  it('drops the oldest when full and counts each drop', () => {
    const s = new SampleStore(3);
    for (let i = 0; i < 5000; i++) s.push(sample(i, i));
    assert.equal(s.size, 3);
    assert.equal(s.dropped, 4997);
    assert.deepEqual(
      s.take(3).map((x) => x.ts),
      [4997, 4998, 4999],
    );
  });
});

describe('RollingBuffer', () => {
  it('returns what was recorded within maxAgeMs before now, then is empty', () => {
    const r = new RollingBuffer(1000, 100);
    for (let t = 0; t <= 3000; t += 500) r.record(sample(t, t), t);
    assert.deepEqual(
      r.drain(3200).map((x) => x.ts),
      [2500, 3000],
    );
    assert.equal(r.drain(3200).length, 0);
  });

  it('holds at most its capacity', () => {
    const r = new RollingBuffer(1_000_000, 10);
    for (let t = 0; t < 5000; t++) r.record(sample(t, t), t);
    assert.equal(r.size, 10);
    assert.equal(r.drain(5000)[0]!.ts, 4990);
  });

  it('records nothing when turned off (maxAgeMs 0)', () => {
    const r = new RollingBuffer(0, 10);
    r.record(sample(1, 1), 1);
    assert.equal(r.size, 0);
  });
});

describe('report by exception', () => {
  it('reports a number only when it moved by at least the deadband; others on any change', () => {
    const band = { name: 'T', datatype: 'Double' as const, deadband: 0.5 };
    assert.equal(changed(band, undefined, 1), true);
    assert.equal(changed(band, 1, 1.4), false);
    assert.equal(changed(band, 1, 1.5), true);
    assert.equal(changed(band, 1, 0.5), true);
    const exact = { name: 'N', datatype: 'Int64' as const };
    assert.equal(changed(exact, 3, 3), false);
    assert.equal(changed(exact, 3, 4), true);
    const flag = { name: 'B', datatype: 'Boolean' as const };
    assert.equal(changed(flag, true, true), false);
    assert.equal(changed(flag, true, false), true);
  });
});

describe('parseState', () => {
  it('accepts {online, timestamp} JSON and nothing else', () => {
    assert.deepEqual(parseState(Buffer.from('{"online":true,"timestamp":5}')), {
      online: true,
      timestamp: 5,
    });
    assert.equal(parseState(Buffer.from('')), null);
    assert.equal(parseState(Buffer.from('ONLINE')), null);
    assert.equal(parseState(Buffer.from('{"online":"yes","timestamp":5}')), null);
    assert.equal(parseState(Buffer.from('{"online":true}')), null);
    assert.equal(parseState(Buffer.from('null')), null);
  });
});

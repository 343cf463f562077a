import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import {
  DataType,
  checkCommandValue,
  decodeSparkplugPayload,
  encodeCommandPayload,
  encodeRebirthRequest,
  qualityFromCode,
  toSampleValue,
  type SparkplugPayload,
} from './sparkplug-payload-codec.ts';

interface TahuPayload {
  timestamp?: unknown;
  seq?: unknown;
  metrics?: Record<string, unknown>[];
}
/** Tahu's own encoder and decoder: the reference the edge nodes in the field use. */
const tahu = (
  createRequire(import.meta.url)('sparkplug-payload') as {
    get(ns: string): { encodePayload(p: unknown): Uint8Array; decodePayload(b: Uint8Array): TahuPayload };
  }
).get('spBv1.0');

const decoded = (bytes: Uint8Array, max = 1 << 20): SparkplugPayload => {
  const r = decodeSparkplugPayload(bytes, max);
  assert.ok(r.ok, r.ok ? '' : r.detail);
  return r.payload;
};

describe('decodeSparkplugPayload', () => {
  it('reads what Tahu encodes: timestamp, seq, names, aliases, types, flags', () => {
    const p = decoded(
      tahu.encodePayload({
        timestamp: 1_700_000_000_123,
        seq: 7,
        metrics: [
          { name: 'Temp', alias: 3, type: 'Double', value: 21.5, timestamp: 1_700_000_000_100 },
          { name: 'Count', type: 'Int64', value: -5, isHistorical: true },
          { name: 'Off', type: 'Int32', value: null, isTransient: true },
        ],
      }),
    );
    assert.equal(p.timestamp, 1_700_000_000_123);
    assert.equal(p.seq, 7);
    assert.equal(p.metrics.length, 3);
    const [temp, count, off] = p.metrics;
    assert.equal(temp!.name, 'Temp');
    assert.equal(temp!.alias, 3);
    assert.equal(temp!.datatype, DataType.Double);
    assert.equal(temp!.timestamp, 1_700_000_000_100);
    assert.deepEqual(toSampleValue(DataType.Double, temp!), { ok: true, value: 21.5 });
    assert.equal(count!.isHistorical, true);
    assert.deepEqual(toSampleValue(DataType.Int64, count!), { ok: true, value: -5 });
    assert.equal(off!.isNull, true);
    assert.equal(off!.isTransient, true);
    assert.deepEqual(toSampleValue(DataType.Int32, off!), { ok: true, value: null });
  });

  it('refuses a payload above the cap before decoding it', () => {
    const r = decodeSparkplugPayload(new Uint8Array(2048), 1024);
    assert.deepEqual(r.ok ? null : r.problem, 'oversize');
  });

  it('contains decoder failures: JSON, text and random bytes are values, not exceptions', () => {
    for (const bytes of [
      Buffer.from('{"temperature":21.5}'),
      Buffer.from('hello, not protobuf'),
      Buffer.from([0xff, 0xff, 0xff, 0xff]),
    ]) {
      const r = decodeSparkplugPayload(bytes, 1 << 20);
      assert.equal(r.ok, false);
      assert.equal(r.ok ? null : r.problem, 'notProtobuf');
    }
  });

  it('reads 64-bit timestamps and aliases up to 2^53 exactly and flags larger ones as malformed', () => {
    const big = { low: 0, high: 0x200000, unsigned: true };
    const edge = 2 ** 53 - 1;
    const ok = decoded(
      tahu.encodePayload({ timestamp: edge, metrics: [{ alias: edge, type: 'Int32', value: 1 }] }),
    );
    assert.equal(ok.timestamp, edge);
    assert.equal(ok.metrics[0]!.alias, edge);
    for (const bad of [
      { timestamp: big },
      { timestamp: 1, metrics: [{ alias: big, type: 'Int32', value: 1 }] },
    ]) {
      const r = decodeSparkplugPayload(tahu.encodePayload(bad), 1 << 20);
      assert.ok(!r.ok && r.problem === 'malformed', JSON.stringify(r));
    }
  });

  it('flags a seq beyond 255 as malformed', () => {
    const r = decodeSparkplugPayload(tahu.encodePayload({ timestamp: 1, seq: 300, metrics: [] }), 1 << 20);
    assert.equal(r.ok ? null : r.problem, 'malformed');
  });

  it('does not let property keys from the wire reach any prototype', () => {
    const p = decoded(
      tahu.encodePayload({
        timestamp: 1,
        metrics: [
          {
            name: 'x',
            type: 'Int32',
            value: 1,
            // JSON.parse makes `__proto__` an own key, as a hostile encoder would put it on the wire.
            properties: JSON.parse(
              '{"__proto__":{"type":"String","value":"polluted"},"Quality":{"type":"Int32","value":64}}',
            ) as unknown,
          },
        ],
      }),
    );
    assert.equal(p.metrics[0]!.quality, 64);
    assert.equal(Object.keys(p.metrics[0]!).includes('__proto__'), false);
    assert.equal(({} as Record<string, unknown>).type, undefined);
    assert.equal(Object.prototype.hasOwnProperty.call(Object.prototype, 'value'), false);
  });
});

describe('toSampleValue', () => {
  const m = (value: SparkplugPayload['metrics'][number]['value']) => ({ isNull: false, value });

  it('reads signed 8/16/32-bit values sign-extended (Tahu) or as unsigned patterns', () => {
    assert.deepEqual(toSampleValue(DataType.Int8, m({ field: 'int', value: 0xffffffff })), {
      ok: true,
      value: -1,
    });
    assert.deepEqual(toSampleValue(DataType.Int8, m({ field: 'int', value: 0xff })), { ok: true, value: -1 });
    assert.deepEqual(toSampleValue(DataType.Int16, m({ field: 'int', value: 0x8000 })), {
      ok: true,
      value: -32768,
    });
    assert.deepEqual(toSampleValue(DataType.UInt32, m({ field: 'long', value: 4_000_000_000n })), {
      ok: true,
      value: 4_000_000_000,
    });
    assert.equal(toSampleValue(DataType.UInt8, m({ field: 'int', value: 256 })).ok, false);
  });

  it('keeps 64-bit values beyond 2^53 but marks them uncertain', () => {
    assert.deepEqual(toSampleValue(DataType.UInt64, m({ field: 'long', value: 2n ** 60n })), {
      ok: true,
      value: 2 ** 60,
      quality: 'uncertain',
    });
  });

  it('refuses a value field of another kind than the datatype', () => {
    const r = toSampleValue(DataType.Boolean, m({ field: 'string', value: 'true' }));
    assert.equal(r.ok ? null : r.reason, 'wrongType');
    assert.equal(toSampleValue(DataType.Int32, m({ field: 'double', value: 1.5 })).ok, false);
    assert.equal(toSampleValue(DataType.Double, m({ field: 'none' })).ok, false);
  });

  it('turns NaN into a bad null and leaves unsupported types out', () => {
    assert.deepEqual(toSampleValue(DataType.Float, m({ field: 'float', value: NaN })), {
      ok: true,
      value: null,
      quality: 'bad',
    });
    const r = toSampleValue(DataType.DataSet, m({ field: 'other' }));
    assert.equal(r.ok ? null : r.reason, 'unsupportedType');
  });
});

describe('quality and commands', () => {
  it('maps OPC DA quality codes', () => {
    assert.equal(qualityFromCode(192), 'good');
    assert.equal(qualityFromCode(216), 'good');
    assert.equal(qualityFromCode(64), 'uncertain');
    assert.equal(qualityFromCode(0), 'bad');
    assert.equal(qualityFromCode(24), 'bad');
  });

  it('H10: a rebirth request is Node Control/Rebirth = true, Boolean, with a timestamp, no alias, no seq', () => {
    const p = tahu.decodePayload(encodeRebirthRequest(1_700_000_000_000));
    assert.equal(Number(p.timestamp), 1_700_000_000_000);
    assert.equal(p.seq, undefined);
    assert.equal(p.metrics?.length, 1);
    const [rebirth] = p.metrics;
    assert.equal(rebirth!.name, 'Node Control/Rebirth');
    assert.equal(rebirth!.type, 'Boolean');
    assert.equal(rebirth!.value, true);
    assert.equal(rebirth!.alias, undefined);
  });

  it('H15: a command metric with an alias carries the alias only', () => {
    const p = tahu.decodePayload(encodeCommandPayload(5, [{ alias: 12, type: 'Int32', value: 40 }]));
    assert.equal(p.metrics![0]!.name, undefined);
    assert.equal(Number(p.metrics![0]!.alias), 12);
    assert.equal(p.metrics![0]!.value, 40);
  });

  it('H18: checks a written value against the BIRTH datatype', () => {
    assert.equal(checkCommandValue(DataType.Int16, 1000), null);
    assert.notEqual(checkCommandValue(DataType.Int16, 70_000), null);
    assert.notEqual(checkCommandValue(DataType.Int32, 1.5), null);
    assert.notEqual(checkCommandValue(DataType.Boolean, 'true'), null);
    assert.equal(checkCommandValue(DataType.String, 'on'), null);
    assert.notEqual(checkCommandValue(DataType.Double, Infinity), null);
    assert.notEqual(checkCommandValue(DataType.DataSet, 1), null);
  });
});

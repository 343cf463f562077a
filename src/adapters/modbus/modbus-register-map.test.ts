import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ModbusRegisterSource } from '../../domain/signal/signal.ts';
import { decodeRegisters, encodeValue, planReads, rawFromWords } from './modbus-register-map.ts';

const reg = (over: Partial<ModbusRegisterSource>): ModbusRegisterSource => ({
  host: '127.0.0.1',
  port: 502,
  unitId: 1,
  table: 'holding',
  address: 0,
  type: 'uint16',
  wordOrder: 'big',
  byteOrder: 'big',
  scale: 1,
  offset: 0,
  pollMs: 1000,
  ...over,
});

describe('modbus register decoding', () => {
  it('reads int16 and uint16 from the same word as signed and unsigned', () => {
    assert.equal(rawFromWords([0xfb2e], reg({ type: 'int16' })), -1234);
    assert.equal(rawFromWords([0xfb2e], reg({ type: 'uint16' })), 0xfb2e);
  });

  it('puts the high word first for big word order and last for little', () => {
    assert.equal(rawFromWords([0x0001, 0x0002], reg({ type: 'uint32' })), 0x00010002);
    assert.equal(rawFromWords([0x0002, 0x0001], reg({ type: 'uint32', wordOrder: 'little' })), 0x00010002);
    assert.equal(rawFromWords([0xfffe, 0x1dc0], reg({ type: 'int32' })), -123456);
  });

  it('swaps the bytes within each word for little byte order', () => {
    assert.equal(rawFromWords([0x3412], reg({ type: 'uint16', byteOrder: 'little' })), 0x1234);
    const cdab = reg({ type: 'uint32', wordOrder: 'little', byteOrder: 'little' });
    assert.equal(rawFromWords([0x7856, 0x3412], cdab), 0x12345678);
  });

  it('decodes float32 and applies scale and offset', () => {
    assert.equal(rawFromWords([0x4049, 0x0fdb], reg({ type: 'float32' })), Math.fround(Math.PI));
    assert.equal(decodeRegisters([0x04d2], reg({ type: 'int16', scale: 0.1, offset: -20 })), 1234 * 0.1 - 20);
  });

  it('refuses a word count that does not fit the type', () => {
    assert.throws(() => rawFromWords([1], reg({ type: 'int32' })), RangeError);
  });
});

describe('modbus value encoding', () => {
  const cases: Partial<ModbusRegisterSource>[] = [
    { type: 'int16', scale: 0.1 },
    { type: 'uint16', byteOrder: 'little' },
    { type: 'int32', wordOrder: 'little' },
    { type: 'uint32', wordOrder: 'little', byteOrder: 'little', offset: 5 },
    { type: 'float32', wordOrder: 'little' },
  ];
  for (const c of cases) {
    it(`round-trips ${JSON.stringify(c)} through encode and decode`, () => {
      const src = reg(c);
      const value = c.type === 'float32' ? 2.5 : c.type === 'int16' ? -12.3 : 40_000 + (c.offset ?? 0);
      const enc = encodeValue(value, src);
      assert.ok(enc.ok, JSON.stringify(enc));
      assert.ok(Math.abs(decodeRegisters(enc.words, src) - value) < 1e-9);
    });
  }

  it('refuses a value outside the type range, and names the range', () => {
    const r = encodeValue(70_000, reg({ type: 'uint16' }));
    assert.equal(r.ok, false);
    assert.ok(!r.ok && r.reason === 'out-of-range' && r.message.includes('65535'));
  });

  it('refuses a value that is not a whole number of scale steps instead of rounding it', () => {
    const r = encodeValue(12.34, reg({ type: 'int16', scale: 0.1 }));
    assert.ok(!r.ok && r.reason === 'wrong-type');
  });

  it('takes only booleans for coils and only numbers for registers', () => {
    assert.deepEqual(encodeValue(true, reg({ table: 'coil', type: 'bool' })), { ok: true, words: [1] });
    assert.equal(encodeValue(1, reg({ table: 'coil', type: 'bool' })).ok, false);
    assert.equal(encodeValue(true, reg({ type: 'uint16' })).ok, false);
  });
});

describe('modbus read planning', () => {
  const sig = (over: Partial<ModbusRegisterSource>) => ({ source: { modbus: reg(over) } });

  it('joins neighbours and small gaps into one request per table', () => {
    const blocks = planReads([
      sig({ address: 10, type: 'float32' }),
      sig({ address: 0, type: 'uint32' }),
      sig({ address: 4 }),
      sig({ table: 'coil', type: 'bool', address: 3 }),
    ]);
    assert.deepEqual(
      blocks.map((b) => [b.table, b.start, b.count, b.items.map((i) => i.at)]),
      [
        ['coil', 3, 1, [0]],
        ['holding', 0, 12, [0, 4, 10]],
      ],
    );
  });

  it('splits at a large gap, at the 125-register limit, and by poll period', () => {
    const blocks = planReads([
      sig({ address: 0 }),
      sig({ address: 100 }),
      sig({ address: 101, pollMs: 200 }),
    ]);
    assert.deepEqual(
      blocks.map((b) => [b.start, b.count, b.pollMs]),
      [
        [0, 1, 1000],
        [100, 1, 1000],
        [101, 1, 200],
      ],
    );
    const spaced = planReads(Array.from({ length: 17 }, (_, i) => sig({ address: i * 8 })));
    assert.deepEqual(
      spaced.map((b) => [b.start, b.count]),
      [
        [0, 121],
        [128, 1],
      ],
    );
  });

  it('never puts more than 2000 coils in one request', () => {
    const coils = Array.from({ length: 2500 }, (_, i) => sig({ table: 'coil', type: 'bool', address: i }));
    assert.deepEqual(
      planReads(coils).map((b) => b.count),
      [2000, 500],
    );
  });

  it('keeps a gap of zero when asked, for devices with holes in their map', () => {
    assert.equal(planReads([sig({ address: 0 }), sig({ address: 2 })], { maxGap: 0 }).length, 2);
  });
});

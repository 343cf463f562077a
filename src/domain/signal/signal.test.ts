import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { tagKey } from './sample.ts';
import { SignalSchema, sourceTagOf } from './signal.ts';

const base = { id: 'press-1.strokes', equipment: 'press-1', dataType: 'number' };

describe('signal sources and tag keys', () => {
  it('keys a Sparkplug metric by group, edge node, device and metric, and finds its edge node again', () => {
    const tag = sourceTagOf({
      sparkplug: { group: 'plant1', edgeNode: 'paint-edge', device: 'oven-1', metric: 'Recipe/Id' },
    });
    assert.equal(tag, 'spb:plant1/paint-edge/oven-1/Recipe/Id');
    assert.deepEqual(tagKey.sparkplugNodeOf(tag), { group: 'plant1', edgeNode: 'paint-edge' });
    assert.equal(tagKey.sparkplugNodeOf('modbus:10.0.0.5:502/1|holding:0:uint32'), null);
  });

  it('fills Modbus defaults and keys the register by device, table, address and type', () => {
    const s = SignalSchema.parse({
      ...base,
      source: { modbus: { host: '10.0.0.5', table: 'holding', address: 0, type: 'uint32' } },
    });
    assert.ok('modbus' in s.source);
    assert.deepEqual(s.source.modbus, {
      host: '10.0.0.5',
      port: 502,
      unitId: 1,
      table: 'holding',
      address: 0,
      type: 'uint32',
      wordOrder: 'big',
      byteOrder: 'big',
      scale: 1,
      offset: 0,
      pollMs: 1000,
    });
    assert.equal(sourceTagOf(s.source), 'modbus:10.0.0.5:502/1|holding:0:uint32');
  });

  it('refuses a bit type on a register table, a word type on a coil, a value past the last address, and two sources at once', () => {
    const bad = (source: unknown) => SignalSchema.safeParse({ ...base, source }).success;
    assert.equal(bad({ modbus: { host: 'h', table: 'holding', address: 1, type: 'bool' } }), false);
    assert.equal(bad({ modbus: { host: 'h', table: 'coil', address: 1, type: 'int16' } }), false);
    assert.equal(bad({ modbus: { host: 'h', table: 'holding', address: 65535, type: 'int32' } }), false);
    assert.equal(bad({ modbus: { host: 'h', table: 'holding', address: 65534, type: 'int32' } }), true);
    assert.equal(
      bad({
        sparkplug: { group: 'g', edgeNode: 'e', metric: 'm' },
        modbus: { host: 'h', table: 'coil', address: 1, type: 'bool' },
      }),
      false,
    );
  });
});

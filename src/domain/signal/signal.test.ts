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

describe('OPC UA sources, writable and PackML signals', () => {
  it('keys an OPC UA variable by endpoint and NodeId and fills sampling defaults', () => {
    const s = SignalSchema.parse({
      ...base,
      source: { opcua: { endpoint: 'opc.tcp://10.0.0.7:4840/UA/Press', nodeId: 'ns=2;s=Press.Strokes' } },
    });
    assert.ok('opcua' in s.source);
    assert.deepEqual(s.source.opcua, {
      endpoint: 'opc.tcp://10.0.0.7:4840/UA/Press',
      nodeId: 'ns=2;s=Press.Strokes',
      samplingMs: 1000,
      queueSize: 10,
    });
    assert.equal(sourceTagOf(s.source), 'opcua:opc.tcp://10.0.0.7:4840/UA/Press|ns=2;s=Press.Strokes');
    assert.equal(s.writable, false);
  });

  it('refuses an endpoint that is not opc.tcp and a malformed NodeId, naming the field', () => {
    const r = SignalSchema.safeParse({
      ...base,
      source: { opcua: { endpoint: 'http://10.0.0.7', nodeId: 'Press.Strokes' } },
    });
    assert.equal(r.success, false);
    const paths = r.error.issues.map((i) => i.path.join('.'));
    assert.ok(paths.includes('source.opcua.endpoint'), paths.join());
    assert.ok(paths.includes('source.opcua.nodeId'), paths.join());
  });

  it('accepts namespace URIs, numeric, GUID and opaque NodeIds', () => {
    for (const nodeId of [
      'nsu=urn:acme:plc;s=Line1.Speed',
      'i=2258',
      'ns=3;i=1001',
      'ns=1;g=72962b91-fa75-4ae6-8d28-b404dc7daf63',
      'ns=1;b=M/RbKBsRVkePCePcx24oRA==',
    ]) {
      assert.ok(
        SignalSchema.safeParse({ ...base, source: { opcua: { endpoint: 'opc.tcp://plc:4840', nodeId } } })
          .success,
        nodeId,
      );
    }
  });

  it('a PackML command signal must be writable, and a Modbus input register cannot be', () => {
    const cmd = SignalSchema.safeParse({
      ...base,
      packml: 'command',
      source: { opcua: { endpoint: 'opc.tcp://plc:4840', nodeId: 'ns=1;s=PackML/CntrlCmd' } },
    });
    assert.equal(cmd.success, false);
    assert.match(cmd.error.issues[0]!.message, /set writable: true/);
    const input = SignalSchema.safeParse({
      ...base,
      writable: true,
      source: { modbus: { host: 'plc', table: 'input', address: 3, type: 'uint16' } },
    });
    assert.equal(input.success, false);
    assert.deepEqual(input.error.issues[0]!.path, ['writable']);
  });
});

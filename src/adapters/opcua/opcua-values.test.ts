import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  BuiltInType,
  UNSUPPORTED,
  describeUnsupported,
  encodeForDataType,
  hasOverflow,
  qualityOf,
  resolveNamespace,
  sampleValueOf,
} from './opcua-values.ts';

const scalar = (dataType: number, value: unknown) => ({ dataType, arrayType: 0, value });

describe('OPC UA values to samples', () => {
  it('takes numbers of every numeric type, booleans and strings as they are', () => {
    assert.equal(sampleValueOf(scalar(BuiltInType.Double, 21.5)), 21.5);
    assert.equal(sampleValueOf(scalar(BuiltInType.Float, -1.25)), -1.25);
    assert.equal(sampleValueOf(scalar(BuiltInType.UInt32, 4294967295)), 4294967295);
    assert.equal(sampleValueOf(scalar(BuiltInType.SByte, -7)), -7);
    assert.equal(sampleValueOf(scalar(BuiltInType.Boolean, true)), true);
    assert.equal(sampleValueOf(scalar(BuiltInType.String, 'PRIMER-7')), 'PRIMER-7');
    assert.equal(
      sampleValueOf(scalar(BuiltInType.LocalizedText, { text: 'Running', locale: 'en' })),
      'Running',
    );
    assert.equal(
      sampleValueOf(scalar(BuiltInType.DateTime, new Date('2026-11-25T10:00:00Z'))),
      '2026-11-25T10:00:00.000Z',
    );
    assert.equal(sampleValueOf(scalar(BuiltInType.Null, null)), null);
  });

  it('turns Int64 and UInt64 [high, low] words into numbers, signed and unsigned', () => {
    assert.equal(sampleValueOf(scalar(BuiltInType.Int64, [0xffffffff, 0xfffffffb])), -5);
    assert.equal(sampleValueOf(scalar(BuiltInType.UInt64, [256, 7])), 2 ** 40 + 7);
    assert.equal(sampleValueOf(scalar(BuiltInType.UInt64, [0xffffffff, 0xffffffff])), 2 ** 64 - 1);
    assert.equal(sampleValueOf(scalar(BuiltInType.Int64, 'x')), UNSUPPORTED);
  });

  it('refuses arrays, structures, byte strings and non-finite floats, and says what they were', () => {
    const array = { dataType: BuiltInType.Double, arrayType: 1, value: new Float64Array([1, 2]) };
    assert.equal(sampleValueOf(array), UNSUPPORTED);
    assert.equal(describeUnsupported(array), 'an array of Double');
    assert.equal(sampleValueOf(scalar(BuiltInType.ExtensionObject, {})), UNSUPPORTED);
    assert.equal(sampleValueOf(scalar(BuiltInType.ByteString, Buffer.from('x'))), UNSUPPORTED);
    assert.equal(sampleValueOf(scalar(BuiltInType.Double, Number.NaN)), UNSUPPORTED);
    assert.equal(describeUnsupported(scalar(BuiltInType.Float, Number.POSITIVE_INFINITY)), 'Float Infinity');
  });

  it('reads the quality from the StatusCode severity and the overflow bit from its info bits', () => {
    assert.equal(qualityOf(0), 'good');
    assert.equal(qualityOf(0x00000480), 'good');
    assert.equal(qualityOf(0x40920000), 'uncertain'); // UncertainInitialValue
    assert.equal(qualityOf(0x803c0000), 'bad'); // BadOutOfRange
    assert.equal(qualityOf(0xc0000000), 'bad');
    assert.ok(hasOverflow(0x00000480));
    assert.ok(!hasOverflow(0x803c0000));
  });
});

describe('OPC UA values to write', () => {
  it('takes a value of the node type and refuses the wrong JS type', () => {
    assert.deepEqual(encodeForDataType(250.5, BuiltInType.Double), {
      ok: true,
      dataType: BuiltInType.Double,
      value: 250.5,
    });
    const wrong = encodeForDataType('hot', BuiltInType.Double);
    assert.ok(!wrong.ok && /the node is a Double; send a finite number/.test(wrong.message));
    assert.equal(encodeForDataType(1, BuiltInType.Boolean).ok, false);
    assert.equal(encodeForDataType(true, BuiltInType.String).ok, false);
  });

  it('refuses integers out of range or with a fraction, and names the range', () => {
    const big = encodeForDataType(256, BuiltInType.Byte);
    assert.ok(!big.ok && big.message.includes('0 to 255'));
    assert.equal(encodeForDataType(-1, BuiltInType.UInt32).ok, false);
    assert.equal(encodeForDataType(1.5, BuiltInType.Int16).ok, false);
    assert.equal(encodeForDataType(2 ** 31, BuiltInType.Int32).ok, false);
    assert.equal(encodeForDataType(2 ** 53, BuiltInType.Int64).ok, false);
    assert.equal(encodeForDataType(3.5e38, BuiltInType.Float).ok, false);
  });

  it('writes Int64 as the [high, low] words node-opcua expects, and reads them back the same', () => {
    for (const n of [-5, 0, 2 ** 40 + 7, -(2 ** 40) - 3, Number.MAX_SAFE_INTEGER]) {
      const enc = encodeForDataType(n, BuiltInType.Int64);
      assert.ok(enc.ok);
      assert.equal(sampleValueOf(scalar(BuiltInType.Int64, enc.value)), n);
    }
  });

  it('takes a DateTime as ISO text or epoch milliseconds', () => {
    const enc = encodeForDataType('2026-11-25T10:00:00Z', BuiltInType.DateTime);
    assert.ok(
      enc.ok && enc.value instanceof Date && enc.value.getTime() === Date.parse('2026-11-25T10:00:00Z'),
    );
    assert.equal(encodeForDataType('soon', BuiltInType.DateTime).ok, false);
  });
});

describe('NodeIds with a namespace URI', () => {
  const ns = ['http://opcfoundation.org/UA/', 'urn:loom:sim:oven-1', 'urn:vendor:plc'];
  it('resolves nsu= to the index the server uses, and leaves ns= as it is', () => {
    assert.equal(resolveNamespace('nsu=urn:vendor:plc;s=Line1.Speed', ns), 'ns=2;s=Line1.Speed');
    assert.equal(resolveNamespace('nsu=http://opcfoundation.org/UA/;i=85', ns), 'i=85');
    assert.equal(resolveNamespace('ns=1;s=Temperature', ns), 'ns=1;s=Temperature');
    assert.equal(resolveNamespace('nsu=urn:other;s=X', ns), null);
  });
});

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { atPath, parseAt } from './field-issues.ts';

describe('atPath', () => {
  it('writes paths the way a reader finds them in the file', () => {
    assert.equal(
      atPath('products[0]', 'routing', 'operations', 2, 'workCenter'),
      'products[0].routing.operations[2].workCenter',
    );
    assert.equal(atPath('', 'parent'), 'parent');
    assert.equal(atPath('', 3), '[3]');
  });

  it('quotes keys that are not plain words', () => {
    assert.equal(atPath('materials[4]', 'silver metallic'), 'materials[4]["silver metallic"]');
  });
});

describe('parseAt', () => {
  const Holding = z.strictObject({ qualification: z.string(), level: z.number().optional() });

  it('names the field in every message', () => {
    const parsed = parseAt(Holding, { qualification: 7 }, 'personnel[0].qualifications[1]');
    assert.ok(!parsed.ok);
    assert.equal(parsed.issues[0]?.message.startsWith('qualification must be text'), true);
  });

  it('recovers the value without its unknown fields when they are the only fault', () => {
    const parsed = parseAt(Holding, { qualification: 'welding', levle: 2 }, '');
    assert.ok(!parsed.ok);
    assert.deepEqual(parsed.issues, [
      { path: 'levle', message: 'levle is not a known field; remove it or correct its spelling' },
    ]);
    assert.deepEqual(parsed.withoutUnknownFields, { qualification: 'welding' });
  });

  it('recovers nothing when another fault remains', () => {
    const parsed = parseAt(Holding, { qualification: 1, levle: 2 }, '');
    assert.ok(!parsed.ok);
    assert.equal(parsed.withoutUnknownFields, undefined);
    assert.equal(parsed.issues.length, 2);
  });

  it('does not touch the caller’s input when it drops unknown fields', () => {
    const input = { qualification: 'welding', levle: 2 };
    parseAt(Holding, input, '');
    assert.deepEqual(input, { qualification: 'welding', levle: 2 });
  });
});

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { validateMaterialDefinition, validateUnitOfMeasure } from './material-definition.ts';

const references = { units: new Set(['pcs', 'kg']) };
const harness = {
  id: 'wiring-harness',
  name: 'Main wiring harness',
  unit: 'pcs',
  class: 'component',
  tracking: 'lot',
};

describe('validateMaterialDefinition', () => {
  it('accepts a lot-tracked component in a known unit', () => {
    const result = validateMaterialDefinition(harness, references);
    assert.ok(result.ok);
    assert.equal(result.value.tracking, 'lot');
  });

  it('refuses a unit that is not defined', () => {
    const result = validateMaterialDefinition({ ...harness, unit: 'pc' }, references);
    assert.ok(!result.ok);
    assert.deepEqual(result.error.issues, [
      { path: 'unit', message: "unit 'pc' is not defined; add it under units or fix the id" },
    ]);
  });

  it('refuses an unknown class and lists the allowed ones', () => {
    const result = validateMaterialDefinition({ ...harness, class: 'purchased' }, references);
    assert.ok(!result.ok);
    assert.deepEqual(result.error.issues, [
      {
        path: 'class',
        message: "class must be one of raw, component, intermediate, finished, consumable; got 'purchased'",
      },
    ]);
  });

  it('refuses unknown fields and reports missing ones', () => {
    const { tracking: _tracking, ...withoutTracking } = harness;
    const result = validateMaterialDefinition({ ...withoutTracking, supplier: 'ACME' }, references);
    assert.ok(!result.ok);
    assert.deepEqual(result.error.issues, [
      { path: 'tracking', message: 'tracking is required: one of lot, serial, none' },
      { path: 'supplier', message: 'supplier is not a known field; remove it or correct its spelling' },
    ]);
  });
});

describe('validateUnitOfMeasure', () => {
  it('refuses a blank name', () => {
    const result = validateUnitOfMeasure({ id: 'kg', name: '   ' });
    assert.ok(!result.ok);
    assert.deepEqual(result.error.issues, [{ path: 'name', message: 'name must not be empty' }]);
  });

  it('accepts a unit', () => {
    assert.deepEqual(validateUnitOfMeasure({ id: 'kg', name: 'kilogram' }), {
      ok: true,
      value: { id: 'kg', name: 'kilogram' },
    });
  });
});

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { EquipmentNode } from '../equipment/equipment.ts';
import type { MaterialNode } from '../material/material-definition.ts';
import { checkMalformedProductReferences, validateProduct, type ProductReferences } from './product.ts';

const references: ProductReferences = {
  units: new Set(['pcs', 'l', 'degC', 'um', 'Nm']),
  qualifications: new Set(['paint-oven-operation', 'torque-tooling']),
  materials: new Map<string, MaterialNode>([
    ['compact-sedan', { class: 'finished', unit: 'pcs' }],
    ['painted-body', { class: 'intermediate', unit: 'pcs' }],
    ['clearcoat', { class: 'consumable', unit: 'l' }],
  ]),
  equipment: new Map<string, EquipmentNode>([
    ['paint-shop', { level: 'Area', parent: 'riverside' }],
    ['paint-line-1', { level: 'WorkCenter', parent: 'paint-shop' }],
    ['paint-oven-1', { level: 'WorkUnit', parent: 'paint-line-1' }],
    ['assembly-line-1', { level: 'WorkCenter', parent: 'final-assembly' }],
    ['asm-station-20', { level: 'WorkUnit', parent: 'assembly-line-1' }],
  ]),
};

type Json = Record<string, unknown>;
const cure = (overrides: Json = {}): Json => ({
  id: '30',
  name: 'Cure paint',
  workCenter: 'paint-line-1',
  workUnits: ['paint-oven-1'],
  standardCycleTimeSeconds: 1800,
  qualifications: ['paint-oven-operation'],
  parameters: [{ name: 'oven-temperature', value: 140, unit: 'degC', min: 130, max: 150 }],
  bom: [{ material: 'clearcoat', quantity: 2.1, unit: 'l' }],
  characteristics: [
    {
      id: 'film-thickness',
      name: 'Dry film thickness',
      kind: 'numeric',
      unit: 'um',
      lsl: 90,
      target: 110,
      usl: 140,
    },
  ],
  ...overrides,
});
const product = (...operations: Json[]): Json => ({
  id: 'compact-sedan',
  name: 'Compact sedan',
  material: 'compact-sedan',
  routing: { operations: operations.length > 0 ? operations : [cure()] },
});
const withCharacteristic = (c: Json): Json =>
  product(cure({ characteristics: [{ id: 'c1', name: 'C', ...c }] }));
const withParameter = (p: Json): Json => product(cure({ parameters: [{ name: 'p1', ...p }] }));

/** The issues of a rejected product, as `path: message` lines for readable failures. */
function problems(input: unknown): string[] {
  const result = validateProduct(input, references);
  assert.ok(!result.ok, 'expected the product to be refused');
  return (result.error.issues ?? []).map((i) => `${i.path}: ${i.message}`);
}

describe('validateProduct', () => {
  it('accepts a routing whose references all resolve', () => {
    const result = validateProduct(product(), references);
    assert.ok(result.ok);
    assert.equal(result.value.routing.operations[0]?.characteristics[0]?.usl, 140);
  });

  it('fills absent lists so consumers need no undefined checks', () => {
    const result = validateProduct(
      product({ id: '10', name: 'Inspect', workCenter: 'paint-line-1', standardCycleTimeSeconds: 30 }),
      references,
    );
    assert.ok(result.ok);
    const [op] = result.value.routing.operations;
    assert.deepEqual(
      [op?.qualifications, op?.parameters, op?.bom, op?.characteristics, op?.workUnits],
      [[], [], [], [], undefined],
    );
  });

  it('refuses a routing that names a missing work center', () => {
    assert.deepEqual(problems(product(cure({ workCenter: 'paint-line', workUnits: undefined }))), [
      "routing.operations[0].workCenter: work center 'paint-line' does not exist; define it under equipment or fix the id",
    ]);
  });

  it('refuses a work center that is not a WorkCenter', () => {
    assert.deepEqual(problems(product(cure({ workCenter: 'paint-shop', workUnits: undefined }))), [
      "routing.operations[0].workCenter: 'paint-shop' is an Area, not a WorkCenter; name the line or cell (level WorkCenter) that runs this step",
    ]);
  });

  it('refuses a work unit of another work center, a non-machine and an unknown one', () => {
    assert.deepEqual(problems(product(cure({ workUnits: ['asm-station-20', 'paint-line-1', 'oven-9'] }))), [
      "routing.operations[0].workUnits[0]: work unit 'asm-station-20' belongs to 'assembly-line-1', not to work center 'paint-line-1'; list only machines of 'paint-line-1' or change workCenter",
      "routing.operations[0].workUnits[1]: 'paint-line-1' is a WorkCenter, not a WorkUnit; list only machines (level WorkUnit) here",
      "routing.operations[0].workUnits[2]: work unit 'oven-9' does not exist; define it under equipment or fix the id",
    ]);
  });

  it('refuses repeated operation ids within a routing', () => {
    assert.deepEqual(problems(product(cure(), cure())), [
      "routing.operations[1].id: id '30' already appears at operations[0].id; operation ids within a routing must be unique",
    ]);
  });

  it('refuses a routing without operations', () => {
    assert.deepEqual(problems({ ...product(), routing: { operations: [] } }), [
      'routing.operations: operations needs at least one operation',
    ]);
  });

  it('refuses an unquoted numeric step id with a hint for YAML authors', () => {
    assert.deepEqual(problems(product(cure({ id: 10 }))), [
      "routing.operations[0].id: id must be text; got the number 10 — in YAML write it in quotes ('10')",
    ]);
  });

  it('refuses a product whose material is not a finished material', () => {
    assert.deepEqual(problems({ ...product(), material: 'painted-body' }), [
      "material: material 'painted-body' is an intermediate material; a product yields a finished material — set its class to finished or name another material",
    ]);
  });

  it('refuses unknown qualifications, units and materials', () => {
    const op = cure({
      qualifications: ['paint-oven-operation', 'forklift'],
      parameters: [{ name: 'oven-temperature', value: 140, unit: 'F' }],
      bom: [{ material: 'primer', quantity: 1 }],
    });
    assert.deepEqual(problems(product(op)), [
      "routing.operations[0].qualifications[1]: qualification 'forklift' is not defined; add it under qualifications or fix the id",
      "routing.operations[0].parameters[0].unit: unit 'F' is not defined; add it under units or fix the id",
      "routing.operations[0].bom[0].material: material 'primer' does not exist; define it under materials or fix the id",
    ]);
  });

  it("refuses a BOM line in a unit other than the material's own", () => {
    assert.deepEqual(
      problems(product(cure({ bom: [{ material: 'clearcoat', quantity: 2, unit: 'pcs' }] }))),
      [
        "routing.operations[0].bom[0].unit: unit 'pcs' differs from 'l', the unit of material 'clearcoat'; quantities are kept in the material's own unit — use 'l' or omit unit",
      ],
    );
  });

  it('refuses a BOM quantity that is not positive', () => {
    assert.deepEqual(problems(product(cure({ bom: [{ material: 'clearcoat', quantity: 0 }] }))), [
      'routing.operations[0].bom[0].quantity: quantity must be greater than 0',
    ]);
  });
});

describe('characteristic limits', () => {
  const at = 'routing.operations[0].characteristics[0]';

  it('refuses a numeric characteristic without any limit', () => {
    assert.deepEqual(problems(withCharacteristic({ kind: 'numeric', target: 5 })), [
      `${at}: characteristics[0] needs lsl, usl or both: a numeric characteristic is judged against its limits`,
    ]);
  });

  it('accepts a one-sided limit', () => {
    assert.ok(validateProduct(withCharacteristic({ kind: 'numeric', lsl: 5, target: 6 }), references).ok);
  });

  it('refuses a lower limit above the upper limit', () => {
    assert.deepEqual(problems(withCharacteristic({ kind: 'numeric', lsl: 140, usl: 90 })), [
      `${at}.lsl: lsl must not exceed usl (140 > 90); swap them`,
    ]);
  });

  it('refuses a target outside the limits', () => {
    assert.deepEqual(problems(withCharacteristic({ kind: 'numeric', lsl: 90, usl: 140, target: 150 })), [
      `${at}.target: target 150 lies outside the limits 90..140; move target inside or widen the limits`,
    ]);
  });

  it('refuses limits on an attribute characteristic', () => {
    assert.deepEqual(problems(withCharacteristic({ kind: 'attribute', usl: 1, target: 0 })), [
      `${at}.usl: usl must be absent: an attribute characteristic is judged pass/fail; remove usl or make kind numeric`,
      `${at}.target: target must be absent: an attribute characteristic is judged pass/fail; remove target or make kind numeric`,
    ]);
  });

  it('refuses repeated characteristic ids within an operation', () => {
    const c = { id: 'gloss', name: 'Gloss', kind: 'attribute' };
    assert.deepEqual(problems(product(cure({ characteristics: [c, c] }))), [
      "routing.operations[0].characteristics[1].id: id 'gloss' already appears at characteristics[0].id; characteristic ids within an operation must be unique",
    ]);
  });
});

describe('parameter limits', () => {
  const at = 'routing.operations[0].parameters[0]';

  it('refuses min above max', () => {
    assert.deepEqual(problems(withParameter({ value: 140, min: 150, max: 130 })), [
      `${at}.min: min must not exceed max (150 > 130); swap them`,
    ]);
  });

  it('refuses a value outside its own limits', () => {
    assert.deepEqual(problems(withParameter({ value: 160, min: 130, max: 150 })), [
      `${at}.value: value 160 is above max 150; lower value or raise max`,
    ]);
  });

  it('refuses limits on a text value', () => {
    assert.deepEqual(problems(withParameter({ value: 'SILVER', max: 3 })), [
      `${at}.max: max applies only to a numeric value; remove max or make value a number`,
    ]);
  });

  it('refuses a value that is neither number, text nor true/false, and a missing one', () => {
    assert.deepEqual(problems(product(cure({ parameters: [{ name: 'a', value: [1] }, { name: 'b' }] }))), [
      `${at}.value: value must be a number, text, or true/false`,
      'routing.operations[0].parameters[1].value: value is required',
    ]);
  });
});

describe('checkMalformedProductReferences', () => {
  it('checks an operation whose only fault is an unknown field', () => {
    const input = product(cure({ id: 10 }), cure({ id: '40', qualifications: ['forklift'], cycleTime: 5 }));
    assert.deepEqual(checkMalformedProductReferences(input, references, 'products[0]'), [
      {
        path: 'products[0].routing.operations[1].qualifications[0]',
        message: "qualification 'forklift' is not defined; add it under qualifications or fix the id",
      },
    ]);
  });

  it('still checks the well-formed operations of a malformed product', () => {
    const input = product(
      cure({ id: 10 }),
      cure({ id: '40', workCenter: 'paint-line', workUnits: undefined }),
    );
    assert.deepEqual(checkMalformedProductReferences(input, references, 'products[0]'), [
      {
        path: 'products[0].routing.operations[1].workCenter',
        message: "work center 'paint-line' does not exist; define it under equipment or fix the id",
      },
    ]);
  });
});

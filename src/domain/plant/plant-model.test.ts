import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { EquipmentNode } from '../equipment/equipment.ts';
import type { MaterialNode } from '../material/material-definition.ts';
import { validatePlantModel, type KnownIds } from './plant-model.ts';

type Json = Record<string, unknown>;

/** A small valid plant: one line, one machine, one product with one step. */
function plant(): Json {
  return {
    units: [{ id: 'pcs', name: 'pieces' }],
    qualifications: [{ id: 'welding', name: 'Welding' }],
    equipment: [
      { id: 'acme', name: 'Acme', level: 'Enterprise' },
      { id: 'riverside', name: 'Riverside', level: 'Site', parent: 'acme' },
      { id: 'body-shop', name: 'Body shop', level: 'Area', parent: 'riverside' },
      { id: 'body-line-1', name: 'Body line 1', level: 'WorkCenter', parent: 'body-shop' },
      { id: 'weld-robot-1', name: 'Weld robot 1', level: 'WorkUnit', parent: 'body-line-1' },
    ],
    materials: [
      { id: 'body-panel', name: 'Body panel', unit: 'pcs', class: 'intermediate', tracking: 'lot' },
      { id: 'welded-body', name: 'Welded body', unit: 'pcs', class: 'finished', tracking: 'serial' },
    ],
    products: [
      {
        id: 'welded-body',
        name: 'Welded body',
        material: 'welded-body',
        routing: {
          operations: [
            {
              id: '10',
              name: 'Weld',
              workCenter: 'body-line-1',
              workUnits: ['weld-robot-1'],
              standardCycleTimeSeconds: 90,
              qualifications: ['welding'],
              bom: [{ material: 'body-panel', quantity: 14 }],
            },
          ],
        },
      },
    ],
    personnel: [
      {
        id: 'op-anna',
        name: 'Anna',
        username: 'anna',
        qualifications: [{ qualification: 'welding', issued: '2025-01-01', expires: '2026-12-31' }],
      },
    ],
  };
}

const list = (doc: Json, section: string): Json[] => doc[section] as Json[];
const operation = (doc: Json): Json => ((list(doc, 'products')[0]!.routing as Json).operations as Json[])[0]!;

/** The issues of a refused document as `path: message` lines. */
function problems(doc: unknown, existing?: KnownIds): string[] {
  const result = validatePlantModel(doc, existing);
  assert.ok(!result.ok, 'expected the plant model to be refused');
  assert.equal(result.error.code, 'LOOM_PLANT_INVALID');
  return (result.error.issues ?? []).map((i) => `${i.path}: ${i.message}`);
}
const paths = (doc: unknown, existing?: KnownIds): string[] =>
  problems(doc, existing).map((p) => p.split(': ')[0]!);

describe('validatePlantModel', () => {
  it('accepts a valid document', () => {
    const result = validatePlantModel(plant());
    assert.ok(result.ok);
    assert.equal(result.value.equipment.length, 5);
    assert.equal(result.value.products[0]?.routing.operations[0]?.workCenter, 'body-line-1');
  });

  it('accepts an empty document and fills every section with an empty list', () => {
    assert.deepEqual(validatePlantModel({}), {
      ok: true,
      value: {
        units: [],
        qualifications: [],
        equipment: [],
        materials: [],
        products: [],
        personnel: [],
        signals: [],
      },
    });
  });

  it('refuses a document that is not a mapping', () => {
    assert.deepEqual(problems(null), [
      ': plant model must be a mapping with any of units, qualifications, equipment, materials, products, personnel, signals; got null (an empty value)',
    ]);
  });

  it('refuses an unknown section and a section that is not a list', () => {
    const doc = { ...plant(), machines: [], units: { pcs: 'pieces' } };
    assert.deepEqual(problems(doc).slice(0, 2), [
      'machines: machines is not a known section; use units, qualifications, equipment, materials, products, personnel, signals',
      'units: units must be a list; got a mapping',
    ]);
  });

  it('reports every problem, counted in the message, each at its location in the file', () => {
    const doc = plant();
    list(doc, 'equipment')[4]!.parent = 'body-shop';
    list(doc, 'materials')[0]!.unit = 'pc';
    operation(doc).workCenter = 'paint-line';
    const result = validatePlantModel(doc);
    assert.ok(!result.ok);
    assert.equal(result.error.message, 'plant model has 4 problems');
    assert.deepEqual(
      result.error.issues?.map((i) => i.path),
      [
        'equipment[4].parent',
        'materials[0].unit',
        'products[0].routing.operations[0].workCenter',
        // weld-robot-1 now sits under the Area, so it is no machine of body-line-1 any more.
        'products[0].routing.operations[0].workUnits[0]',
      ],
    );
    assert.equal(
      result.error.issues?.[2]?.message,
      "work center 'paint-line' does not exist; define it under equipment or fix the id",
    );
  });

  it('refuses a duplicate id within a kind but allows the same id in different kinds', () => {
    const doc = plant();
    list(doc, 'units').push({ id: 'pcs', name: 'pieces again' });
    assert.deepEqual(problems(doc), [
      "units[1].id: id 'pcs' is already defined at units[0]; ids must be unique within units — rename one or merge them",
    ]);
  });

  it('refuses a workCenter that is not a WorkCenter', () => {
    const doc = plant();
    operation(doc).workCenter = 'weld-robot-1';
    delete operation(doc).workUnits;
    assert.deepEqual(problems(doc), [
      "products[0].routing.operations[0].workCenter: 'weld-robot-1' is a WorkUnit, not a WorkCenter; name the line or cell (level WorkCenter) that runs this step",
    ]);
  });

  it('refuses equipment levels out of order and a parent cycle', () => {
    const doc = plant();
    list(doc, 'equipment')[2]!.parent = 'body-line-1';
    const issues = problems(doc);
    assert.deepEqual(issues, [
      "equipment[2].parent: parent 'body-line-1' is a WorkCenter, but the parent of an Area must be a Site; pick a Site or change level",
      "equipment[2].parent: parent chain loops back to 'body-shop' (body-shop → body-line-1 → body-shop); equipment cannot be its own ancestor — point one of these at a real parent",
    ]);
  });

  it('rejects unknown fields at their own path and still checks the rest of the routing', () => {
    const doc = plant();
    operation(doc).cycleTime = 90;
    operation(doc).qualifications = ['welding', 'brazing'];
    assert.deepEqual(problems(doc), [
      'products[0].routing.operations[0].cycleTime: cycleTime is not a known field; remove it or correct its spelling',
      "products[0].routing.operations[0].qualifications[1]: qualification 'brazing' is not defined; add it under qualifications or fix the id",
    ]);
  });

  it('reports a malformed definition once, without misleading unknown-id issues for references to it', () => {
    const doc = plant();
    list(doc, 'equipment')[3]!.level = 'Line';
    assert.deepEqual(paths(doc), ['equipment[3].level']);
  });

  it('refuses a username used by two people', () => {
    const doc = plant();
    list(doc, 'personnel').push({ id: 'op-ann', name: 'Ann', username: 'anna' });
    assert.deepEqual(problems(doc), [
      "personnel[1].username: username 'anna' already belongs to personnel[0]; a login identifies one person — give each their own",
    ]);
  });

  it('reports issues in document order, whatever rule found them', () => {
    const doc = plant();
    list(doc, 'personnel')[0]!.qualifications = [
      { qualification: 'brazing', issued: '2025-01-01', expires: null },
    ];
    list(doc, 'units')[0]!.name = '';
    assert.deepEqual(paths(doc), ['units[0].name', 'personnel[0].qualifications[0].qualification']);
  });
});

describe('validatePlantModel with stored ids', () => {
  const stored: KnownIds = {
    units: new Set(['pcs', 'kg']),
    qualifications: new Set(['welding']),
    equipment: new Map<string, EquipmentNode>([
      ['acme', { level: 'Enterprise' }],
      ['riverside', { level: 'Site', parent: 'acme' }],
      ['paint-shop', { level: 'Area', parent: 'riverside' }],
      ['paint-line-1', { level: 'WorkCenter', parent: 'paint-shop' }],
    ]),
    materials: new Map<string, MaterialNode>([['paint', { class: 'consumable', unit: 'kg' }]]),
  };

  it('resolves references to ids already stored', () => {
    const doc = {
      equipment: [{ id: 'oven-1', name: 'Oven 1', level: 'WorkUnit', parent: 'paint-line-1' }],
      materials: [
        { id: 'painted-body', name: 'Painted body', unit: 'pcs', class: 'finished', tracking: 'serial' },
      ],
      products: [
        {
          id: 'painted-body',
          name: 'Painted body',
          material: 'painted-body',
          routing: {
            operations: [
              {
                id: '20',
                name: 'Paint',
                workCenter: 'paint-line-1',
                workUnits: ['oven-1'],
                standardCycleTimeSeconds: 600,
                qualifications: ['welding'],
                bom: [{ material: 'paint', quantity: 3.5, unit: 'kg' }],
              },
            ],
          },
        },
      ],
    };
    const result = validatePlantModel(doc, stored);
    assert.ok(result.ok, JSON.stringify(!result.ok && result.error.issues));
  });

  it('applies the level rules to a stored parent', () => {
    const doc = { equipment: [{ id: 'oven-1', name: 'Oven 1', level: 'WorkUnit', parent: 'paint-shop' }] };
    assert.deepEqual(problems(doc, stored), [
      "equipment[0].parent: parent 'paint-shop' is an Area, but the parent of a WorkUnit must be a WorkCenter; pick a WorkCenter or change level",
    ]);
  });

  it('finds a cycle that runs through stored equipment', () => {
    const doc = {
      equipment: [{ id: 'riverside', name: 'Riverside', level: 'Site', parent: 'paint-line-1' }],
    };
    assert.ok(
      problems(doc, stored).includes(
        "equipment[0].parent: parent chain loops back to 'riverside' (riverside → paint-line-1 → paint-shop → riverside); equipment cannot be its own ancestor — point one of these at a real parent",
      ),
    );
  });

  it('refuses a redefinition that strands stored children', () => {
    const doc = { equipment: [{ id: 'paint-shop', name: 'Paint shop', level: 'Site', parent: 'acme' }] };
    assert.deepEqual(paths(doc, stored), ['equipment[0].level']);
  });

  it('still refuses ids that are neither in the file nor stored', () => {
    const doc = {
      materials: [{ id: 'primer', name: 'Primer', unit: 'l', class: 'consumable', tracking: 'lot' }],
    };
    assert.deepEqual(problems(doc, stored), [
      "materials[0].unit: unit 'l' is not defined; add it under units or fix the id",
    ]);
  });
});

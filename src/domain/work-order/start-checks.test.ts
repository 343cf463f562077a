import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fromWhole } from '../shared/quantity.ts';
import { checkStart, type StartFacts } from './start-checks.ts';

const base: StartFacts = {
  today: '2026-11-25',
  requiredQualifications: ['welding'],
  operator: {
    personId: 'anna',
    qualifications: [{ qualification: 'welding', issued: '2025-01-01', expires: '2027-01-01' }],
  },
  workUnit: { id: 'weld-robot-1', state: 'Idle' },
  predecessor: null,
  lots: [{ id: 'L1', status: 'Released' }],
};

describe('start checks', () => {
  it('lets a qualified operator start on an able machine', () => {
    assert.deepEqual(checkStart(base), []);
  });
  it('refuses when the qualification expired yesterday, naming it and its expiry date', () => {
    const r = checkStart({
      ...base,
      operator: {
        personId: 'jonas',
        qualifications: [{ qualification: 'welding', issued: '2024-01-01', expires: '2026-11-24' }],
      },
    });
    assert.equal(r.length, 1);
    assert.equal(r[0]?.code, 'LOOM_START_NOT_QUALIFIED');
    assert.match(r[0].message, /'welding' expired on 2026-11-24/);
  });
  it('names the expired holding, not a renewal that is not valid yet', () => {
    const r = checkStart({
      ...base,
      operator: {
        personId: 'jonas',
        qualifications: [
          { qualification: 'welding', issued: '2024-11-26', expires: '2026-11-24' },
          { qualification: 'welding', issued: '2026-11-27', expires: '2028-11-26' },
        ],
      },
    });
    assert.equal(r.length, 1);
    assert.equal(
      r[0]!.message,
      "jonas's qualification 'welding' expired on 2026-11-24, and its renewal is valid only from 2026-11-27.",
    );
  });
  it('refuses a lot to be consumed whose material is not in the bill of materials', () => {
    const r = checkStart({
      ...base,
      lots: [
        { id: 'PANEL-1', status: 'Released', material: 'body-panel' },
        { id: 'COIL-1', status: 'Released', material: 'steel-coil' },
      ],
      bomMaterials: ['body-panel', 'seam-sealer'],
    });
    assert.deepEqual(
      r.map((x) => [x.code, x.subject]),
      [['LOOM_START_LOT_NOT_IN_BOM', 'COIL-1']],
    );
    assert.match(
      r[0]!.message,
      /COIL-1 is steel-coil, which is not in the operation's bill of materials \(body-panel, seam-sealer\)/,
    );
  });
  it('accepts a qualification on its last valid day', () => {
    const r = checkStart({
      ...base,
      operator: {
        personId: 'x',
        qualifications: [{ qualification: 'welding', issued: '2024-01-01', expires: '2026-11-25' }],
      },
    });
    assert.deepEqual(r, []);
  });
  it('lets a trainee start only with a qualified trainer co-signing', () => {
    const trainee = { personId: 'tim', qualifications: [] };
    assert.equal(checkStart({ ...base, operator: trainee })[0]?.code, 'LOOM_START_NOT_QUALIFIED');
    assert.deepEqual(checkStart({ ...base, operator: trainee, trainer: base.operator }), []);
    const unqualifiedTrainer = { personId: 'bob', qualifications: [] };
    assert.match(
      checkStart({ ...base, operator: trainee, trainer: unqualifiedTrainer })[0]!.message,
      /trainer bob/,
    );
  });
  it('refuses a machine that is Down or Held, with the reason', () => {
    const r = checkStart({
      ...base,
      workUnit: { id: 'oven-1', state: 'Down', stateReason: 'over temperature' },
    });
    assert.equal(r[0]?.code, 'LOOM_START_EQUIPMENT_UNAVAILABLE');
    assert.match(r[0].message, /Down \(over temperature\)/);
    assert.equal(checkStart({ ...base, workUnit: { id: 'oven-1', state: 'Held' } }).length, 1);
  });
  it('refuses when the previous operation produced too little', () => {
    const r = checkStart({
      ...base,
      predecessor: { operationId: '10', goodQuantity: fromWhole(8), needed: fromWhole(10) },
    });
    assert.match(r[0]!.message, /produced 8 good, 10 needed/);
  });
  it('refuses lots that are not Released, and reports every problem at once', () => {
    const r = checkStart({
      ...base,
      workUnit: { id: 'w', state: 'Held' },
      lots: [
        { id: 'L1', status: 'Quarantine' },
        { id: 'L2', status: 'Blocked' },
      ],
    });
    assert.deepEqual(
      r.map((x) => x.code),
      ['LOOM_START_EQUIPMENT_UNAVAILABLE', 'LOOM_START_LOT_NOT_RELEASED', 'LOOM_START_LOT_NOT_RELEASED'],
    );
  });
});

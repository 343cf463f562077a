import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { qualificationStatus } from '../personnel/person.ts';
import { validatePlantModel, type PlantModel } from './plant-model.ts';

const file = new URL('../../../examples/plant.yaml', import.meta.url);

function examplePlant(): PlantModel {
  const result = validatePlantModel(parse(readFileSync(file, 'utf8')));
  assert.deepEqual(result.ok ? [] : result.error.issues, []);
  assert.ok(result.ok);
  return result.value;
}

describe('examples/plant.yaml', () => {
  it('validates with zero issues', () => {
    const plant = examplePlant();
    assert.ok(plant.equipment.length > 10);
    assert.ok(plant.products.length >= 1);
  });

  it('routes the car through weld, paint, assembly and end-of-line test', () => {
    const car = examplePlant().products.find((p) => p.id === 'compact-sedan');
    const centers = car?.routing.operations.map((op) => op.workCenter);
    assert.deepEqual([...new Set(centers)], ['body-line-1', 'paint-line-1', 'assembly-line-1', 'eol-cell-1']);
    const oven = car?.routing.operations.find((op) => op.workUnits?.includes('paint-oven-1'));
    assert.ok(oven?.parameters.some((p) => p.name === 'oven-temperature' && p.unit === 'degC'));
    assert.ok(
      oven?.characteristics.some(
        (c) => c.id === 'film-thickness' && c.lsl !== undefined && c.usl !== undefined,
      ),
    );
  });

  it('keeps press-1 as a Modbus-only legacy work unit', () => {
    const press = examplePlant().equipment.find((e) => e.id === 'press-1');
    assert.equal(press?.level, 'WorkUnit');
    assert.ok(press?.capabilities?.includes('modbus'));
  });

  it('holds one lapsed qualification, expired from the day after its last valid day', () => {
    const jonas = examplePlant().personnel.find((p) => p.id === 'op-jonas-weber');
    const torque = jonas?.qualifications.find((q) => q.qualification === 'torque-tooling');
    assert.ok(torque);
    assert.equal(qualificationStatus(torque, '2025-02-28'), 'valid');
    assert.equal(qualificationStatus(torque, '2025-03-01'), 'expired');
  });

  it('has a trainee with no qualifications', () => {
    const trainees = examplePlant().personnel.filter((p) => p.qualifications.length === 0);
    assert.equal(trainees.length, 1);
  });
});

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { checkEquipmentHierarchy, validateEquipment, type EquipmentNode } from './equipment.ts';

const plant = (): Map<string, EquipmentNode | null> =>
  new Map<string, EquipmentNode | null>([
    ['acme', { level: 'Enterprise' }],
    ['riverside', { level: 'Site', parent: 'acme' }],
    ['body-shop', { level: 'Area', parent: 'riverside' }],
    ['body-line-1', { level: 'WorkCenter', parent: 'body-shop' }],
    ['weld-robot-1', { level: 'WorkUnit', parent: 'body-line-1' }],
  ]);

describe('checkEquipmentHierarchy', () => {
  it('accepts a complete Enterprise › Site › Area › WorkCenter › WorkUnit chain', () => {
    assert.deepEqual(checkEquipmentHierarchy(plant()), []);
  });

  it('refuses an Enterprise that has a parent', () => {
    const equipment = plant().set('acme', { level: 'Enterprise', parent: 'riverside' });
    const issues = checkEquipmentHierarchy(equipment);
    assert.ok(issues.some((i) => i.path === 'acme.parent' && /Enterprise is the top/.test(i.message)));
  });

  it('refuses a Site without a parent Enterprise', () => {
    const issues = checkEquipmentHierarchy(plant().set('riverside', { level: 'Site' }));
    assert.deepEqual(issues, [
      {
        path: 'riverside.parent',
        message: 'parent is required: a Site sits under an Enterprise; name it in parent',
      },
    ]);
  });

  it('refuses a WorkUnit placed directly under an Area', () => {
    const issues = checkEquipmentHierarchy(
      plant().set('weld-robot-1', { level: 'WorkUnit', parent: 'body-shop' }),
    );
    assert.equal(issues.length, 1);
    assert.equal(issues[0]!.path, 'weld-robot-1.parent');
    assert.match(
      issues[0]!.message,
      /'body-shop' is an Area, but the parent of a WorkUnit must be a WorkCenter/,
    );
  });

  it('refuses a parent that does not exist', () => {
    const issues = checkEquipmentHierarchy(
      plant().set('weld-robot-1', { level: 'WorkUnit', parent: 'body-line-9' }),
    );
    assert.deepEqual(issues, [
      {
        path: 'weld-robot-1.parent',
        message: "parent 'body-line-9' does not exist; define it under equipment or fix the id",
      },
    ]);
  });

  it('reports a parent cycle once, at its first member, naming the loop', () => {
    const equipment = plant()
      .set('body-shop', { level: 'Area', parent: 'body-line-1' })
      .set('body-line-1', { level: 'WorkCenter', parent: 'body-shop' });
    const cycles = checkEquipmentHierarchy(equipment).filter((i) => /loops/.test(i.message));
    assert.equal(cycles.length, 1);
    assert.equal(cycles[0]!.path, 'body-shop.parent');
    assert.match(cycles[0]!.message, /body-shop → body-line-1 → body-shop/);
  });

  it('reports equipment that is its own parent as a cycle', () => {
    const issues = checkEquipmentHierarchy(
      plant().set('body-line-1', { level: 'WorkCenter', parent: 'body-line-1' }),
    );
    assert.ok(
      issues.some((i) => i.path === 'body-line-1.parent' && /loops back to 'body-line-1'/.test(i.message)),
    );
  });

  it('does not report equipment that is only context', () => {
    const equipment = plant().set('old-press', { level: 'WorkUnit', parent: 'gone' });
    const issues = checkEquipmentHierarchy(equipment, (id) => (id === 'old-press' ? undefined : `eq:${id}`));
    assert.deepEqual(issues, []);
  });

  it('refuses a level change that strands a stored child', () => {
    const equipment = plant().set('body-line-1', { level: 'Area', parent: 'riverside' });
    const issues = checkEquipmentHierarchy(equipment, (id) =>
      id === 'body-line-1' ? 'equipment[0]' : undefined,
    );
    assert.deepEqual(issues, [
      {
        path: 'equipment[0].level',
        message:
          "level Area does not fit stored child 'weld-robot-1', a WorkUnit whose parent must be a WorkCenter; keep level WorkCenter or move that child first",
      },
    ]);
  });

  it('counts a malformed parent as existing without guessing its level', () => {
    assert.deepEqual(checkEquipmentHierarchy(plant().set('body-line-1', null)), []);
  });
});

describe('validateEquipment', () => {
  const stored = new Map<string, EquipmentNode>(
    [...plant()].flatMap(([id, n]) => (n ? [[id, n] as const] : [])),
  );

  it('accepts a new work unit under an existing work center', () => {
    const result = validateEquipment(
      {
        id: 'weld-robot-2',
        name: 'Weld robot 2',
        level: 'WorkUnit',
        parent: 'body-line-1',
        capabilities: ['opcua'],
      },
      stored,
    );
    assert.ok(result.ok);
    assert.equal(result.value.parent, 'body-line-1');
  });

  it('rejects unknown fields, naming each one at its own path', () => {
    const result = validateEquipment(
      { id: 'x', name: 'X', level: 'Enterprise', colour: 'red', Parent: 'a' },
      stored,
    );
    assert.ok(!result.ok);
    assert.equal(result.error.code, 'LOOM_PLANT_INVALID');
    assert.deepEqual(
      result.error.issues?.map((i) => i.path),
      ['colour', 'Parent'],
    );
    assert.match(result.error.issues?.[0]?.message ?? '', /colour is not a known field/);
  });

  it('rejects an id with characters that need escaping in topics and URLs', () => {
    const result = validateEquipment({ id: 'paint line/1', name: 'P', level: 'Enterprise' }, stored);
    assert.ok(!result.ok);
    assert.deepEqual(result.error.issues, [
      {
        path: 'id',
        message: "id must be 1–64 letters, digits, '.', '_' or '-', starting with a letter or digit",
      },
    ]);
  });

  it('rejects an unknown level and lists the allowed ones', () => {
    const result = validateEquipment({ id: 'l1', name: 'Line', level: 'Line', parent: 'body-shop' }, stored);
    assert.ok(!result.ok);
    assert.match(
      result.error.issues?.[0]?.message ?? '',
      /^level must be one of Enterprise, Site, Area, WorkCenter, WorkUnit; got 'Line'/,
    );
  });

  it('checks an update against the stored tree it replaces part of', () => {
    const result = validateEquipment(
      { id: 'body-shop', name: 'Body shop', level: 'Area', parent: 'weld-robot-1' },
      stored,
    );
    assert.ok(!result.ok);
    assert.equal(result.error.message, 'equipment has 2 problems');
    assert.deepEqual(
      result.error.issues?.map((i) => i.path),
      ['parent', 'parent'],
    );
    assert.match(
      result.error.issues?.[1]?.message ?? '',
      /body-shop → weld-robot-1 → body-line-1 → body-shop/,
    );
  });
});

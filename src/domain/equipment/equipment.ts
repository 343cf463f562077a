import { z } from 'zod';
import { atPath, parseAt } from '../shared/field-issues.ts';
import { Description, Identifier, Name } from '../shared/fields.ts';
import { ok, type FieldIssue, type Result } from '../shared/result.ts';
import { plantInvalid } from '../plant/plant-errors.ts';

/** ISA-95 role-based equipment hierarchy, top down. */
export const EQUIPMENT_LEVELS = ['Enterprise', 'Site', 'Area', 'WorkCenter', 'WorkUnit'] as const;
export type EquipmentLevel = (typeof EQUIPMENT_LEVELS)[number];

/**
 * Each level sits directly under the one above it. ISA-95 allows skipping levels; Loom does not,
 * because Unified Namespace topics (`loom/<site>/<area>/<line>/<cell>`) need every level present.
 */
const PARENT_LEVEL: Readonly<Record<EquipmentLevel, EquipmentLevel | null>> = {
  Enterprise: null,
  Site: 'Enterprise',
  Area: 'Site',
  WorkCenter: 'Area',
  WorkUnit: 'WorkCenter',
};

/** The level an equipment's parent must have; null for the Enterprise, which has no parent. */
export function parentLevelOf(level: EquipmentLevel): EquipmentLevel | null {
  return PARENT_LEVEL[level];
}

export const EquipmentSchema = z.strictObject({
  id: Identifier,
  name: Name,
  level: z.enum(EQUIPMENT_LEVELS),
  parent: Identifier.optional(),
  description: Description.optional(),
  /** What the equipment can do or speak (`spot-welding`, `modbus`); matched by dispatch and connectors. */
  capabilities: z.array(Identifier).optional(),
});
export type Equipment = z.output<typeof EquipmentSchema>;

/** What the hierarchy rules need to know about one equipment. */
export interface EquipmentNode {
  readonly level: EquipmentLevel;
  readonly parent?: string | undefined;
}

/**
 * Equipment by id. `null` marks an id that is defined but whose definition is malformed: it
 * counts as existing, and the checks that would need its level or parent are skipped rather
 * than guessed (the malformed definition is reported on its own).
 */
export type EquipmentCatalog = ReadonlyMap<string, EquipmentNode | null>;

/** "an Area", "a WorkCenter". */
export const withArticle = (word: string): string => (/^[aeiou]/i.test(word) ? `an ${word}` : `a ${word}`);

/**
 * Level rules and parent-chain cycles over a whole equipment catalog.
 *
 * `pathOf` says where an id's definition sits in the input under check (`equipment[3]`); ids it
 * returns undefined for are context, such as equipment already stored, and are not reported
 * themselves. Stored equipment whose parent is under check is still checked, so that changing a
 * level cannot silently orphan a stored child.
 */
export function checkEquipmentHierarchy(
  equipment: EquipmentCatalog,
  pathOf: (id: string) => string | undefined = (id) => id,
): FieldIssue[] {
  const issues: FieldIssue[] = [];
  const reportedCycles = new Set<string>();
  for (const [id, node] of equipment) {
    const at = pathOf(id);
    if (node === null) continue;
    if (at === undefined) {
      issues.push(...checkStoredChild(id, node, equipment, pathOf));
      continue;
    }
    issues.push(...checkLevel(node, equipment, at));
    const cycle = cycleThrough(id, equipment);
    if (cycle !== undefined) {
      const key = [...cycle].sort().join('\u0000');
      if (!reportedCycles.has(key)) {
        reportedCycles.add(key);
        issues.push({
          path: atPath(at, 'parent'),
          message: `parent chain loops back to '${id}' (${[...cycle, id].join(' → ')}); equipment cannot be its own ancestor — point one of these at a real parent`,
        });
      }
    }
  }
  return issues;
}

function checkLevel(node: EquipmentNode, equipment: EquipmentCatalog, at: string): FieldIssue[] {
  const expected = PARENT_LEVEL[node.level];
  const parentAt = atPath(at, 'parent');
  if (expected === null) {
    return node.parent === undefined
      ? []
      : [
          {
            path: parentAt,
            message: `parent must be absent: an Enterprise is the top of the equipment hierarchy; remove parent`,
          },
        ];
  }
  if (node.parent === undefined) {
    return [
      {
        path: parentAt,
        message: `parent is required: ${withArticle(node.level)} sits under ${withArticle(expected)}; name it in parent`,
      },
    ];
  }
  if (!equipment.has(node.parent)) {
    return [
      {
        path: parentAt,
        message: `parent '${node.parent}' does not exist; define it under equipment or fix the id`,
      },
    ];
  }
  const parent = equipment.get(node.parent);
  if (parent === null || parent === undefined || parent.level === expected) return [];
  return [
    {
      path: parentAt,
      message: `parent '${node.parent}' is ${withArticle(parent.level)}, but the parent of ${withArticle(node.level)} must be ${withArticle(expected)}; pick ${withArticle(expected)} or change level`,
    },
  ];
}

function checkStoredChild(
  id: string,
  node: EquipmentNode,
  equipment: EquipmentCatalog,
  pathOf: (id: string) => string | undefined,
): FieldIssue[] {
  if (node.parent === undefined) return [];
  const parentAt = pathOf(node.parent);
  const parent = equipment.get(node.parent);
  const expected = PARENT_LEVEL[node.level];
  if (expected === null || parentAt === undefined || parent === null || parent === undefined) return [];
  if (parent.level === expected) return [];
  return [
    {
      path: atPath(parentAt, 'level'),
      message: `level ${parent.level} does not fit stored child '${id}', ${withArticle(node.level)} whose parent must be ${withArticle(expected)}; keep level ${expected} or move that child first`,
    },
  ];
}

/** The ids on the loop `id → parent → … → id`, or undefined when the chain from `id` ends. */
function cycleThrough(id: string, equipment: EquipmentCatalog): string[] | undefined {
  const chain = [id];
  const seen = new Set(chain);
  let next = equipment.get(id)?.parent;
  while (next !== undefined) {
    if (next === id) return chain;
    // A loop that does not pass through `id` belongs to another id and is reported there.
    if (seen.has(next)) return undefined;
    chain.push(next);
    seen.add(next);
    next = equipment.get(next)?.parent;
  }
  return undefined;
}

/**
 * One equipment as the REST API receives it, checked against the stored catalog (which may
 * hold an older version of the same id: the candidate replaces it). Issue paths are relative
 * to the equipment (`parent`).
 */
export function validateEquipment(input: unknown, equipment: EquipmentCatalog): Result<Equipment> {
  const parsed = parseAt(EquipmentSchema, input, '', 'equipment');
  if (!parsed.ok) return plantInvalid('equipment', parsed.issues);
  const candidate = parsed.value;
  const catalog = new Map(equipment);
  catalog.set(candidate.id, { level: candidate.level, parent: candidate.parent });
  const issues = checkEquipmentHierarchy(catalog, (id) => (id === candidate.id ? '' : undefined));
  return issues.length > 0 ? plantInvalid('equipment', issues) : ok(candidate);
}

import type { EquipmentNode } from '../../domain/equipment/equipment.ts';
import type { MaterialNode } from '../../domain/material/material-definition.ts';
import { validatePlantModel, type KnownIds, type PlantModel } from '../../domain/plant/plant-model.ts';
import { atPath } from '../../domain/shared/field-issues.ts';
import type { FieldIssue } from '../../domain/shared/result.ts';
import type { Tx } from '../ports.ts';
import {
  PLANT_KINDS,
  type PlantEntities,
  type PlantEntity,
  type PlantKind,
  type PlantStore,
} from './plant-ports.ts';

/** The plant-model file section each kind lives in. */
export const SECTION_OF = {
  unit: 'units',
  qualification: 'qualifications',
  equipment: 'equipment',
  material: 'materials',
  product: 'products',
  person: 'personnel',
  signal: 'signals',
} as const satisfies Record<PlantKind, keyof PlantModel>;
export type PlantSection = (typeof SECTION_OF)[PlantKind];

const KIND_OF_SECTION = Object.fromEntries(PLANT_KINDS.map((kind) => [SECTION_OF[kind], kind])) as Record<
  PlantSection,
  PlantKind
>;

/** The audit trail's entityType, also the prefix of its actions (`material-definition.updated`). */
export const ENTITY_TYPE: Readonly<Record<PlantKind, string>> = {
  unit: 'unit',
  qualification: 'qualification',
  equipment: 'equipment',
  material: 'material-definition',
  product: 'product',
  person: 'person',
  signal: 'signal',
};

/** Everything stored, as one plant model (the shape a file has). */
export async function loadStoredModel(store: PlantStore, tx: Tx): Promise<PlantModel> {
  return {
    units: await store.unit.list(tx),
    qualifications: await store.qualification.list(tx),
    equipment: await store.equipment.list(tx),
    materials: await store.material.list(tx),
    products: await store.product.list(tx),
    personnel: await store.person.list(tx),
    signals: await store.signal.list(tx),
  };
}

export function knownIdsOf(model: PlantModel): Required<KnownIds> {
  return {
    units: new Set(model.units.map((u) => u.id)),
    qualifications: new Set(model.qualifications.map((q) => q.id)),
    equipment: new Map<string, EquipmentNode>(
      model.equipment.map((e) => [e.id, { level: e.level, parent: e.parent }]),
    ),
    materials: new Map<string, MaterialNode>(
      model.materials.map((m) => [m.id, { class: m.class, unit: m.unit }]),
    ),
  };
}

export function sectionOf<K extends PlantKind>(model: PlantModel, kind: K): PlantEntities[K][] {
  return model[SECTION_OF[kind]] as PlantEntities[K][];
}

/**
 * `model` with each of `entities` defined: first the given ones in their order, then the stored
 * ones they do not redefine. Keeping the given ones first means their indices in the result are
 * their indices in the file they came from.
 */
export function mergeModels(given: PlantModel, stored: PlantModel): PlantModel {
  const merged = {} as Record<PlantSection, PlantEntity[]>;
  for (const kind of PLANT_KINDS) {
    const section = SECTION_OF[kind];
    const mine: PlantEntity[] = given[section];
    const ids = new Set(mine.map((e) => e.id));
    merged[section] = [...mine, ...(stored[section] as PlantEntity[]).filter((e) => !ids.has(e.id))];
  }
  return merged as unknown as PlantModel;
}

export const emptyModel = (): PlantModel => ({
  units: [],
  qualifications: [],
  equipment: [],
  materials: [],
  products: [],
  personnel: [],
  signals: [],
});

/**
 * The rules between entities, over the stored model as it would be after a write. A single
 * entity's validator only sees its own references; this also catches what the write would break
 * elsewhere (a work center turned into an Area while a routing still runs on it).
 *
 * `given` counts, per section, the leading entities that came from the caller's file: their
 * issues keep the file's paths. Issues of stored entities are located by id
 * (`products.compact-sedan.routing.operations[0].workCenter`), as they have no place in the file.
 */
export function checkWholeModel(
  merged: PlantModel,
  given: Partial<Record<PlantSection, number>> = {},
): FieldIssue[] {
  const checked = validatePlantModel(merged);
  if (checked.ok) return [];
  return (checked.error.issues ?? []).map((issue) => {
    const match = /^(\w+)\[(\d+)\](.*)$/.exec(issue.path);
    if (!match) return issue;
    const section = match[1] as PlantSection;
    const index = Number(match[2]);
    if (index < (given[section] ?? 0)) return issue;
    const entity = (merged[section] as PlantEntity[] | undefined)?.[index];
    if (entity === undefined) return issue;
    return {
      path: `${atPath(section, entity.id)}${match[3] ?? ''}`,
      message: `stored ${KIND_OF_SECTION[section]} '${entity.id}': ${issue.message}`,
    };
  });
}

/** The stored form: what reading an entity back gives (optional lists present, empty when unset). */
export function normalize<K extends PlantKind>(kind: K, entity: PlantEntities[K]): PlantEntities[K] {
  if (kind === 'equipment') {
    const e = entity as PlantEntities['equipment'];
    return { ...e, capabilities: e.capabilities ?? [] } as PlantEntities[K];
  }
  return entity;
}

function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (typeof value === 'object' && value !== null) {
    const record = value as Record<string, unknown>;
    return Object.fromEntries(
      Object.keys(record)
        .filter((k) => record[k] !== undefined)
        .sort()
        .map((k) => [k, canonical(record[k])]),
    );
  }
  return value;
}

/** Same content, regardless of key order and absent optional fields. */
export function sameEntity(a: unknown, b: unknown): boolean {
  return JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
}

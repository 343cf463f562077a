import { z } from 'zod';
import { checkEquipmentHierarchy, EquipmentSchema, type EquipmentNode } from '../equipment/equipment.ts';
import {
  checkMaterialDefinitionReferences,
  MaterialDefinitionSchema,
  UnitOfMeasureSchema,
  type MaterialNode,
} from '../material/material-definition.ts';
import { checkPersonReferences, PersonSchema, QualificationDefinitionSchema } from '../personnel/person.ts';
import {
  checkMalformedProductReferences,
  checkProductReferences,
  ProductSchema,
  type ProductReferences,
} from '../production/product.ts';
import { atPath, describeValue, parseAt } from '../shared/field-issues.ts';
import {
  checkSignalReferences,
  repeatedPackmlRoles,
  repeatedSourceTags,
  SignalSchema,
} from '../signal/signal.ts';
import { Identifier } from '../shared/fields.ts';
import { ok, type FieldIssue, type Result } from '../shared/result.ts';
import { plantInvalid } from './plant-errors.ts';

/** Sections in the order a file reads best: what later sections refer to comes first. */
const SECTIONS = [
  'units',
  'qualifications',
  'equipment',
  'materials',
  'products',
  'personnel',
  'signals',
] as const;
type SectionName = (typeof SECTIONS)[number];

/**
 * The shape of a plant-model file. It checks each entity on its own; the rules between entities
 * (references, uniqueness, the equipment hierarchy) live in `validatePlantModel`.
 */
export const PlantModelSchema = z.strictObject({
  units: z.array(UnitOfMeasureSchema).default([]),
  qualifications: z.array(QualificationDefinitionSchema).default([]),
  equipment: z.array(EquipmentSchema).default([]),
  materials: z.array(MaterialDefinitionSchema).default([]),
  products: z.array(ProductSchema).default([]),
  personnel: z.array(PersonSchema).default([]),
  signals: z.array(SignalSchema).default([]),
});
export type PlantModel = z.output<typeof PlantModelSchema>;

/**
 * What is already stored, so a file may refer to it. A file that defines a stored id redefines
 * it. Equipment and materials carry the fields other rules need (level and parent; class and unit).
 */
export interface KnownIds {
  readonly units?: ReadonlySet<string>;
  readonly qualifications?: ReadonlySet<string>;
  readonly equipment?: ReadonlyMap<string, EquipmentNode>;
  readonly materials?: ReadonlyMap<string, MaterialNode>;
}

interface Section<T> {
  /** Every well-formed entity with its location (unknown fields dropped). */
  readonly entries: { readonly at: string; readonly value: T }[];
  /** Every id the section defines, well-formed or not, → where it is first defined. */
  readonly defined: Map<string, string>;
  /** The first well-formed definition of each id. */
  readonly byId: Map<string, T>;
  /** Entities that failed their shape check, as written. */
  readonly malformed: { readonly at: string; readonly element: unknown }[];
}

/**
 * Reports every problem in a plant-model document, each located by its path in the file
 * (`products[0].routing.operations[2].workCenter`). Entities are parsed one by one, so a
 * malformed entity does not hide the problems of the others, and its id still counts as defined
 * so references to it do not raise a second, misleading issue.
 */
export function validatePlantModel(doc: unknown, existing: KnownIds = {}): Result<PlantModel> {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    return plantInvalid('plant model', [
      {
        path: '',
        message: `plant model must be a mapping with any of ${SECTIONS.join(', ')}; got ${describeValue(doc)}`,
      },
    ]);
  }
  const raw = doc as Record<string, unknown>;
  const issues: FieldIssue[] = [];
  for (const key of Object.keys(raw)) {
    if (!(SECTIONS as readonly string[]).includes(key)) {
      issues.push({
        path: atPath('', key),
        message: `${key} is not a known section; use ${SECTIONS.join(', ')}`,
      });
    }
  }
  const read = <S extends z.ZodType<{ id: string }>>(name: SectionName, schema: S) =>
    readSection(raw[name], name, schema, issues);
  const units = read('units', UnitOfMeasureSchema);
  const qualifications = read('qualifications', QualificationDefinitionSchema);
  const equipment = read('equipment', EquipmentSchema);
  const materials = read('materials', MaterialDefinitionSchema);
  const products = read('products', ProductSchema);
  const personnel = read('personnel', PersonSchema);
  const signals = read('signals', SignalSchema);

  const references: ProductReferences = {
    units: new Set([...units.defined.keys(), ...(existing.units ?? [])]),
    qualifications: new Set([...qualifications.defined.keys(), ...(existing.qualifications ?? [])]),
    equipment: catalog(equipment, existing.equipment, (e) => ({ level: e.level, parent: e.parent })),
    materials: catalog(materials, existing.materials, (m) => ({ class: m.class, unit: m.unit })),
  };
  issues.push(...checkEquipmentHierarchy(references.equipment, (id) => equipment.defined.get(id)));
  for (const { at, value } of materials.entries) {
    issues.push(...checkMaterialDefinitionReferences(value, references, at));
  }
  for (const { at, value } of products.entries) {
    issues.push(...checkProductReferences(value, references, at));
  }
  for (const { at, element } of products.malformed) {
    issues.push(...checkMalformedProductReferences(element, references, at));
  }
  for (const { at, value } of personnel.entries) {
    issues.push(...checkPersonReferences(value, references, at));
  }
  issues.push(...repeatedUsernames(personnel));
  for (const { at, value } of signals.entries) {
    issues.push(...checkSignalReferences(value, references, at));
  }
  issues.push(...repeatedSourceTags(signals.entries));
  issues.push(...repeatedPackmlRoles(signals.entries));

  if (issues.length > 0) return plantInvalid('plant model', sortInDocumentOrder(issues));
  const values = <T>(section: Section<T>): T[] => section.entries.map((e) => e.value);
  return ok({
    units: values(units),
    qualifications: values(qualifications),
    equipment: values(equipment),
    materials: values(materials),
    products: values(products),
    personnel: values(personnel),
    signals: values(signals),
  });
}

function readSection<S extends z.ZodType<{ id: string }>>(
  raw: unknown,
  name: SectionName,
  schema: S,
  issues: FieldIssue[],
): Section<z.output<S>> {
  const section: Section<z.output<S>> = { entries: [], defined: new Map(), byId: new Map(), malformed: [] };
  if (raw === undefined) return section;
  const list = parseAt(z.array(z.unknown()), raw, name);
  if (!list.ok) {
    issues.push(...list.issues);
    return section;
  }
  list.value.forEach((element, i) => {
    const at = atPath(name, i);
    const parsed = parseAt(schema, element, at);
    const value = parsed.ok ? parsed.value : parsed.withoutUnknownFields;
    if (!parsed.ok) issues.push(...parsed.issues);
    if (value === undefined) section.malformed.push({ at, element });
    const id = value !== undefined ? value.id : salvageId(element);
    if (id === undefined) return;
    const first = section.defined.get(id);
    if (first !== undefined) {
      issues.push({
        path: atPath(at, 'id'),
        message: `id '${id}' is already defined at ${first}; ids must be unique within ${name} — rename one or merge them`,
      });
    } else {
      section.defined.set(id, at);
      if (value !== undefined) section.byId.set(id, value);
    }
    if (value !== undefined) section.entries.push({ at, value });
  });
  return section;
}

/** The id of a malformed entity, when the id itself is well-formed. */
function salvageId(element: unknown): string | undefined {
  if (typeof element !== 'object' || element === null) return undefined;
  const id = (element as { id?: unknown }).id;
  return Identifier.safeParse(id).success ? (id as string) : undefined;
}

/** The document's definitions, in document order, then stored ones it does not redefine. */
function catalog<T, N>(
  section: Section<T>,
  stored: ReadonlyMap<string, N> | undefined,
  node: (value: T) => N,
): Map<string, N | null> {
  const all = new Map<string, N | null>();
  for (const id of section.defined.keys()) {
    const value = section.byId.get(id);
    all.set(id, value === undefined ? null : node(value));
  }
  for (const [id, n] of stored ?? []) if (!all.has(id)) all.set(id, n);
  return all;
}

function repeatedUsernames(personnel: Section<z.output<typeof PersonSchema>>): FieldIssue[] {
  const issues: FieldIssue[] = [];
  const owner = new Map<string, string>();
  for (const { at, value } of personnel.entries) {
    if (value.username === undefined) continue;
    const first = owner.get(value.username);
    if (first === undefined) owner.set(value.username, at);
    else {
      issues.push({
        path: atPath(at, 'username'),
        message: `username '${value.username}' already belongs to ${first}; a login identifies one person — give each their own`,
      });
    }
  }
  return issues;
}

/** Groups issues by section, then by entity, so a reader fixes the file top to bottom. */
function sortInDocumentOrder(issues: readonly FieldIssue[]): FieldIssue[] {
  const rank = (path: string): [number, number] => {
    const match = /^(\w+)(?:\[(\d+)\])?/.exec(path);
    const section = SECTIONS.indexOf((match?.[1] ?? '') as SectionName);
    return [section, match?.[2] === undefined ? -1 : Number(match[2])];
  };
  return [...issues].sort((a, b) => {
    const [sa, ea] = rank(a.path);
    const [sb, eb] = rank(b.path);
    return sa - sb || ea - eb;
  });
}

import { z } from 'zod';
import { atPath, parseAt } from '../shared/field-issues.ts';
import { Description, Identifier, Name } from '../shared/fields.ts';
import { ok, type FieldIssue, type Result } from '../shared/result.ts';
import { plantInvalid } from '../plant/plant-errors.ts';

/** A unit of measure (`pcs`, `kg`); every quantity in Loom names one. */
export const UnitOfMeasureSchema = z.strictObject({ id: Identifier, name: Name });
export type UnitOfMeasure = z.output<typeof UnitOfMeasureSchema>;

/** Where a material sits in the flow: bought in, made and used again, or shipped. */
export const MATERIAL_DEFINITION_CLASSES = [
  'raw',
  'component',
  'intermediate',
  'finished',
  'consumable',
] as const;
export type MaterialDefinitionClass = (typeof MATERIAL_DEFINITION_CLASSES)[number];

/** How a quantity of the material is identified on the floor: by lot, one serial per unit, or not at all. */
export const MATERIAL_TRACKING = ['lot', 'serial', 'none'] as const;
export type MaterialTracking = (typeof MATERIAL_TRACKING)[number];

export const MaterialDefinitionSchema = z.strictObject({
  id: Identifier,
  name: Name,
  /** A material is kept in one unit; Loom does not convert between units. */
  unit: Identifier,
  class: z.enum(MATERIAL_DEFINITION_CLASSES),
  tracking: z.enum(MATERIAL_TRACKING),
  description: Description.optional(),
});
export type MaterialDefinition = z.output<typeof MaterialDefinitionSchema>;

/** What other entities' rules need to know about a material definition. */
export interface MaterialNode {
  readonly class: MaterialDefinitionClass;
  readonly unit: string;
}

/** Material definitions by id; `null` marks a defined id whose definition is malformed. */
export type MaterialCatalog = ReadonlyMap<string, MaterialNode | null>;

export interface MaterialDefinitionReferences {
  readonly units: ReadonlySet<string>;
}

export const unknownUnit = (path: string, unit: string): FieldIssue => ({
  path,
  message: `unit '${unit}' is not defined; add it under units or fix the id`,
});

export const unknownMaterial = (path: string, material: string): FieldIssue => ({
  path,
  message: `material '${material}' does not exist; define it under materials or fix the id`,
});

/** `at` is where the material definition sits in the input ('' when checked on its own). */
export function checkMaterialDefinitionReferences(
  material: MaterialDefinition,
  references: MaterialDefinitionReferences,
  at = '',
): FieldIssue[] {
  return references.units.has(material.unit) ? [] : [unknownUnit(atPath(at, 'unit'), material.unit)];
}

export function validateUnitOfMeasure(input: unknown): Result<UnitOfMeasure> {
  const parsed = parseAt(UnitOfMeasureSchema, input, '', 'unit');
  return parsed.ok ? ok(parsed.value) : plantInvalid('unit', parsed.issues);
}

export function validateMaterialDefinition(
  input: unknown,
  references: MaterialDefinitionReferences,
): Result<MaterialDefinition> {
  const parsed = parseAt(MaterialDefinitionSchema, input, '', 'material');
  if (!parsed.ok) return plantInvalid('material', parsed.issues);
  const issues = checkMaterialDefinitionReferences(parsed.value, references);
  return issues.length > 0 ? plantInvalid('material', issues) : ok(parsed.value);
}

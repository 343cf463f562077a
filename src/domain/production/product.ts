import { z } from 'zod';
import { withArticle, type EquipmentCatalog } from '../equipment/equipment.ts';
import { unknownMaterial, unknownUnit, type MaterialCatalog } from '../material/material-definition.ts';
import { unknownQualification } from '../personnel/person.ts';
import { atPath, parseAt } from '../shared/field-issues.ts';
import { Description, Identifier, Name, unlessMissing } from '../shared/fields.ts';
import { ok, type FieldIssue, type Result } from '../shared/result.ts';
import { plantInvalid } from '../plant/plant-errors.ts';

const report = (ctx: z.RefinementCtx, path: PropertyKey[], message: string): void =>
  ctx.addIssue({ code: 'custom', path, message });

/** Reports every repeat of a key after its first use, at `where(index)`. */
function reportRepeats(
  ctx: z.RefinementCtx,
  keys: readonly string[],
  where: (i: number) => PropertyKey[],
  what: string,
): void {
  const first = new Map<string, number>();
  keys.forEach((key, i) => {
    const earlier = first.get(key);
    if (earlier === undefined) first.set(key, i);
    else
      report(
        ctx,
        where(i),
        `'${key}' already appears at ${atPath('', ...where(earlier))}; ${what} must be unique`,
      );
  });
}

/** A recipe value written to the machine (ISA-95 process segment parameter). */
export const ParameterSchema = z
  .strictObject({
    name: Identifier,
    value: z.union([z.number(), z.string(), z.boolean()], {
      error: unlessMissing('must be a number, text, or true/false'),
    }),
    unit: Identifier.optional(),
    min: z.number().optional(),
    max: z.number().optional(),
  })
  .superRefine((p, ctx) => {
    if (typeof p.value !== 'number') {
      for (const bound of ['min', 'max'] as const) {
        if (p[bound] !== undefined)
          report(ctx, [bound], `applies only to a numeric value; remove ${bound} or make value a number`);
      }
      return;
    }
    if (p.min !== undefined && p.max !== undefined && p.min > p.max) {
      report(ctx, ['min'], `must not exceed max (${p.min} > ${p.max}); swap them`);
    } else if (p.min !== undefined && p.value < p.min) {
      report(ctx, ['value'], `${p.value} is below min ${p.min}; raise value or lower min`);
    } else if (p.max !== undefined && p.value > p.max) {
      report(ctx, ['value'], `${p.value} is above max ${p.max}; lower value or raise max`);
    }
  });
export type Parameter = z.output<typeof ParameterSchema>;

/** One line of an operation's bill of materials: what the step consumes per unit produced. */
export const BomItemSchema = z.strictObject({
  material: Identifier,
  quantity: z.number().positive(),
  /** Optional; when given it must be the material's own unit (there is no conversion). */
  unit: Identifier.optional(),
});
export type BomItem = z.output<typeof BomItemSchema>;

export const CHARACTERISTIC_KINDS = ['numeric', 'attribute'] as const;
export type CharacteristicKind = (typeof CHARACTERISTIC_KINDS)[number];

/** A quality characteristic: numeric ones are measured against limits, attribute ones judged pass/fail. */
export const CharacteristicSchema = z
  .strictObject({
    id: Identifier,
    name: Name,
    kind: z.enum(CHARACTERISTIC_KINDS),
    unit: Identifier.optional(),
    lsl: z.number().optional(),
    usl: z.number().optional(),
    target: z.number().optional(),
  })
  .superRefine((c, ctx) => {
    if (c.kind === 'attribute') {
      for (const field of ['lsl', 'usl', 'target'] as const) {
        if (c[field] !== undefined) {
          report(
            ctx,
            [field],
            `must be absent: an attribute characteristic is judged pass/fail; remove ${field} or make kind numeric`,
          );
        }
      }
      return;
    }
    const { lsl, usl, target } = c;
    if (lsl === undefined && usl === undefined) {
      report(ctx, [], 'needs lsl, usl or both: a numeric characteristic is judged against its limits');
    }
    if (lsl !== undefined && usl !== undefined && lsl > usl) {
      report(ctx, ['lsl'], `must not exceed usl (${lsl} > ${usl}); swap them`);
    } else if (
      target !== undefined &&
      ((lsl !== undefined && target < lsl) || (usl !== undefined && target > usl))
    ) {
      report(
        ctx,
        ['target'],
        `${target} lies outside the limits ${lsl ?? '-∞'}..${usl ?? '+∞'}; move target inside or widen the limits`,
      );
    }
  });
export type Characteristic = z.output<typeof CharacteristicSchema>;

/** One step of a routing (ISA-95 process segment), run at a work center. */
export const OperationSchema = z
  .strictObject({
    /** A step id such as '10'; the routing's order is the list order, not the id. */
    id: Identifier,
    name: Name,
    workCenter: Identifier,
    /** The machines allowed to run the step; absent means any work unit of the work center. */
    workUnits: z
      .array(Identifier)
      .min(1, {
        error: 'needs at least one entry; omit workUnits to allow every work unit of the work center',
      })
      .optional(),
    standardCycleTimeSeconds: z.number().positive(),
    qualifications: z.array(Identifier).default([]),
    parameters: z.array(ParameterSchema).default([]),
    bom: z.array(BomItemSchema).default([]),
    characteristics: z.array(CharacteristicSchema).default([]),
  })
  .superRefine((op, ctx) => {
    reportRepeats(ctx, op.workUnits ?? [], (i) => ['workUnits', i], 'work units');
    reportRepeats(ctx, op.qualifications, (i) => ['qualifications', i], 'qualifications');
    reportRepeats(
      ctx,
      op.parameters.map((p) => p.name),
      (i) => ['parameters', i, 'name'],
      'parameter names within an operation',
    );
    reportRepeats(
      ctx,
      op.characteristics.map((c) => c.id),
      (i) => ['characteristics', i, 'id'],
      'characteristic ids within an operation',
    );
  });
export type Operation = z.output<typeof OperationSchema>;

export const RoutingSchema = z
  .strictObject({
    operations: z.array(OperationSchema).min(1, { error: 'needs at least one operation' }),
  })
  .superRefine((routing, ctx) => {
    reportRepeats(
      ctx,
      routing.operations.map((o) => o.id),
      (i) => ['operations', i, 'id'],
      'operation ids within a routing',
    );
  });
export type Routing = z.output<typeof RoutingSchema>;

/** A product Loom can make: the finished material it yields and how (its routing). */
export const ProductSchema = z.strictObject({
  id: Identifier,
  name: Name,
  material: Identifier,
  description: Description.optional(),
  routing: RoutingSchema,
});
export type Product = z.output<typeof ProductSchema>;

export interface ProductReferences {
  readonly units: ReadonlySet<string>;
  readonly qualifications: ReadonlySet<string>;
  readonly materials: MaterialCatalog;
  readonly equipment: EquipmentCatalog;
}

/** `at` is where the product sits in the input ('' when checked on its own). */
export function checkProductReferences(
  product: Product,
  references: ProductReferences,
  at = '',
): FieldIssue[] {
  const issues = checkProductMaterial(product.material, references.materials, atPath(at, 'material'));
  product.routing.operations.forEach((op, i) => {
    issues.push(...checkOperationReferences(op, references, atPath(at, 'routing', 'operations', i)));
  });
  return issues;
}

/**
 * The reference checks that can still run on a product whose shape is wrong: its material and
 * every operation that is well-formed on its own. One typo in a long routing should not hide
 * the rest of its problems. Shape issues are not repeated here; parsing reports them.
 */
export function checkMalformedProductReferences(
  input: unknown,
  references: ProductReferences,
  at: string,
): FieldIssue[] {
  if (!isRecord(input)) return [];
  const material = Identifier.safeParse(input.material);
  const issues = material.success
    ? checkProductMaterial(material.data, references.materials, atPath(at, 'material'))
    : [];
  const operations = isRecord(input.routing) ? input.routing.operations : undefined;
  if (!Array.isArray(operations)) return issues;
  operations.forEach((raw: unknown, i) => {
    const parsed = parseAt(OperationSchema, raw, '');
    const op = parsed.ok ? parsed.value : parsed.withoutUnknownFields;
    if (op) issues.push(...checkOperationReferences(op, references, atPath(at, 'routing', 'operations', i)));
  });
  return issues;
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

function checkProductMaterial(id: string, materials: MaterialCatalog, path: string): FieldIssue[] {
  const material = materials.get(id);
  if (!materials.has(id)) return [unknownMaterial(path, id)];
  if (!material || material.class === 'finished') return [];
  return [
    {
      path,
      message: `material '${id}' is ${withArticle(material.class)} material; a product yields a finished material — set its class to finished or name another material`,
    },
  ];
}

/** `at` is where the operation sits in the input (`products[0].routing.operations[2]`). */
export function checkOperationReferences(
  op: Operation,
  references: ProductReferences,
  at: string,
): FieldIssue[] {
  const { units, qualifications, materials } = references;
  const issues = checkEquipmentReferences(op, references.equipment, at);
  op.qualifications.forEach((q, i) => {
    if (!qualifications.has(q)) issues.push(unknownQualification(atPath(at, 'qualifications', i), q));
  });
  op.parameters.forEach((p, i) => {
    if (p.unit !== undefined && !units.has(p.unit))
      issues.push(unknownUnit(atPath(at, 'parameters', i, 'unit'), p.unit));
  });
  op.bom.forEach((item, i) => {
    if (!materials.has(item.material))
      issues.push(unknownMaterial(atPath(at, 'bom', i, 'material'), item.material));
    if (item.unit === undefined) return;
    const material = materials.get(item.material);
    if (!units.has(item.unit)) issues.push(unknownUnit(atPath(at, 'bom', i, 'unit'), item.unit));
    else if (material && material.unit !== item.unit) {
      issues.push({
        path: atPath(at, 'bom', i, 'unit'),
        message: `unit '${item.unit}' differs from '${material.unit}', the unit of material '${item.material}'; quantities are kept in the material's own unit — use '${material.unit}' or omit unit`,
      });
    }
  });
  op.characteristics.forEach((c, i) => {
    if (c.unit !== undefined && !units.has(c.unit))
      issues.push(unknownUnit(atPath(at, 'characteristics', i, 'unit'), c.unit));
  });
  return issues;
}

function checkEquipmentReferences(op: Operation, equipment: EquipmentCatalog, at: string): FieldIssue[] {
  const issues: FieldIssue[] = [];
  const center = equipment.get(op.workCenter);
  if (!equipment.has(op.workCenter)) {
    issues.push({
      path: atPath(at, 'workCenter'),
      message: `work center '${op.workCenter}' does not exist; define it under equipment or fix the id`,
    });
  } else if (center && center.level !== 'WorkCenter') {
    issues.push({
      path: atPath(at, 'workCenter'),
      message: `'${op.workCenter}' is ${withArticle(center.level)}, not a WorkCenter; name the line or cell (level WorkCenter) that runs this step`,
    });
  }
  (op.workUnits ?? []).forEach((id, i) => {
    const path = atPath(at, 'workUnits', i);
    const unit = equipment.get(id);
    if (!equipment.has(id)) {
      issues.push({
        path,
        message: `work unit '${id}' does not exist; define it under equipment or fix the id`,
      });
    } else if (unit && unit.level !== 'WorkUnit') {
      issues.push({
        path,
        message: `'${id}' is ${withArticle(unit.level)}, not a WorkUnit; list only machines (level WorkUnit) here`,
      });
    } else if (unit && unit.parent !== op.workCenter) {
      issues.push({
        path,
        message: `work unit '${id}' belongs to '${unit.parent ?? '(no parent)'}', not to work center '${op.workCenter}'; list only machines of '${op.workCenter}' or change workCenter`,
      });
    }
  });
  return issues;
}

/** One product as the REST API receives it; issue paths are relative to the product. */
export function validateProduct(input: unknown, references: ProductReferences): Result<Product> {
  const parsed = parseAt(ProductSchema, input, '', 'product');
  if (!parsed.ok) return plantInvalid('product', parsed.issues);
  const issues = checkProductReferences(parsed.value, references);
  return issues.length > 0 ? plantInvalid('product', issues) : ok(parsed.value);
}

/** The materials an operation's bill-of-materials snapshot (`[{material, quantity, unit?}]`) lists. */
export function bomMaterials(bom: readonly unknown[]): string[] {
  return bom.flatMap((line) =>
    typeof line === 'object' && line !== null && typeof (line as { material?: unknown }).material === 'string'
      ? [(line as { material: string }).material]
      : [],
  );
}

import type { Actor } from '../../domain/auth/roles.ts';
import {
  validateMaterialDefinition,
  type MaterialDefinition,
} from '../../domain/material/material-definition.ts';
import { fail, ok, type FieldIssue, type Result } from '../../domain/shared/result.ts';
import type { CommandContext } from '../execution/execution-deps.ts';
import {
  checkWholeModel,
  emptyModel,
  knownIdsOf,
  loadStoredModel,
  mergeModels,
  sameEntity,
} from '../plant/plant-model-state.ts';
import type { PlantStore } from '../plant/plant-ports.ts';
import type { AuditTrail, Tx } from '../ports.ts';

export interface SyncedMaterialDefinition {
  readonly id: string;
  readonly outcome: 'created' | 'updated' | 'unchanged';
}

/**
 * Creates or replaces material definitions sent by the ERP (B2MML "Sync": the ERP is the
 * master of this data), in the caller's transaction under the plant-model lock, validated like
 * a plant-model write (the stored model must stay valid as a whole) and audited one by one.
 */
export async function syncMaterialDefinitions(
  deps: { readonly plant: PlantStore; readonly audit: AuditTrail },
  tx: Tx,
  actor: Actor,
  items: readonly unknown[],
  ctx: CommandContext,
  pathOf: (index: number) => string,
): Promise<Result<SyncedMaterialDefinition[]>> {
  const { plant, audit } = deps;
  await plant.lock(tx);
  const stored = await loadStoredModel(plant, tx);
  const known = knownIdsOf(stored);
  const issues: FieldIssue[] = [];
  const given: MaterialDefinition[] = [];
  const seen = new Map<string, number>();
  items.forEach((item, index) => {
    const r = validateMaterialDefinition(item, known);
    if (!r.ok) {
      for (const i of r.error.issues ?? [])
        issues.push({ path: i.path ? `${pathOf(index)}.${i.path}` : pathOf(index), message: i.message });
      return;
    }
    const first = seen.get(r.value.id);
    if (first !== undefined) {
      issues.push({
        path: `${pathOf(index)}.id`,
        message: `repeats ${pathOf(first)}; send each definition once`,
      });
      return;
    }
    seen.set(r.value.id, index);
    given.push(r.value);
  });
  if (issues.length === 0) {
    const single = emptyModel();
    single.materials.push(...given);
    for (const issue of checkWholeModel(mergeModels(single, stored), { materials: given.length })) {
      const m = /^materials\[(\d+)\](.*)$/.exec(issue.path);
      issues.push(m ? { path: `${pathOf(Number(m[1]))}${m[2] ?? ''}`, message: issue.message } : issue);
    }
  }
  if (issues.length > 0) {
    return fail(
      'LOOM_PLANT_INVALID',
      `Material definitions refused; nothing was changed: ${issues
        .slice(0, 5)
        .map((i) => `${i.path} ${i.message}`)
        .join('; ')}`,
      { issues },
    );
  }
  const out: SyncedMaterialDefinition[] = [];
  for (const next of given) {
    const old = await plant.material.get(tx, next.id);
    if (old && sameEntity(old, next)) {
      out.push({ id: next.id, outcome: 'unchanged' });
      continue;
    }
    await plant.material.save(tx, next);
    await audit.append(tx, {
      actor,
      action: `material-definition.${old ? 'updated' : 'created'}`,
      entityType: 'material-definition',
      entityId: next.id,
      oldValue: old ?? null,
      newValue: next,
      reason: 'synchronised from the ERP',
      requestId: ctx.requestId,
    });
    out.push({ id: next.id, outcome: old ? 'updated' : 'created' });
  }
  return ok(out);
}

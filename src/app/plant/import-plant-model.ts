import type { Actor } from '../../domain/auth/roles.ts';
import { validatePlantModel, type PlantModel } from '../../domain/plant/plant-model.ts';
import { plantInvalid } from '../../domain/plant/plant-errors.ts';
import { ok, type Result } from '../../domain/shared/result.ts';
import type { AuditTrail, Tx, UnitOfWork } from '../ports.ts';
import {
  checkWholeModel,
  ENTITY_TYPE,
  knownIdsOf,
  loadStoredModel,
  mergeModels,
  normalize,
  sameEntity,
  SECTION_OF,
  sectionOf,
  type PlantSection,
} from './plant-model-state.ts';
import {
  PLANT_KINDS,
  repositoryOf,
  type PlantEntities,
  type PlantKind,
  type PlantStore,
} from './plant-ports.ts';

export interface ImportCounts {
  readonly created: number;
  readonly updated: number;
  readonly unchanged: number;
}

/** Per file section, what the import did (or, on a dry run, would do). */
export type ImportSummary = { readonly dryRun: boolean } & Record<PlantSection, ImportCounts>;

export interface ImportPlantModelDeps {
  readonly uow: UnitOfWork;
  readonly store: PlantStore;
  readonly audit: AuditTrail;
}

export interface ImportOptions {
  /** Validate and count, write nothing. */
  readonly dryRun?: boolean;
  readonly requestId?: string | null;
}

/**
 * Loads a whole plant model in one transaction: all of it or none of it. Each id in the file is
 * created, or replaces the stored definition with the same id; ids the file does not mention are
 * left alone. Every created or changed entity gets an audit entry with old and new value;
 * an entity the file repeats unchanged writes nothing, so importing the same file twice is a no-op.
 */
export async function importPlantModel(
  deps: ImportPlantModelDeps,
  actor: Actor,
  doc: unknown,
  opts: ImportOptions = {},
): Promise<Result<ImportSummary>> {
  const { uow, store } = deps;
  const dryRun = opts.dryRun ?? false;
  return uow.run(async (tx) => {
    await store.lock(tx);
    const stored = await loadStoredModel(store, tx);
    const validated = validatePlantModel(doc, knownIdsOf(stored));
    if (!validated.ok) return validated;
    const model = validated.value;
    const given: Partial<Record<PlantSection, number>> = {};
    for (const kind of PLANT_KINDS) given[SECTION_OF[kind]] = sectionOf(model, kind).length;
    const wider = checkWholeModel(mergeModels(model, stored), given);
    if (wider.length > 0) return plantInvalid('plant model', wider);

    if (!dryRun) await store.deferConstraints(tx);
    const summary = { dryRun } as Record<PlantSection, ImportCounts> & { dryRun: boolean };
    for (const kind of PLANT_KINDS) {
      summary[SECTION_OF[kind]] = await applySection(deps, tx, actor, kind, model, stored, dryRun, opts);
    }
    return ok(summary);
  });
}

async function applySection<K extends PlantKind>(
  deps: ImportPlantModelDeps,
  tx: Tx,
  actor: Actor,
  kind: K,
  model: PlantModel,
  stored: PlantModel,
  dryRun: boolean,
  opts: ImportOptions,
): Promise<ImportCounts> {
  const repository = repositoryOf(deps.store, kind);
  const before = new Map(sectionOf(stored, kind).map((e) => [e.id, e]));
  const counts = { created: 0, updated: 0, unchanged: 0 };
  for (const entity of sectionOf(model, kind)) {
    const next: PlantEntities[K] = normalize(kind, entity);
    const old = before.get(next.id);
    if (old !== undefined && sameEntity(old, next)) {
      counts.unchanged++;
      continue;
    }
    const verb = old === undefined ? 'created' : 'updated';
    counts[verb]++;
    if (dryRun) continue;
    await repository.save(tx, next);
    await deps.audit.append(tx, {
      actor,
      action: `${ENTITY_TYPE[kind]}.${verb}`,
      entityType: ENTITY_TYPE[kind],
      entityId: next.id,
      reason: 'plant model import',
      oldValue: old ?? null,
      newValue: next,
      requestId: opts.requestId ?? null,
    });
  }
  return counts;
}

import type { Actor } from '../../domain/auth/roles.ts';
import { validateEquipment, type Equipment } from '../../domain/equipment/equipment.ts';
import {
  validateMaterialDefinition,
  validateUnitOfMeasure,
} from '../../domain/material/material-definition.ts';
import { validateSignal } from '../../domain/signal/signal.ts';
import { validatePerson, validateQualificationDefinition } from '../../domain/personnel/person.ts';
import type { PlantModel } from '../../domain/plant/plant-model.ts';
import { plantInvalid } from '../../domain/plant/plant-errors.ts';
import { validateProduct } from '../../domain/production/product.ts';
import { fail, ok, type Result } from '../../domain/shared/result.ts';
import type { AuditTrail, UnitOfWork } from '../ports.ts';
import { importPlantModel, type ImportOptions, type ImportSummary } from './import-plant-model.ts';
import {
  checkWholeModel,
  ENTITY_TYPE,
  knownIdsOf,
  loadStoredModel,
  mergeModels,
  emptyModel,
  normalize,
  sameEntity,
  SECTION_OF,
} from './plant-model-state.ts';
import {
  repositoryOf,
  type PlantEntities,
  type PlantEntity,
  type PlantKind,
  type PlantStore,
} from './plant-ports.ts';

export interface PlantServiceDeps {
  readonly uow: UnitOfWork;
  readonly store: PlantStore;
  readonly audit: AuditTrail;
}

/** An equipment with the equipment below it, as the hierarchy reads top down. */
export type EquipmentTreeNode = Equipment & { readonly children: EquipmentTreeNode[] };

const notFound = (kind: PlantKind, id: string) =>
  fail('LOOM_PLANT_NOT_FOUND', `${ENTITY_TYPE[kind]} '${id}' does not exist.`, {
    details: { entityType: ENTITY_TYPE[kind], id },
  });

/** One kind's validator, with its references taken from the stored model. */
function validateOne(kind: PlantKind, input: unknown, stored: PlantModel): Result<PlantEntity> {
  const known = knownIdsOf(stored);
  switch (kind) {
    case 'unit':
      return validateUnitOfMeasure(input);
    case 'qualification':
      return validateQualificationDefinition(input);
    case 'equipment':
      return validateEquipment(input, known.equipment);
    case 'material':
      return validateMaterialDefinition(input, known);
    case 'product':
      return validateProduct(input, known);
    case 'person':
      return validatePerson(input, known);
    case 'signal':
      return validateSignal(input, known);
  }
}

/**
 * Plant master data, one entity at a time (the REST API), and whole files (`importPlantModel`).
 * Every write is one transaction holding the plant-model lock, validated against what is stored,
 * and audited with old and new value. The stored model stays valid as a whole: a write that would
 * break another stored entity is refused with that entity's issues.
 */
export class PlantService {
  readonly #deps: PlantServiceDeps;

  constructor(deps: PlantServiceDeps) {
    this.#deps = deps;
  }

  importPlantModel(actor: Actor, doc: unknown, opts: ImportOptions = {}): Promise<Result<ImportSummary>> {
    return importPlantModel(this.#deps, actor, doc, opts);
  }

  list<K extends PlantKind>(kind: K): Promise<PlantEntities[K][]> {
    return repositoryOf(this.#deps.store, kind).list(null);
  }

  async get<K extends PlantKind>(kind: K, id: string): Promise<Result<PlantEntities[K]>> {
    const found = await repositoryOf(this.#deps.store, kind).get(null, id);
    return found ? ok(found) : notFound(kind, id);
  }

  /** The hierarchy under `rootId`, or the whole forest (every Enterprise) without it. */
  async equipmentTree(rootId?: string): Promise<Result<EquipmentTreeNode[]>> {
    const all = await this.#deps.store.equipment.list(null);
    const children = new Map<string | undefined, Equipment[]>();
    for (const e of all) children.set(e.parent, [...(children.get(e.parent) ?? []), e]);
    const build = (e: Equipment, seen: Set<string>): EquipmentTreeNode => {
      // The stored model has no cycles (validated on every write); `seen` only guards the walk.
      seen.add(e.id);
      const below = (children.get(e.id) ?? []).filter((c) => !seen.has(c.id));
      return { ...e, children: below.map((c) => build(c, seen)) };
    };
    if (rootId === undefined) return ok((children.get(undefined) ?? []).map((e) => build(e, new Set())));
    const root = all.find((e) => e.id === rootId);
    return root ? ok([build(root, new Set())]) : notFound('equipment', rootId);
  }

  create<K extends PlantKind>(
    actor: Actor,
    kind: K,
    input: unknown,
    requestId: string | null = null,
  ): Promise<Result<PlantEntities[K]>> {
    return this.#write(actor, kind, input, { mode: 'create' }, requestId);
  }

  /** Replaces `id`; the body's id must be `id` or absent (renaming is create + delete). */
  replace<K extends PlantKind>(
    actor: Actor,
    kind: K,
    id: string,
    input: unknown,
    requestId: string | null = null,
  ): Promise<Result<PlantEntities[K]>> {
    if (typeof input === 'object' && input !== null && !Array.isArray(input)) {
      const given = (input as { id?: unknown }).id;
      if (given !== undefined && given !== id) {
        return Promise.resolve(
          plantInvalid(ENTITY_TYPE[kind], [
            {
              path: 'id',
              message: `id must be '${id}', the id in the URL, or be omitted; to rename, create the new id and delete the old one`,
            },
          ]),
        );
      }
      input = { ...input, id };
    }
    return this.#write(actor, kind, input, { mode: 'replace', id }, requestId);
  }

  async remove(
    actor: Actor,
    kind: PlantKind,
    id: string,
    reason: string | null = null,
    requestId: string | null = null,
  ): Promise<Result<{ readonly id: string }>> {
    const { uow, store, audit } = this.#deps;
    const repository = repositoryOf(store, kind);
    return uow.run(async (tx) => {
      await store.lock(tx);
      const old = await repository.get(tx, id);
      if (!old) return notFound(kind, id);
      const referrers = await repository.referrers(tx, id);
      const removed = referrers.length > 0 ? null : await repository.remove(tx, id);
      if (removed?.removed === false && removed.reason === 'not-found') return notFound(kind, id);
      if (removed === null || !removed.removed) {
        const detail = removed === null ? referrers.join('; ') : removed.detail;
        return fail(
          'LOOM_PLANT_IN_USE',
          `${ENTITY_TYPE[kind]} '${id}' is still in use by ${detail}; change or delete those first.`,
          { details: { referrers: removed === null ? referrers : [detail] } },
        );
      }
      await audit.append(tx, {
        actor,
        action: `${ENTITY_TYPE[kind]}.deleted`,
        entityType: ENTITY_TYPE[kind],
        entityId: id,
        reason,
        oldValue: old,
        newValue: null,
        requestId,
      });
      return ok({ id });
    });
  }

  async #write<K extends PlantKind>(
    actor: Actor,
    kind: K,
    input: unknown,
    target: { mode: 'create' } | { mode: 'replace'; id: string },
    requestId: string | null,
  ): Promise<Result<PlantEntities[K]>> {
    const { uow, store, audit } = this.#deps;
    const repository = repositoryOf(store, kind);
    return uow.run(async (tx): Promise<Result<PlantEntities[K]>> => {
      await store.lock(tx);
      const id = target.mode === 'replace' ? target.id : idOf(input);
      const old = id === undefined ? null : await repository.get(tx, id);
      if (target.mode === 'create' && old) {
        return fail(
          'LOOM_PLANT_EXISTS',
          `${ENTITY_TYPE[kind]} '${old.id}' already exists; PUT replaces it.`,
          {
            details: { entityType: ENTITY_TYPE[kind], id: old.id },
          },
        );
      }
      if (target.mode === 'replace' && !old) return notFound(kind, target.id);
      const stored = await loadStoredModel(store, tx);
      const validated = validateOne(kind, input, stored);
      if (!validated.ok) return validated;
      const next = normalize(kind, validated.value as PlantEntities[K]);
      if (old && sameEntity(old, next)) return ok(old);

      const single = emptyModel();
      (single[SECTION_OF[kind]] as PlantEntity[]).push(next);
      const issues = checkWholeModel(mergeModels(single, stored), { [SECTION_OF[kind]]: 1 });
      if (issues.length > 0) return plantInvalid(ENTITY_TYPE[kind], issues.map(relativeTo(SECTION_OF[kind])));

      await repository.save(tx, next);
      await audit.append(tx, {
        actor,
        action: `${ENTITY_TYPE[kind]}.${old ? 'updated' : 'created'}`,
        entityType: ENTITY_TYPE[kind],
        entityId: next.id,
        oldValue: old ?? null,
        newValue: next,
        requestId,
      });
      return ok(next);
    });
  }
}

const idOf = (input: unknown): string | undefined => {
  if (typeof input !== 'object' || input === null) return undefined;
  const id = (input as { id?: unknown }).id;
  return typeof id === 'string' ? id : undefined;
};

/** The written entity's own issues, made relative to it (`equipment[0].parent` → `parent`). */
const relativeTo =
  (section: string) =>
  (issue: { path: string; message: string }): { path: string; message: string } => {
    const own = `${section}[0]`;
    if (issue.path === own) return { ...issue, path: '' };
    if (issue.path.startsWith(`${own}.`) || issue.path.startsWith(`${own}[`)) {
      return { ...issue, path: issue.path.slice(own.length).replace(/^\./, '') };
    }
    return issue;
  };

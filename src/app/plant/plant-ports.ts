import type { Equipment } from '../../domain/equipment/equipment.ts';
import type { MaterialDefinition, UnitOfMeasure } from '../../domain/material/material-definition.ts';
import type { Person, QualificationDefinition } from '../../domain/personnel/person.ts';
import type { Product } from '../../domain/production/product.ts';
import type { Signal } from '../../domain/signal/signal.ts';
import type { Tx } from '../ports.ts';

/** The kinds of plant master data, each one entity type with its own REST collection. */
export const PLANT_KINDS = [
  'unit',
  'qualification',
  'equipment',
  'material',
  'product',
  'person',
  'signal',
] as const;
export type PlantKind = (typeof PLANT_KINDS)[number];

export interface PlantEntities {
  unit: UnitOfMeasure;
  qualification: QualificationDefinition;
  equipment: Equipment;
  material: MaterialDefinition;
  product: Product;
  person: Person;
  signal: Signal;
}
export type PlantEntity = PlantEntities[PlantKind];

export type RemoveOutcome =
  | { readonly removed: true }
  | { readonly removed: false; readonly reason: 'not-found' }
  /** A foreign key refused the delete; `detail` is the database's description of the referrer. */
  | { readonly removed: false; readonly reason: 'referenced'; readonly detail: string };

/** One kind of master data in storage. Every method takes the caller's transaction (STYLE.md). */
export interface PlantRepository<T> {
  list(tx: Tx | null): Promise<T[]>;
  get(tx: Tx | null, id: string): Promise<T | null>;
  /** Inserts, or replaces the stored row and all its child rows (a routing, held qualifications). */
  save(tx: Tx, entity: T): Promise<void>;
  remove(tx: Tx, id: string): Promise<RemoveOutcome>;
  /** Who still refers to `id`, in words (`product 'sedan' operation '10' (work center)`); empty when nothing does. */
  referrers(tx: Tx, id: string): Promise<string[]>;
}

export type PlantStore = { readonly [K in PlantKind]: PlantRepository<PlantEntities[K]> } & {
  /**
   * Serialises plant-model writers until the transaction ends, so an import or a single write
   * validates against references no other writer is changing underneath it.
   */
  lock(tx: Tx): Promise<void>;
  /** Defers foreign keys to commit, for a whole-file import that may list children first. */
  deferConstraints(tx: Tx): Promise<void>;
};

/** `store[kind]` typed by its kind (TypeScript does not narrow an indexed mapped type by a generic key). */
export const repositoryOf = <K extends PlantKind>(
  store: PlantStore,
  kind: K,
): PlantRepository<PlantEntities[K]> => store[kind] as unknown as PlantRepository<PlantEntities[K]>;

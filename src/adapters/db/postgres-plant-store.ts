import type { DatabaseError } from 'pg';
import type { PlantRepository, PlantStore, RemoveOutcome } from '../../app/plant/plant-ports.ts';
import type { Tx } from '../../app/ports.ts';
import type { Equipment, EquipmentLevel } from '../../domain/equipment/equipment.ts';
import type {
  MaterialDefinition,
  MaterialDefinitionClass,
  MaterialTracking,
  UnitOfMeasure,
} from '../../domain/material/material-definition.ts';
import type { Person, QualificationDefinition } from '../../domain/personnel/person.ts';
import type {
  BomItem,
  Characteristic,
  CharacteristicKind,
  Operation,
  Parameter,
  Product,
} from '../../domain/production/product.ts';
import type { Database, Queryable } from './postgres-pool.ts';
import { asPg } from './postgres-unit-of-work.ts';
import { sourceTagOf, type Signal } from '../../domain/signal/signal.ts';
import { groupBy } from '../../domain/shared/group-by.ts';

/** Any constant, distinct from the migration and audit locks: serialises plant-model writers. */
const PLANT_MODEL_LOCK = 0x504c4e54; // 'PLNT'

/** `{ key: value }` when value is set; SQL NULL means the optional field is absent. */
const opt = <K extends string, V>(key: K, value: V | null): { [P in K]?: V } =>
  (value === null ? {} : { [key]: value }) as { [P in K]?: V };

/**
 * Inserts rows with one statement. Table and column names are constants of this file, never
 * input; values are parameters.
 */
async function insertRows(
  q: Queryable,
  table: string,
  columns: readonly string[],
  rows: readonly (readonly unknown[])[],
): Promise<void> {
  if (rows.length === 0) return;
  const values: unknown[] = [];
  const tuples = rows.map((row) => {
    const marks = row.map((v) => {
      values.push(v);
      return `$${values.length}`;
    });
    return `(${marks.join(', ')})`;
  });
  await q.query(`INSERT INTO ${table} (${columns.join(', ')}) VALUES ${tuples.join(', ')}`, values);
}

/**
 * Deletes in a savepoint, so a foreign-key refusal is an answer rather than an aborted
 * transaction. The referrer checks run first; this catches what they do not know of.
 */
async function removeRow(q: Queryable, table: string, id: string): Promise<RemoveOutcome> {
  await q.query('SAVEPOINT plant_remove');
  try {
    const r = await q.query(`DELETE FROM ${table} WHERE id = $1`, [id]);
    await q.query('RELEASE SAVEPOINT plant_remove');
    return r.rowCount ? { removed: true } : { removed: false, reason: 'not-found' };
  } catch (e) {
    if ((e as DatabaseError).code !== '23503') throw e;
    await q.query('ROLLBACK TO SAVEPOINT plant_remove');
    return {
      removed: false,
      reason: 'referenced',
      detail: (e as DatabaseError).detail ?? (e as Error).message,
    };
  }
}

async function referrersOf(q: Queryable, sql: string, id: string): Promise<string[]> {
  return (await q.query<{ what: string }>(sql, [id])).rows.map((r) => r.what);
}

interface UnitRow {
  id: string;
  name: string;
}
interface QualificationRow {
  id: string;
  name: string;
  description: string | null;
  validity_days: number | null;
}
interface EquipmentRow {
  id: string;
  parent_id: string | null;
  level: EquipmentLevel;
  name: string;
  description: string | null;
  capabilities: string[];
}
interface MaterialRow {
  id: string;
  name: string;
  unit_id: string;
  class: MaterialDefinitionClass;
  tracking: MaterialTracking;
  description: string | null;
}
interface PersonRow {
  id: string;
  name: string;
  username: string | null;
}
interface HoldingRow {
  person_id: string;
  qualification_id: string;
  issued: string;
  expires: string | null;
}
interface ProductRow {
  id: string;
  name: string;
  material_id: string;
  description: string | null;
}
interface OperationRow {
  product_id: string;
  operation_id: string;
  name: string;
  work_center_id: string;
  standard_cycle_time_s: number;
  parameters: Parameter[];
}
interface OperationChildRow {
  product_id: string;
  operation_id: string;
}

const toUnit = (r: UnitRow): UnitOfMeasure => ({ id: r.id, name: r.name });
const toQualification = (r: QualificationRow): QualificationDefinition => ({
  id: r.id,
  name: r.name,
  ...opt('description', r.description),
  ...opt('validityDays', r.validity_days),
});
const toEquipment = (r: EquipmentRow): Equipment => ({
  id: r.id,
  name: r.name,
  level: r.level,
  ...opt('parent', r.parent_id),
  ...opt('description', r.description),
  capabilities: r.capabilities,
});
const toMaterial = (r: MaterialRow): MaterialDefinition => ({
  id: r.id,
  name: r.name,
  unit: r.unit_id,
  class: r.class,
  tracking: r.tracking,
  ...opt('description', r.description),
});

/** Wraps a table whose rows map one-to-one onto entities. */
function simpleRepository<T extends { id: string }, R>(
  db: Database,
  spec: {
    table: string;
    columns: string;
    order?: string;
    toEntity: (row: R) => T;
    save: (q: Queryable, entity: T) => Promise<void>;
    referrers: string | null;
  },
): PlantRepository<T> {
  const q = (tx: Tx | null): Queryable => (tx ? asPg(tx) : db.pool);
  const select = `SELECT ${spec.columns} FROM ${spec.table}`;
  return {
    async list(tx) {
      const r = await q(tx).query(`${select} ORDER BY ${spec.order ?? 'id'}`);
      return r.rows.map((row) => spec.toEntity(row as R));
    },
    async get(tx, id) {
      const r = await q(tx).query(`${select} WHERE id = $1`, [id]);
      return r.rows[0] ? spec.toEntity(r.rows[0] as R) : null;
    },
    save: (tx, entity) => spec.save(asPg(tx), entity),
    remove: (tx, id) => removeRow(asPg(tx), spec.table, id),
    referrers: async (tx, id) => (spec.referrers ? referrersOf(asPg(tx), spec.referrers, id) : []),
  };
}

const OPERATION = `format('product %L operation %L', product_id, operation_id)`;

function personRepository(db: Database): PlantRepository<Person> {
  const q = (tx: Tx | null): Queryable => (tx ? asPg(tx) : db.pool);
  async function load(c: Queryable, id: string | null): Promise<Person[]> {
    const where = id === null ? '' : 'WHERE id = $1';
    const args = id === null ? [] : [id];
    const people = await c.query<PersonRow>(
      `SELECT id, name, username FROM persons ${where} ORDER BY id`,
      args,
    );
    const holdings = await c.query<HoldingRow>(
      `SELECT person_id, qualification_id, issued::text AS issued, expires::text AS expires
         FROM person_qualifications ${id === null ? '' : 'WHERE person_id = $1'}
        ORDER BY person_id, position`,
      args,
    );
    const held = groupBy(holdings.rows, (h) => h.person_id);
    return people.rows.map((p) => ({
      id: p.id,
      name: p.name,
      ...opt('username', p.username),
      qualifications: (held.get(p.id) ?? []).map((h) => ({
        qualification: h.qualification_id,
        issued: h.issued,
        expires: h.expires,
      })),
    }));
  }
  return {
    list: (tx) => load(q(tx), null),
    async get(tx, id) {
      return (await load(q(tx), id))[0] ?? null;
    },
    async save(tx, p) {
      const c = asPg(tx);
      await c.query(
        `INSERT INTO persons (id, name, username) VALUES ($1, $2, $3)
         ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, username = EXCLUDED.username, updated_at = now()`,
        [p.id, p.name, p.username ?? null],
      );
      await c.query('DELETE FROM person_qualifications WHERE person_id = $1', [p.id]);
      await insertRows(
        c,
        'person_qualifications',
        ['person_id', 'position', 'qualification_id', 'issued', 'expires'],
        p.qualifications.map((h, i) => [p.id, i, h.qualification, h.issued, h.expires]),
      );
    },
    remove: (tx, id) => removeRow(asPg(tx), 'persons', id),
    referrers: async () => [],
  };
}

function productRepository(db: Database): PlantRepository<Product> {
  const q = (tx: Tx | null): Queryable => (tx ? asPg(tx) : db.pool);
  async function load(c: Queryable, id: string | null): Promise<Product[]> {
    const args = id === null ? [] : [id];
    const only = (column: string) => (id === null ? '' : `WHERE ${column} = $1`);
    const children = async <R extends OperationChildRow>(columns: string, table: string) =>
      groupBy(
        (
          await c.query<R>(
            `SELECT product_id, operation_id, ${columns} FROM ${table} ${only('product_id')}
              ORDER BY product_id, operation_id, position`,
            args,
          )
        ).rows,
        (r) => `${r.product_id}\u0000${r.operation_id}`,
      );
    const products = await c.query<ProductRow>(
      `SELECT id, name, material_id, description FROM products ${only('id')} ORDER BY id`,
      args,
    );
    const operations = await c.query<OperationRow>(
      `SELECT product_id, operation_id, name, work_center_id,
              standard_cycle_time_s::float8 AS standard_cycle_time_s, parameters
         FROM routing_operations ${only('product_id')} ORDER BY product_id, position`,
      args,
    );
    const workUnits = await children<OperationChildRow & { equipment_id: string }>(
      'equipment_id',
      'routing_operation_work_units',
    );
    const qualifications = await children<OperationChildRow & { qualification_id: string }>(
      'qualification_id',
      'routing_operation_qualifications',
    );
    const bom = await children<
      OperationChildRow & { material_id: string; quantity: number; unit_id: string | null }
    >('material_id, quantity::float8 AS quantity, unit_id', 'routing_operation_bom');
    const characteristics = await children<
      OperationChildRow & {
        characteristic_id: string;
        name: string;
        kind: CharacteristicKind;
        unit_id: string | null;
        lsl: number | null;
        usl: number | null;
        target: number | null;
      }
    >(
      'characteristic_id, name, kind, unit_id, lsl::float8 AS lsl, usl::float8 AS usl, target::float8 AS target',
      'routing_operation_characteristics',
    );
    const toOperation = (o: OperationRow): Operation => {
      const key = `${o.product_id}\u0000${o.operation_id}`;
      const units = workUnits.get(key) ?? [];
      return {
        id: o.operation_id,
        name: o.name,
        workCenter: o.work_center_id,
        ...(units.length > 0 ? { workUnits: units.map((u) => u.equipment_id) } : {}),
        standardCycleTimeSeconds: o.standard_cycle_time_s,
        qualifications: (qualifications.get(key) ?? []).map((r) => r.qualification_id),
        parameters: o.parameters,
        bom: (bom.get(key) ?? []).map((b): BomItem => ({
          material: b.material_id,
          quantity: b.quantity,
          ...opt('unit', b.unit_id),
        })),
        characteristics: (characteristics.get(key) ?? []).map((r): Characteristic => ({
          id: r.characteristic_id,
          name: r.name,
          kind: r.kind,
          ...opt('unit', r.unit_id),
          ...opt('lsl', r.lsl),
          ...opt('usl', r.usl),
          ...opt('target', r.target),
        })),
      };
    };
    const routings = groupBy(operations.rows, (o) => o.product_id);
    return products.rows.map((p) => ({
      id: p.id,
      name: p.name,
      material: p.material_id,
      ...opt('description', p.description),
      routing: { operations: (routings.get(p.id) ?? []).map(toOperation) },
    }));
  }
  return {
    list: (tx) => load(q(tx), null),
    async get(tx, id) {
      return (await load(q(tx), id))[0] ?? null;
    },
    async save(tx, p) {
      const c = asPg(tx);
      await c.query(
        `INSERT INTO products (id, name, material_id, description) VALUES ($1, $2, $3, $4)
         ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, material_id = EXCLUDED.material_id,
           description = EXCLUDED.description, updated_at = now()`,
        [p.id, p.name, p.material, p.description ?? null],
      );
      // The routing is replaced whole; its child rows cascade.
      await c.query('DELETE FROM routing_operations WHERE product_id = $1', [p.id]);
      const ops = p.routing.operations;
      await insertRows(
        c,
        'routing_operations',
        [
          'product_id',
          'operation_id',
          'position',
          'name',
          'work_center_id',
          'standard_cycle_time_s',
          'parameters',
        ],
        ops.map((o, i) => [
          p.id,
          o.id,
          i,
          o.name,
          o.workCenter,
          o.standardCycleTimeSeconds,
          JSON.stringify(o.parameters),
        ]),
      );
      const each = <T>(list: (o: Operation) => readonly T[], row: (item: T) => unknown[]) =>
        ops.flatMap((o) => list(o).map((item, i) => [p.id, o.id, i, ...row(item)]));
      const key = ['product_id', 'operation_id', 'position'];
      await insertRows(
        c,
        'routing_operation_work_units',
        [...key, 'equipment_id'],
        each(
          (o) => o.workUnits ?? [],
          (id) => [id],
        ),
      );
      await insertRows(
        c,
        'routing_operation_qualifications',
        [...key, 'qualification_id'],
        each(
          (o) => o.qualifications,
          (id) => [id],
        ),
      );
      await insertRows(
        c,
        'routing_operation_bom',
        [...key, 'material_id', 'quantity', 'unit_id'],
        each(
          (o) => o.bom,
          (b) => [b.material, b.quantity, b.unit ?? null],
        ),
      );
      await insertRows(
        c,
        'routing_operation_characteristics',
        [...key, 'characteristic_id', 'name', 'kind', 'unit_id', 'lsl', 'usl', 'target'],
        each(
          (o) => o.characteristics,
          (ch) => [
            ch.id,
            ch.name,
            ch.kind,
            ch.unit ?? null,
            ch.lsl ?? null,
            ch.usl ?? null,
            ch.target ?? null,
          ],
        ),
      );
    },
    remove: (tx, id) => removeRow(asPg(tx), 'products', id),
    referrers: async () => [],
  };
}

/** The plant model on PostgreSQL (migration 0002). */
export function postgresPlantStore(db: Database): PlantStore {
  return {
    async lock(tx) {
      await asPg(tx).query('SELECT pg_advisory_xact_lock($1)', [PLANT_MODEL_LOCK]);
    },
    async deferConstraints(tx) {
      await asPg(tx).query('SET CONSTRAINTS ALL DEFERRED');
    },
    unit: simpleRepository<UnitOfMeasure, UnitRow>(db, {
      table: 'units',
      columns: 'id, name',
      toEntity: toUnit,
      async save(c, u) {
        await c.query(
          `INSERT INTO units (id, name) VALUES ($1, $2)
           ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, updated_at = now()`,
          [u.id, u.name],
        );
      },
      referrers: `SELECT format('material %L', id) AS what FROM material_definitions WHERE unit_id = $1
        UNION ALL SELECT DISTINCT ${OPERATION} || ' (bill of materials)' FROM routing_operation_bom WHERE unit_id = $1
        UNION ALL SELECT DISTINCT ${OPERATION} || ' (characteristics)' FROM routing_operation_characteristics WHERE unit_id = $1
        UNION ALL SELECT ${OPERATION} || ' (parameters)' FROM routing_operations
                   WHERE parameters @> jsonb_build_array(jsonb_build_object('unit', $1::text))
        UNION ALL SELECT format('signal %L', id) FROM signals WHERE unit_id = $1
        ORDER BY 1`,
    }),
    qualification: simpleRepository<QualificationDefinition, QualificationRow>(db, {
      table: 'qualifications',
      columns: 'id, name, description, validity_days',
      toEntity: toQualification,
      async save(c, x) {
        await c.query(
          `INSERT INTO qualifications (id, name, description, validity_days) VALUES ($1, $2, $3, $4)
           ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, description = EXCLUDED.description,
             validity_days = EXCLUDED.validity_days, updated_at = now()`,
          [x.id, x.name, x.description ?? null, x.validityDays ?? null],
        );
      },
      referrers: `SELECT DISTINCT format('person %L', person_id) AS what FROM person_qualifications WHERE qualification_id = $1
        UNION ALL SELECT ${OPERATION} || ' (required qualifications)' FROM routing_operation_qualifications
                   WHERE qualification_id = $1
        ORDER BY 1`,
    }),
    equipment: simpleRepository<Equipment, EquipmentRow>(db, {
      table: 'equipment',
      columns: 'id, parent_id, level, name, description, capabilities',
      toEntity: toEquipment,
      async save(c, e) {
        await c.query(
          `INSERT INTO equipment (id, parent_id, level, name, description, capabilities)
           VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (id) DO UPDATE SET parent_id = EXCLUDED.parent_id, level = EXCLUDED.level,
             name = EXCLUDED.name, description = EXCLUDED.description,
             capabilities = EXCLUDED.capabilities, updated_at = now()`,
          [e.id, e.parent ?? null, e.level, e.name, e.description ?? null, e.capabilities ?? []],
        );
      },
      referrers: `SELECT format('equipment %L (its parent)', id) AS what FROM equipment WHERE parent_id = $1
        UNION ALL SELECT ${OPERATION} || ' (work center)' FROM routing_operations WHERE work_center_id = $1
        UNION ALL SELECT ${OPERATION} || ' (work units)' FROM routing_operation_work_units WHERE equipment_id = $1
        UNION ALL SELECT format('signal %L', id) FROM signals WHERE equipment_id = $1
        ORDER BY 1`,
    }),
    material: simpleRepository<MaterialDefinition, MaterialRow>(db, {
      table: 'material_definitions',
      columns: 'id, name, unit_id, class, tracking, description',
      toEntity: toMaterial,
      async save(c, m) {
        await c.query(
          `INSERT INTO material_definitions (id, name, unit_id, class, tracking, description)
           VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, unit_id = EXCLUDED.unit_id,
             class = EXCLUDED.class, tracking = EXCLUDED.tracking, description = EXCLUDED.description,
             updated_at = now()`,
          [m.id, m.name, m.unit, m.class, m.tracking, m.description ?? null],
        );
      },
      referrers: `SELECT format('product %L (material)', id) AS what FROM products WHERE material_id = $1
        UNION ALL SELECT DISTINCT ${OPERATION} || ' (bill of materials)' FROM routing_operation_bom
                   WHERE material_id = $1
        ORDER BY 1`,
    }),
    product: productRepository(db),
    person: personRepository(db),
    signal: simpleRepository<Signal, SignalRow>(db, {
      table: 'signals',
      columns: SIGNAL_COLUMNS,
      toEntity: toSignal,
      async save(c, x) {
        await c.query(
          `INSERT INTO signals (id, equipment_id, name, description, data_type, unit_id, limit_low, limit_high,
                                deadband, source, source_tag, writable, packml)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
           ON CONFLICT (id) DO UPDATE SET equipment_id = EXCLUDED.equipment_id, name = EXCLUDED.name,
             description = EXCLUDED.description, data_type = EXCLUDED.data_type, unit_id = EXCLUDED.unit_id,
             limit_low = EXCLUDED.limit_low, limit_high = EXCLUDED.limit_high, deadband = EXCLUDED.deadband,
             source = EXCLUDED.source, source_tag = EXCLUDED.source_tag, writable = EXCLUDED.writable,
             packml = EXCLUDED.packml, updated_at = now()`,
          [
            x.id,
            x.equipment,
            x.name ?? null,
            x.description ?? null,
            x.dataType,
            x.unit ?? null,
            x.limits?.low ?? null,
            x.limits?.high ?? null,
            x.deadband ?? null,
            x.source,
            sourceTagOf(x.source),
            x.writable,
            x.packml ?? null,
          ],
        );
      },
      referrers: `SELECT 'its history' AS what WHERE EXISTS (
          SELECT 1 FROM signal_chunks c JOIN signals s USING (signal_no) WHERE s.id = $1)`,
    }),
  };
}

/** The columns `toSignal` reads. */
export const SIGNAL_COLUMNS =
  'id, equipment_id, name, description, data_type, unit_id, limit_low, limit_high, deadband, source, writable, packml';

export interface SignalRow {
  id: string;
  equipment_id: string;
  name: string | null;
  description: string | null;
  data_type: Signal['dataType'];
  unit_id: string | null;
  limit_low: number | null;
  limit_high: number | null;
  deadband: number | null;
  source: Signal['source'];
  writable: boolean;
  packml: Signal['packml'] | null;
}

/** A `signals` row (SIGNAL_COLUMNS) as the domain's Signal. */
export function toSignal(r: SignalRow): Signal {
  const limits = {
    ...(r.limit_low === null ? {} : { low: r.limit_low }),
    ...(r.limit_high === null ? {} : { high: r.limit_high }),
  };
  return {
    id: r.id,
    equipment: r.equipment_id,
    ...opt('name', r.name),
    ...opt('description', r.description),
    dataType: r.data_type,
    ...opt('unit', r.unit_id),
    ...(Object.keys(limits).length > 0 ? { limits } : {}),
    ...opt('deadband', r.deadband),
    source: r.source,
    writable: r.writable,
    ...opt('packml', r.packml),
  };
}

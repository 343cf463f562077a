/**
 * The plant model over HTTP and the CLI, on a real PostgreSQL: whole-file import (atomic,
 * idempotent, audited), master-data CRUD with the domain's validation, roles.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse } from 'yaml';
import { ProductSchema } from '../../src/domain/production/product.ts';
import { createTestApp, type TestApp } from '../support/app.ts';
import { createTestDatabase } from '../support/database.ts';
import { ROOT, runLoom as loom } from '../support/loom-process.ts';

const EXAMPLE = readFileSync(path.join(ROOT, 'examples/plant.yaml'), 'utf8');
const example = parse(EXAMPLE) as Record<string, { id: string }[]>;

let t: TestApp;
let admin: string;
let engineer: string;
let operator: string;

before(async () => {
  t = await createTestApp();
  admin = await t.adminCookie();
  engineer = (await t.userWithRoles('eng', ['engineer'])).cookie;
  operator = (await t.userWithRoles('op', ['operator'])).cookie;
});
after(async () => {
  await t?.close();
});

const TABLES = [
  'units',
  'qualifications',
  'equipment',
  'material_definitions',
  'products',
  'routing_operations',
  'routing_operation_work_units',
  'routing_operation_qualifications',
  'routing_operation_bom',
  'routing_operation_characteristics',
  'persons',
  'person_qualifications',
  'audit_log',
] as const;

async function counts(): Promise<Record<(typeof TABLES)[number], number>> {
  const r = await t.database.db.query(
    `SELECT ${TABLES.map((name) => `(SELECT count(*) FROM ${name})::int AS ${name}`).join(', ')}`,
  );
  return r.rows[0] as Record<(typeof TABLES)[number], number>;
}

const importYaml = (text: string, cookie = engineer, query = '') =>
  t.app.inject({
    method: 'POST',
    url: `/api/plant/import${query}`,
    headers: { cookie, 'content-type': 'application/yaml' },
    payload: text,
  });

const send = (method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, payload?: unknown, cookie = engineer) =>
  t.app.inject({
    method,
    url,
    headers: { cookie },
    ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }),
  });

async function auditFor(entityType: string, entityId: string) {
  const r = await t.app.inject({
    method: 'GET',
    url: `/api/audit?entityType=${entityType}&entityId=${entityId}`,
    headers: { cookie: admin },
  });
  return r.json().entries as { action: string; oldValue: unknown; newValue: unknown; actorName: string }[];
}

describe('plant model import', () => {
  it('imports the example plant from a YAML body and reports what it created', async () => {
    const before = await counts();
    const res = await importYaml(EXAMPLE);
    assert.equal(res.statusCode, 200, res.body);
    const summary = res.json();
    assert.equal(summary.dryRun, false);
    for (const section of ['units', 'qualifications', 'equipment', 'materials', 'products', 'personnel']) {
      assert.deepEqual(
        summary[section],
        { created: example[section]!.length, updated: 0, unchanged: 0 },
        section,
      );
    }
    assert.equal(summary.equipment.created, 24);
    const now = await counts();
    assert.equal(now.equipment, 24);
    assert.equal(now.products, 2);
    assert.equal(now.routing_operations, 7);
    assert.equal(now.persons, 5);
    const entities = Object.values(example).reduce((n, list) => n + list.length, 0);
    assert.equal(now.audit_log - before.audit_log, entities, 'one audit entry per created entity');
  });

  it('reads a product back exactly as the file defined it', async () => {
    const res = await send('GET', '/api/plant/products/compact-sedan');
    assert.equal(res.statusCode, 200);
    const inFile = ProductSchema.parse(example.products!.find((p) => p.id === 'compact-sedan'));
    assert.deepEqual(res.json(), JSON.parse(JSON.stringify(inFile)));
  });

  it('imports the same file again as all unchanged, writing no audit entries', async () => {
    const before = await counts();
    const res = await importYaml(EXAMPLE);
    assert.equal(res.statusCode, 200, res.body);
    for (const c of Object.values(res.json()).filter((v) => typeof v === 'object')) {
      assert.equal((c as { created: number }).created, 0);
      assert.equal((c as { updated: number }).updated, 0);
    }
    assert.equal(res.json().equipment.unchanged, 24);
    assert.deepEqual(await counts(), before);
  });

  it('redefines a stored id and audits its old and new value', async () => {
    const res = await importYaml(
      `units:\n  - { id: kg, name: kilogramme }\n  - { id: pcs, name: pieces }\n`,
      engineer,
    );
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(res.json().units, { created: 0, updated: 1, unchanged: 1 });
    const entries = await auditFor('unit', 'kg');
    const last = entries.at(-1)!;
    assert.equal(last.action, 'unit.updated');
    assert.equal(last.actorName, 'eng');
    assert.deepEqual(last.oldValue, { id: 'kg', name: 'kilogram' });
    assert.deepEqual(last.newValue, { id: 'kg', name: 'kilogramme' });
  });

  it('refuses a routing that names a missing work center, at its path, and writes nothing', async () => {
    const before = await counts();
    const res = await importYaml(`
units: [{ id: box, name: box }]
materials:
  - { id: crate, name: Crate, unit: box, class: finished, tracking: lot }
products:
  - id: crate
    name: Crate
    material: crate
    routing:
      operations:
        - { id: '10', name: Nail, workCenter: nailing-line, standardCycleTimeSeconds: 30 }
`);
    assert.equal(res.statusCode, 422, res.body);
    const body = res.json();
    assert.equal(body.code, 'LOOM_PLANT_INVALID');
    assert.deepEqual(
      body.issues.map((i: { path: string }) => i.path),
      ['products[0].routing.operations[0].workCenter'],
    );
    assert.match(body.issues[0].message, /nailing-line/);
    assert.deepEqual(await counts(), before);
  });

  it('refuses a cyclic equipment hierarchy', async () => {
    const res = await importYaml(`
equipment:
  - { id: area-a, name: A, level: Area, parent: cell-b }
  - { id: line-b, name: B, level: WorkCenter, parent: area-a }
  - { id: cell-b, name: C, level: Site, parent: line-b }
`);
    assert.equal(res.statusCode, 422, res.body);
    assert.ok(
      res.json().issues.some((i: { message: string }) => /loops back/.test(i.message)),
      res.body,
    );
  });

  it('refuses ids defined twice in one section', async () => {
    const res = await importYaml(`units:\n  - { id: bar, name: bar }\n  - { id: bar, name: bar again }\n`);
    assert.equal(res.statusCode, 422);
    assert.equal(res.json().issues[0].path, 'units[1].id');
  });

  it('answers malformed YAML with 400 naming the line', async () => {
    const before = await counts();
    const res = await importYaml('units:\n  - { id: bar, name: bar\nequipment: [\n');
    assert.equal(res.statusCode, 400, res.body);
    assert.equal(res.json().code, 'LOOM_PLANT_FILE_MALFORMED');
    assert.match(res.json().issues[0].path, /^line \d+, column \d+$/);
    assert.deepEqual(await counts(), before);
  });

  it('refuses an alias bomb without expanding it', async () => {
    const bomb = [
      'a: &a [x, x, x, x, x, x, x, x, x, x]',
      'b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]',
      'c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]',
      'd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]',
    ].join('\n');
    const res = await importYaml(bomb);
    assert.equal(res.statusCode, 400);
  });

  it('imports a JSON body', async () => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/plant/import',
      headers: { cookie: engineer },
      payload: { units: [{ id: 'Nm2', name: 'newton square metre' }] },
    });
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(res.json().units, { created: 1, updated: 0, unchanged: 0 });
    assert.equal((await send('GET', '/api/plant/units/Nm2')).statusCode, 200);
  });

  it('validates and counts on a dry run without writing', async () => {
    const before = await counts();
    const res = await importYaml('units: [{ id: dry, name: dry }]', engineer, '?dryRun=true');
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json().dryRun, true);
    assert.deepEqual(res.json().units, { created: 1, updated: 0, unchanged: 0 });
    assert.deepEqual(await counts(), before);
  });

  it('refuses a file that would break a stored product not in the file', async () => {
    const before = await counts();
    const res = await importYaml(
      'materials:\n  - { id: compact-sedan, name: Sedan, unit: pcs, class: component, tracking: serial }\n',
    );
    assert.equal(res.statusCode, 422, res.body);
    assert.deepEqual(
      res.json().issues.map((i: { path: string }) => i.path),
      ['products.compact-sedan.material'],
    );
    assert.match(res.json().issues[0].message, /^stored product 'compact-sedan': .*finished/);
    assert.deepEqual(await counts(), before);
  });

  it('serialises two concurrent imports of the same new entities', async () => {
    const file = 'qualifications:\n  - { id: forklift, name: Forklift licence }\n';
    const before = await counts();
    const [a, b] = await Promise.all([importYaml(file), importYaml(file)]);
    assert.equal(a.statusCode, 200, a.body);
    assert.equal(b.statusCode, 200, b.body);
    const created = [a, b].map((r) => r.json().qualifications.created as number).sort();
    assert.deepEqual(created, [0, 1]);
    const now = await counts();
    assert.equal(now.qualifications - before.qualifications, 1);
    assert.equal(now.audit_log - before.audit_log, 1);
  });
});

describe('plant master data', () => {
  it('lets an operator read but not write', async () => {
    assert.equal((await send('GET', '/api/plant/equipment', undefined, operator)).statusCode, 200);
    assert.equal(
      (await send('GET', '/api/plant/products/compact-sedan', undefined, operator)).statusCode,
      200,
    );
    const unit = { id: 'op-unit', name: 'nope' };
    assert.equal((await send('POST', '/api/plant/units', unit, operator)).statusCode, 403);
    assert.equal((await send('PUT', '/api/plant/units/kg', unit, operator)).statusCode, 403);
    assert.equal((await send('DELETE', '/api/plant/units/kg', undefined, operator)).statusCode, 403);
    assert.equal((await importYaml('units: []', operator)).statusCode, 403);
  });

  it('refuses anonymous reads', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/api/plant/units' });
    assert.equal(res.statusCode, 401);
  });

  it('creates, reads, replaces and deletes an equipment, auditing old and new values', async () => {
    const robot = { id: 'weld-robot-4', name: 'Weld robot 4', level: 'WorkUnit', parent: 'body-line-1' };
    const created = await send('POST', '/api/plant/equipment', robot);
    assert.equal(created.statusCode, 201, created.body);
    assert.deepEqual(created.json(), { ...robot, capabilities: [] });
    assert.equal((await send('POST', '/api/plant/equipment', robot)).statusCode, 409);

    const changed = {
      name: 'Weld robot 4 (new)',
      level: 'WorkUnit',
      parent: 'body-line-1',
      capabilities: ['opcua'],
    };
    const put = await send('PUT', '/api/plant/equipment/weld-robot-4', changed);
    assert.equal(put.statusCode, 200, put.body);
    assert.deepEqual((await send('GET', '/api/plant/equipment/weld-robot-4')).json(), {
      id: 'weld-robot-4',
      ...changed,
    });

    const del = await send('DELETE', '/api/plant/equipment/weld-robot-4?reason=scrapped');
    assert.equal(del.statusCode, 204);
    assert.equal((await send('GET', '/api/plant/equipment/weld-robot-4')).statusCode, 404);

    const entries = await auditFor('equipment', 'weld-robot-4');
    assert.deepEqual(
      entries.map((e) => e.action),
      ['equipment.created', 'equipment.updated', 'equipment.deleted'],
    );
    assert.equal(entries[0]!.oldValue, null);
    assert.deepEqual(entries[1]!.oldValue, { ...robot, capabilities: [] });
    assert.deepEqual(entries[1]!.newValue, { id: 'weld-robot-4', ...changed });
    assert.deepEqual(entries[2]!.oldValue, { id: 'weld-robot-4', ...changed });
  });

  it('writes no audit entry for a PUT that changes nothing', async () => {
    const before = await counts();
    const res = await send('PUT', '/api/plant/units/pcs', { name: 'pieces' });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(await counts(), before);
  });

  it('refuses to delete a work center a routing uses, naming the routing', async () => {
    const res = await send('DELETE', '/api/plant/equipment/body-line-1');
    assert.equal(res.statusCode, 409, res.body);
    assert.equal(res.json().code, 'LOOM_PLANT_IN_USE');
    assert.match(res.json().detail, /product 'compact-sedan' operation '10' \(work center\)/);
  });

  it('refuses to delete a unit only a recipe parameter uses', async () => {
    const res = await send('DELETE', '/api/plant/units/kA');
    assert.equal(res.statusCode, 409, res.body);
    assert.match(res.json().detail, /parameters/);
  });

  it('refuses a PUT that would make the hierarchy loop', async () => {
    const res = await send('PUT', '/api/plant/equipment/riverside', {
      name: 'Riverside',
      level: 'Site',
      parent: 'press-shop',
    });
    assert.equal(res.statusCode, 422, res.body);
    assert.ok(
      res.json().issues.some((i: { path: string }) => i.path === 'parent'),
      res.body,
    );
    assert.equal((await send('GET', '/api/plant/equipment/riverside')).json().parent, 'loom-motors');
  });

  it('refuses a PUT that moves a work unit away from the work center its routing names', async () => {
    const res = await send('PUT', '/api/plant/equipment/weld-robot-1', {
      name: 'Weld robot 1',
      level: 'WorkUnit',
      parent: 'paint-line-1',
    });
    assert.equal(res.statusCode, 422, res.body);
    assert.match(
      res.json().issues[0].path,
      /^products\.compact-sedan\.routing\.operations\[0\]\.workUnits\[0\]$/,
    );
  });

  it('refuses a PUT whose body names another id', async () => {
    const res = await send('PUT', '/api/plant/units/kg', { id: 'g', name: 'gram' });
    assert.equal(res.statusCode, 422);
    assert.equal(res.json().issues[0].path, 'id');
  });

  it('rejects SQL-looking ids by validation', async () => {
    const before = await counts();
    const res = await send('POST', '/api/plant/units', { id: "x'; DROP TABLE units; --", name: 'evil' });
    assert.equal(res.statusCode, 422, res.body);
    assert.equal(res.json().issues[0].path, 'id');
    const file = await importYaml(`units: [{ id: "1 OR 1=1", name: evil }]`);
    assert.equal(file.statusCode, 422);
    assert.equal(file.json().issues[0].path, 'units[0].id');
    assert.deepEqual(await counts(), before);
  });

  it('answers 404 for an unknown id', async () => {
    const res = await send('GET', '/api/plant/materials/no-such-material');
    assert.equal(res.statusCode, 404);
    assert.equal(res.json().code, 'LOOM_PLANT_NOT_FOUND');
  });

  it('validates a product against stored references', async () => {
    const res = await send('POST', '/api/plant/products', {
      id: 'door',
      name: 'Door',
      material: 'steel-coil',
      routing: {
        operations: [{ id: '10', name: 'Stamp', workCenter: 'press-1', standardCycleTimeSeconds: 5 }],
      },
    });
    assert.equal(res.statusCode, 422, res.body);
    assert.deepEqual(
      res.json().issues.map((i: { path: string }) => i.path),
      ['material', 'routing.operations[0].workCenter'],
    );
  });

  it('returns the equipment hierarchy as a tree', async () => {
    const forest = (await send('GET', '/api/plant/equipment?tree=true')).json();
    assert.equal(forest.length, 1);
    assert.equal(forest[0].id, 'loom-motors');
    assert.equal(forest[0].children[0].id, 'riverside');
    const sub = (await send('GET', '/api/plant/equipment/body-line-1/tree')).json();
    assert.deepEqual(
      sub.children.map((c: { id: string }) => c.id),
      ['weld-robot-1', 'weld-robot-2', 'weld-robot-3'],
    );
  });
});

describe('loom import', () => {
  it('imports the example plant into a fresh database and prints the summary', async () => {
    const database = await createTestDatabase();
    try {
      const env = { LOOM_DATABASE_URL: database.url };
      const r = await loom(['import', 'examples/plant.yaml'], env);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /imported: examples\/plant\.yaml/);
      assert.match(r.stdout, /equipment\s+24 created, 0 updated, 0 unchanged/);
      assert.match(r.stdout, /products\s+2 created/);
      const rows = await database.db.query<{ n: number }>('SELECT count(*)::int AS n FROM equipment');
      assert.equal(rows.rows[0]!.n, 24);
      const audit = await database.db.query<{ actor_name: string }>(
        `SELECT DISTINCT actor_name FROM audit_log WHERE entity_type = 'equipment'`,
      );
      assert.deepEqual(
        audit.rows.map((a) => a.actor_name),
        ['cli'],
      );

      const again = await loom(['import', '--dry-run', 'examples/plant.yaml'], env);
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stdout, /dry run/);
      assert.match(again.stdout, /equipment\s+0 created, 0 updated, 24 unchanged/);
    } finally {
      await database.drop();
    }
  });

  it('exits 2 and prints each problem with its path for a bad file', async () => {
    const database = await createTestDatabase();
    const dir = await mkdtemp(path.join(tmpdir(), 'loom-import-'));
    try {
      const file = path.join(dir, 'bad.yaml');
      await writeFile(
        file,
        'equipment:\n  - { id: e, name: E, level: Enterprise }\n  - { id: s, name: S, level: Site, parent: nowhere }\nunits:\n  - { id: "a b", name: x }\n',
      );
      const r = await loom(['import', file], { LOOM_DATABASE_URL: database.url });
      assert.equal(r.code, 2, r.stdout + r.stderr);
      assert.match(r.stderr, /units\[0\]\.id: /);
      assert.match(r.stderr, /equipment\[1\]\.parent: parent 'nowhere' does not exist/);
      const rows = await database.db.query<{ n: number }>('SELECT count(*)::int AS n FROM equipment');
      assert.equal(rows.rows[0]!.n, 0);

      await writeFile(file, 'units: [\n');
      const malformed = await loom(['import', file], { LOOM_DATABASE_URL: database.url });
      assert.equal(malformed.code, 2);
      assert.match(malformed.stderr, /line \d+, column \d+/);
    } finally {
      await database.drop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

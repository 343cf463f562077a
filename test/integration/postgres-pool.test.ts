import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  deferInsert,
  deferUpdate,
  JSONB_COLUMNS,
  MAX_PARAMETER_ROWS,
  takeDeferred,
} from '../../src/adapters/db/postgres-deferred-writes.ts';
import { migrate } from '../../src/adapters/db/migrate.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

let d: TestDatabase;
before(async () => {
  d = await createTestDatabase();
});
after(async () => {
  await d?.drop();
});

/** A user row: the pipelining tests need some insert with a visible effect. */
const insertUser = (q: { query(text: string): Promise<unknown> }, username: string) =>
  q.query(
    `INSERT INTO users (username, display_name, password_hash, roles) VALUES ('${username}', 'P', 'x', '{operator}')`,
  );
const rows = async (sql: string) => (await d.db.query(sql)).rowCount;
const testEvent = (aggregateId: string, extra: Record<string, unknown> = {}) => ({
  aggregate_type: 'test',
  aggregate_id: aggregateId,
  event_type: 'Tested',
  payload: { ok: true },
  ...extra,
});

describe('PostgreSQL pool and migrations', () => {
  it('survives the server killing its idle connections, and reconnects', async () => {
    await Promise.all([d.db.query('SELECT 1'), d.db.query('SELECT 1'), d.db.query('SELECT 1')]);
    const su = await d.superuser();
    try {
      await su.query(
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
          WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name = 'loom'`,
      );
    } finally {
      await su.end();
    }
    await new Promise((r) => setTimeout(r, 100));
    const r = await d.db.query<{ one: number }>('SELECT 1 AS one');
    assert.equal(r.rows[0]?.one, 1);
  });

  it('is idempotent: a second migrate applies nothing', async () => {
    assert.deepEqual(await migrate(d.db), []);
  });

  it('rolls a failed transaction back completely', async () => {
    await assert.rejects(
      d.db.transaction(async (tx) => {
        await tx.query(
          `INSERT INTO users (username, display_name, password_hash, roles) VALUES ('rollme', 'R', 'x', '{operator}')`,
        );
        throw new Error('boom');
      }),
      /boom/,
    );
    const r = await d.db.query(`SELECT 1 FROM users WHERE username = 'rollme'`);
    assert.equal(r.rowCount, 0);
  });

  it('pipelines BEGIN with the first statement: both run in one transaction that a throw rolls back', async () => {
    await assert.rejects(
      d.db.transaction(async (tx) => {
        // Issued before BEGIN has been answered; it must still run inside the transaction.
        const inTx = await tx.query<{ n: string }>(`SELECT pg_current_xact_id()::text AS n`);
        assert.ok(inTx.rows[0]?.n);
        await insertUser(tx, 'pipe1');
        throw new Error('boom');
      }),
      /boom/,
    );
    assert.equal(await rows(`SELECT 1 FROM users WHERE username = 'pipe1'`), 0);
  });

  it('commits deferred writes with COMMIT, and rolls everything back when they fail', async () => {
    const su = await d.superuser();
    try {
      await d.db.transaction(async (tx) => {
        await insertUser(tx, 'pipe2');
        deferInsert(tx, 'outbox_events', testEvent('pipe2'));
      });
      assert.equal(await rows(`SELECT 1 FROM users WHERE username = 'pipe2'`), 1);
      assert.equal(await rows(`SELECT 1 FROM outbox_events WHERE aggregate_id = 'pipe2'`), 1);

      // A deferred write that violates a constraint fails at commit: the whole transaction is
      // rolled back, including the statement that ran before it, and the caller gets the error.
      await assert.rejects(
        d.db.transaction(async (tx) => {
          await insertUser(tx, 'pipe3');
          deferInsert(tx, 'outbox_events', testEvent('pipe3', { status: 'no-such-status' }));
        }),
        /outbox_events_status_check|violates check constraint/,
      );
      assert.equal(await rows(`SELECT 1 FROM users WHERE username = 'pipe3'`), 0);
      assert.equal(await rows(`SELECT 1 FROM outbox_events WHERE aggregate_id = 'pipe3'`), 0);
      // The connection is usable afterwards (no transaction left open on it).
      const open = await su.query(
        `SELECT count(*)::int AS n FROM pg_stat_activity
          WHERE datname = current_database() AND application_name = 'loom' AND state LIKE 'idle in transaction%'`,
      );
      assert.equal(open.rows[0].n, 0);
    } finally {
      await su.end();
    }
  });

  it('refuses to report success when a statement failed inside the transaction and the error was swallowed', async () => {
    await assert.rejects(
      d.db.transaction(async (tx) => {
        await insertUser(tx, 'pipe4');
        await tx.query('SELECT 1/0').catch(() => undefined);
      }),
      /COMMIT answered ROLLBACK/,
    );
    assert.equal(await rows(`SELECT 1 FROM users WHERE username = 'pipe4'`), 0);
  });

  it('merges two deferred updates of one row and applies them at commit', async () => {
    const r = await d.db.query<{ id: number }>(
      `INSERT INTO users (username, display_name, password_hash, roles) VALUES ('pipe5', 'P', 'x', '{operator}') RETURNING id`,
    );
    const id = r.rows[0]!.id;
    await d.db.transaction(async (tx) => {
      // users is not a deferrable table in production code; the test only needs a row with an id.
      deferUpdate(tx, 'users' as 'order_operations', id, {
        display_name: 'first',
        must_change_password: true,
      });
      deferUpdate(tx, 'users' as 'order_operations', id, { display_name: 'second' });
      const seen = await tx.query<{ display_name: string }>('SELECT display_name FROM users WHERE id = $1', [
        id,
      ]);
      assert.equal(seen.rows[0]?.display_name, 'P', 'a deferred update is invisible before commit');
    });
    const after = await d.db.query<{ display_name: string; must_change_password: boolean }>(
      'SELECT display_name, must_change_password FROM users WHERE id = $1',
      [id],
    );
    assert.deepEqual(after.rows[0], { display_name: 'second', must_change_password: true });
  });

  it('applies one deferred update to several rows at commit', async () => {
    const r = await d.db.query<{ id: number }>(
      `INSERT INTO users (username, display_name, password_hash, roles)
       VALUES ('multi1', 'P', 'x', '{operator}'), ('multi2', 'P', 'x', '{operator}'), ('multi3', 'P', 'x', '{operator}')
       RETURNING id`,
    );
    const [a, b, c] = r.rows.map((row) => row.id);
    await d.db.transaction(async (tx) => {
      deferUpdate(tx, 'users' as 'order_operations', a!, { display_name: 'A' });
      deferUpdate(tx, 'users' as 'order_operations', c!, { display_name: 'C' });
    });
    const after = await d.db.query<{ id: number; display_name: string }>(
      'SELECT id, display_name FROM users WHERE id = ANY($1) ORDER BY id',
      [[a, b, c]],
    );
    assert.deepEqual(
      after.rows.map((row) => row.display_name),
      ['A', 'P', 'C'],
      'the two rows named change, the one between them does not',
    );
  });

  it('finds the rows of deferred updates by primary key, even in a plan made while the table was small', async () => {
    // Session 11: `UPDATE … FROM jsonb_populate_recordset(…) WHERE t.id = x.id` was planned (the
    // function is estimated at 100 rows) as a hash join over a sequential scan of the table, and the
    // generic plan stayed cached per connection: every completion read every operation.
    const plans: string[] = [];
    await assert.rejects(
      d.db.transaction(async (tx) => {
        await tx.query(
          `INSERT INTO users (username, display_name, password_hash, roles)
           SELECT 'bulk' || g, 'B', 'x', '{operator}' FROM generate_series(1, 3000) g`,
        );
        await tx.query('ANALYZE users');
        await tx.query('SET LOCAL plan_cache_mode = force_generic_plan');
        const shapes = [[{ display_name: 'one row' }], [{ display_name: 'two' }, { display_name: 'rows' }]];
        for (const [n, patches] of shapes.entries()) {
          patches.forEach((patch, i) => deferUpdate(tx, 'users' as 'order_operations', i + 1, patch));
          const statement = takeDeferred(tx)!;
          const values = statement.values ?? [];
          await tx.query(`PREPARE plan_test_${n} AS ${statement.text}`);
          // EXECUTE takes its arguments as SQL: the JSON text, an id or an array of ids.
          const literal = (v: unknown): string =>
            Array.isArray(v)
              ? `ARRAY[${v.join(',')}]`
              : typeof v === 'number'
                ? String(v)
                : `'${String(v).replaceAll("'", "''")}'`;
          const plan = await tx.query<{ 'QUERY PLAN': unknown }>(
            `EXPLAIN (FORMAT JSON) EXECUTE plan_test_${n}(${values.map(literal).join(', ')})`,
          );
          plans.push(JSON.stringify(plan.rows[0]?.['QUERY PLAN']));
        }
        throw new Error('roll back');
      }),
      /roll back/,
    );
    assert.equal(plans.length, 2);
    for (const plan of plans) {
      assert.match(plan, /"Index Name":"users_pkey"/, plan);
      assert.doesNotMatch(plan, /Seq Scan/, plan);
    }
  });

  it('executes the deferred writes with their cached generic plan instead of planning them every time', async () => {
    // Session 12: PostgreSQL kept choosing a custom plan for the prepared write statement (rows as
    // JSON), so it was planned on every commit (0.26 ms of 1 ms of server time per completion). The
    // JSON form is told to use its generic plan; the parameter form (session 16) settles on it by
    // itself after PostgreSQL's five custom plans, without the extra SET statement.
    const plansOf = async (rowsPerTable: number, rounds: number) => {
      const name = `generic_${rowsPerTable}_${Date.now()}`;
      for (let i = 0; i < rounds; i++) {
        await d.db.transaction(async (tx) => {
          for (let r = 1; r <= rowsPerTable; r++) {
            deferUpdate(tx, 'users' as 'order_operations', r, { display_name: `round ${i}` });
            deferInsert(tx, 'outbox_events', testEvent(name));
          }
          // Sequential transactions get the same idle connection back (pg-pool reuses the last one).
          await tx.query('SELECT 1');
        });
      }
      const shape = rowsPerTable <= MAX_PARAMETER_ROWS ? '% VALUES %' : '%jsonb_populate_recordset%';
      const stats = await d.db.transaction(
        async (tx) =>
          (
            await tx.query<{ generic: number; custom: number }>(
              `SELECT generic_plans::int AS generic, custom_plans::int AS custom FROM pg_prepared_statements
                WHERE statement LIKE 'WITH w0 AS (UPDATE users %) INSERT INTO outbox_events %' AND statement LIKE $1`,
              [shape],
            )
          ).rows,
      );
      assert.equal(
        await rows(`SELECT 1 FROM outbox_events WHERE aggregate_id = '${name}'`),
        rounds * rowsPerTable,
      );
      assert.equal(stats.length, 1, 'one prepared statement on the connection');
      return stats[0];
    };
    assert.deepEqual(await plansOf(MAX_PARAMETER_ROWS + 1, 8), { generic: 8, custom: 0 }, 'rows as JSON');
    assert.deepEqual(await plansOf(2, 12), { generic: 7, custom: 5 }, 'rows as parameters');
  });

  it('knows every jsonb column of the deferrable tables', async () => {
    const r = await d.db.query<{ table: string; column: string }>(
      `SELECT c.relname AS table, a.attname AS column FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
        WHERE c.relname = ANY($1) AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
          AND a.atttypid = 'jsonb'::regtype ORDER BY 1, 2`,
      [Object.keys(JSONB_COLUMNS)],
    );
    const catalog: Record<string, string[]> = Object.fromEntries(
      Object.keys(JSONB_COLUMNS).map((t) => [t, []]),
    );
    for (const row of r.rows) catalog[row.table]!.push(row.column);
    const known = Object.fromEntries(Object.entries(JSONB_COLUMNS).map(([t, cs]) => [t, [...cs].sort()]));
    assert.deepEqual(known, catalog);
  });

  it('writes the same values as parameters (few rows) as through one JSON array (many rows)', async () => {
    // Each kind of value a jsonb column can be given, a timestamp as a Date and as text, and NULL.
    const payloads: unknown[] = [{ k: 'v', n: [1, 2] }, 'a string', [1, 'two'], 42, true, null];
    const write = async (tag: string, count: number) => {
      const shapes: string[] = [];
      await d.db.transaction(async (tx) => {
        for (let i = 0; i < count; i++) {
          deferInsert(tx, 'audit_log', {
            actor_name: 'test',
            action: `write.${i}`,
            entity_type: 'test',
            entity_id: tag,
            reason: i % 2 ? null : `reason ${i}`,
            old_value: payloads[i % payloads.length],
            new_value: { i },
          });
          deferInsert(tx, 'outbox_events', {
            ...testEvent(tag),
            payload: payloads[i % (payloads.length - 1)],
            next_attempt_at: i % 2 ? new Date('2026-01-02T03:04:05.678Z') : '2026-01-02T03:04:05.678Z',
          });
        }
        const statement = takeDeferred(tx)!;
        shapes.push(statement.text);
        await tx.query(statement);
      });
      const audit = await d.db.query(
        `SELECT action, reason, old_value, new_value FROM audit_log WHERE entity_id = $1 ORDER BY id`,
        [tag],
      );
      const outbox = await d.db.query(
        `SELECT payload, next_attempt_at FROM outbox_events WHERE aggregate_id = $1 ORDER BY id`,
        [tag],
      );
      return { shape: shapes[0]!, rows: [...audit.rows, ...outbox.rows] };
    };
    const few = await write('values-few', MAX_PARAMETER_ROWS);
    const many = await write('values-many', MAX_PARAMETER_ROWS + 3);
    assert.match(few.shape, /VALUES/);
    assert.doesNotMatch(few.shape, /jsonb_populate_recordset/);
    assert.match(many.shape, /jsonb_populate_recordset/);
    assert.equal(few.rows.length, 2 * MAX_PARAMETER_ROWS);
    // The first rows of both transactions were given the same values.
    const firstOf = (rows: unknown[], n: number) => [...rows.slice(0, n)];
    assert.deepEqual(
      firstOf(few.rows, MAX_PARAMETER_ROWS),
      firstOf(many.rows, MAX_PARAMETER_ROWS),
      'audit rows',
    );
    assert.deepEqual(
      few.rows.slice(MAX_PARAMETER_ROWS),
      many.rows.slice(MAX_PARAMETER_ROWS + 3, 2 * MAX_PARAMETER_ROWS + 3),
      'outbox rows',
    );
    assert.deepEqual((few.rows[1] as { old_value: unknown }).old_value, 'a string');
  });

  it('gathers no statistics on JSON payload columns, and still on the columns queries filter by', async () => {
    await d.db.query(
      `INSERT INTO audit_log (actor_name, action, entity_type, entity_id, old_value, new_value)
       SELECT 'stats', 'stats.test', 'test', g::text, jsonb_build_object('g', g), '{"x": 1}' FROM generate_series(1, 50) g`,
    );
    await d.db.query('ANALYZE audit_log, routing_operations');
    const r = await d.db.query<{ attname: string }>(
      `SELECT attname FROM pg_stats WHERE tablename = 'audit_log' AND schemaname = current_schema() ORDER BY 1`,
    );
    const analysed = r.rows.map((row) => row.attname);
    assert.ok(analysed.includes('entity_id') && analysed.includes('action'), analysed.join());
    for (const skipped of ['old_value', 'new_value', 'signature'])
      assert.ok(!analysed.includes(skipped), skipped);
    const kept = await d.db.query<{ target: number | null }>(
      `SELECT attstattarget AS target FROM pg_attribute WHERE attrelid = 'routing_operations'::regclass AND attname = 'parameters'`,
    );
    assert.notEqual(
      kept.rows[0]?.target,
      0,
      'routing_operations.parameters is searched with @> and keeps its statistics',
    );
  });

  it('runs COPY on a connection that is not pipelined', async () => {
    const n = await d.db.transaction(
      async (tx) => {
        const { from: copyFrom } = await import('pg-copy-streams');
        const { pipeline } = await import('node:stream/promises');
        const { Readable } = await import('node:stream');
        await tx.query('CREATE TEMP TABLE copy_probe (x int) ON COMMIT DROP');
        await pipeline(Readable.from(['1\n', '2\n']), tx.query(copyFrom('COPY copy_probe FROM STDIN')));
        return (await tx.query<{ n: number }>('SELECT count(*)::int AS n FROM copy_probe')).rows[0]!.n;
      },
      { copy: true },
    );
    assert.equal(n, 2);
  });
});

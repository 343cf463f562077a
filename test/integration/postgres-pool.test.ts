import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { deferInsert, deferUpdate } from '../../src/adapters/db/postgres-deferred-writes.ts';
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

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { migrate } from '../../src/adapters/db/migrate.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

let d: TestDatabase;
before(async () => {
  d = await createTestDatabase();
});
after(async () => {
  await d?.drop();
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
});

import pg from 'pg';
import pino from 'pino';
import { randomDatabaseName } from '../../src/adapters/db/embedded-postgres-server.ts';
import { migrate } from '../../src/adapters/db/migrate.ts';
import { createDatabase, type Database } from '../../src/adapters/db/postgres-pool.ts';

/**
 * A fresh, migrated database for one test file on the PostgreSQL the runner chose
 * (embedded or server, scripts/run-tests.ts), dropped by `drop()`.
 */
export interface TestDatabase {
  readonly db: Database;
  readonly url: string;
  /** A superuser connection for tests that must bypass Loom (tamper tests). */
  superuser(): Promise<pg.Client>;
  drop(): Promise<void>;
}

export function testServerUrl(): string {
  return process.env.LOOM_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
}

function withDatabase(url: string, name: string): string {
  // Socket URLs (postgresql://user@%2Fpath:5432/db) and TCP URLs both end in /<db>.
  return url.replace(/\/[^/?]*(\?.*)?$/, `/${name}$1`);
}

export async function createTestDatabase(): Promise<TestDatabase> {
  const serverUrl = testServerUrl();
  const name = randomDatabaseName();
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = withDatabase(serverUrl, name);
  const db = createDatabase(url, { poolSize: 5, logger: pino({ level: 'silent' }) });
  const drop = async () => {
    await db.close();
    const a = new pg.Client({ connectionString: serverUrl });
    await a.connect();
    await a.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await a.end();
  };
  try {
    await migrate(db);
  } catch (e) {
    // A failing migration fails the test file's setup, which then has nothing to close: drop the
    // database here, or every test file leaves one behind on the shared server.
    await drop();
    throw e;
  }
  return {
    db,
    url,
    async superuser() {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      return c;
    },
    drop,
  };
}

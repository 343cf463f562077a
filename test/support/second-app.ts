import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { createDatabase } from '../../src/adapters/db/postgres-pool.ts';
import { loadConfig } from '../../src/config/config.ts';
import { composeLoom, type Loom } from '../../src/main/loom.ts';
import { ADMIN_PASSWORD, type TestApp } from './app.ts';

export interface SecondApp {
  readonly loom: Loom;
  readonly app: FastifyInstance;
  /** Closes this instance and its pool; the database stays (the first app drops it). */
  close(): Promise<void>;
}

/**
 * Another Loom instance on the first one's database, with its own connection pool: what a second
 * server behind the same load balancer is. Sessions live in the database, so cookies work on both.
 */
export async function createSecondApp(first: TestApp): Promise<SecondApp> {
  const db = createDatabase(first.database.url, { poolSize: 5, logger: pino({ level: 'silent' }) });
  const config = loadConfig({ env: { LOOM_ADMIN_PASSWORD: ADMIN_PASSWORD, LOOM_LOG_LEVEL: 'silent' } });
  const loom = await composeLoom({ config, db, logger: pino({ level: 'silent' }), clock: first.clock });
  await loom.app.ready();
  return {
    loom,
    app: loom.app,
    async close() {
      await loom.app.close();
      await db.close();
    },
  };
}

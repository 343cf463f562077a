import type { Logger } from 'pino';
import type { LoomConfig } from '../config/config.ts';
import {
  DataDirLockedError,
  startEmbeddedPostgres,
  type EmbeddedPostgres,
} from '../adapters/db/embedded-postgres-server.ts';
import { migrate } from '../adapters/db/migrate.ts';
import { createDatabase, type Database } from '../adapters/db/postgres-pool.ts';
import { maskUrl } from '../config/config.ts';

export interface OpenDatabase {
  readonly db: Database;
  readonly embedded: EmbeddedPostgres | null;
  readonly describe: string;
  close(): Promise<void>;
}

/**
 * The store for a config: the PostgreSQL server of `databaseUrl`, or the embedded cluster in
 * `dataDir`. `shareRunning` lets CLI tools (`loom audit verify`, `loom user add`) use the cluster
 * of a Loom server that is already running on the same data folder instead of refusing.
 */
export async function openDatabase(
  config: LoomConfig,
  logger: Logger,
  opts: { shareRunning?: boolean; migrate?: boolean } = {},
): Promise<OpenDatabase> {
  let embedded: EmbeddedPostgres | null = null;
  let url = config.databaseUrl;
  let describe = url ? `PostgreSQL server ${maskUrl(url)}` : '';
  if (!url) {
    try {
      embedded = await startEmbeddedPostgres({ dataDir: config.dataDir, log: (m) => logger.info(m) });
      url = embedded.url;
      describe = `embedded PostgreSQL in ${config.dataDir}`;
    } catch (e) {
      if (!(e instanceof DataDirLockedError) || !opts.shareRunning) throw e;
      const { socketDirOf } = await import('../adapters/db/embedded-postgres-server.ts');
      url = `postgresql://loom@${encodeURIComponent(socketDirOf(config.dataDir))}:5432/loom`;
      describe = `embedded PostgreSQL of the Loom running on ${config.dataDir} (pid ${e.pid})`;
    }
  }
  const db = createDatabase(url, {
    poolSize: config.databasePoolSize,
    logger,
    timeZone: config.plantTimeZone,
  });
  try {
    if (opts.migrate !== false) {
      const applied = await migrate(db);
      if (applied.length) logger.info({ applied }, 'database migrations applied');
    }
  } catch (e) {
    await db.close();
    await embedded?.stop();
    throw e;
  }
  return {
    db,
    embedded,
    describe,
    async close() {
      await db.close();
      await embedded?.stop();
    },
  };
}

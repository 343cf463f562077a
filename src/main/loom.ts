import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { argon2PasswordHasher } from '../adapters/crypto/argon2-password-hasher.ts';
import { postgresAuditTrail } from '../adapters/db/postgres-audit-trail.ts';
import { listenPostgres, type PostgresListener } from '../adapters/db/postgres-listener.ts';
import type { Database } from '../adapters/db/postgres-pool.ts';
import { postgresUnitOfWork } from '../adapters/db/postgres-unit-of-work.ts';
import { postgresUserStore } from '../adapters/db/postgres-user-store.ts';
import { buildHttpServer } from '../adapters/http/http-server.ts';
import { AuthService, type CachedCredential } from '../app/auth/auth-service.ts';
import { CredentialCache } from '../app/auth/credential-cache.ts';
import type { AuditTrail, PasswordHasher, UnitOfWork } from '../app/ports.ts';
import type { LoomConfig } from '../config/config.ts';
import { systemClock, type Clock } from '../domain/shared/clock.ts';
import { batchRecordFeature } from './batch-record-feature.ts';
import { commandFeature, type Commands } from './command-feature.ts';
import { erpInboundFeature } from './erp-inbound-feature.ts';
import { erpOutboundFeature, type ErpOutbound } from './erp-outbound-feature.ts';
import { executionFeature } from './execution-feature.ts';
import { materialFeature } from './material-feature.ts';
import { plantFeature } from './plant-feature.ts';
import { qualityFeature } from './quality-feature.ts';
import { telemetryFeature, type Telemetry } from './telemetry-feature.ts';

export interface Loom {
  readonly app: FastifyInstance;
  readonly auth: AuthService;
  readonly audit: AuditTrail;
  readonly uow: UnitOfWork;
  readonly db: Database;
  /** ERP outbound relay and file drop; `startServer` starts and stops their workers. */
  readonly erp: ErpOutbound;
  /** Signals, ingest pipeline, history, connection health; `startServer` starts the pipeline and connectors. */
  readonly telemetry: Telemetry;
  /** The command gateway; `startServer` connects it to the shop floor's connectors. */
  readonly commands: Commands;
  /**
   * Sessions and API tokens kept between changes (ADR 0013). Off until `start()` LISTENs for
   * credential changes (`startServer` does); until then every request reads the database.
   */
  readonly credentials: {
    start(): Promise<void>;
    stop(): Promise<void>;
    readonly cache: CredentialCache<CachedCredential>;
  };
}

/**
 * The composition root: the only place that constructs adapters and wires them to use cases.
 * Used by `loom start`, the CLI and the integration tests alike (tests inject; the server listens).
 */
export async function composeLoom(deps: {
  config: LoomConfig;
  db: Database;
  logger: Logger;
  clock?: Clock;
  hasher?: PasswordHasher;
  readinessExtra?: () => Promise<Record<string, { ok: boolean; detail?: string }>>;
  erp?: Pick<Parameters<typeof erpOutboundFeature>[0], 'delivery' | 'filePollMs'>;
}): Promise<Loom> {
  const clock = deps.clock ?? systemClock;
  const uow = postgresUnitOfWork(deps.db);
  const audit = postgresAuditTrail(deps.db);
  const users = postgresUserStore(deps.db);
  const hasher = deps.hasher ?? argon2PasswordHasher();
  const credentialCache = new CredentialCache<CachedCredential>();
  let credentialListener: PostgresListener | null = null;
  const credentials: Loom['credentials'] = {
    cache: credentialCache,
    async start() {
      if (credentialListener) return;
      // Any announced change empties the cache; a lost connection turns it off until LISTEN is
      // back (the listener then reports a change, which turns it on again, empty).
      credentialListener = await listenPostgres(
        deps.db,
        'loom_credentials_changed',
        () => credentialCache.resume(),
        deps.logger,
        { onLost: () => credentialCache.suspend() },
      );
      credentialCache.resume();
    },
    async stop() {
      credentialCache.suspend();
      await credentialListener?.stop();
      credentialListener = null;
    },
  };
  const auth = new AuthService({
    uow,
    users,
    audit,
    hasher,
    clock,
    sessionIdleMinutes: deps.config.sessionIdleMinutes,
    sessionMaxHours: deps.config.sessionMaxHours,
    credentials: credentialCache,
  });

  const erp = erpOutboundFeature({
    ...deps.erp,
    config: deps.config,
    db: deps.db,
    uow,
    audit,
    clock,
    auth,
    logger: deps.logger,
  });

  const telemetry = telemetryFeature({ config: deps.config, db: deps.db, clock, logger: deps.logger });
  const commands = commandFeature({
    db: deps.db,
    uow,
    audit,
    clock,
    auth,
    live: telemetry.live,
    logger: deps.logger,
  });

  const app = await buildHttpServer({
    logger: deps.logger,
    auth,
    audit,
    bodyLimitBytes: deps.config.bodyLimitBytes,
    cookieSecure: deps.config.cookieSecure,
    features: [
      plantFeature({ db: deps.db, uow, audit, clock }),
      executionFeature({ db: deps.db, uow, audit, clock, auth, timeZone: deps.config.plantTimeZone }),
      qualityFeature({ db: deps.db, uow, audit, clock, auth }),
      materialFeature({ db: deps.db, uow, audit, auth, logger: deps.logger }),
      batchRecordFeature({ db: deps.db, audit, clock }),
      erpInboundFeature({
        db: deps.db,
        uow,
        audit,
        clock,
        auth,
        timeZone: deps.config.plantTimeZone,
        mappingsDir: deps.config.erpMappingsDir,
      }),
      erp.routes,
      telemetry.routes,
      commands.routes,
    ],
    readiness: async () => {
      const checks: Record<string, { ok: boolean; detail?: string }> = {};
      try {
        await deps.db.query('SELECT 1');
        checks.database = { ok: true };
      } catch (e) {
        checks.database = { ok: false, detail: (e as Error).message };
      }
      Object.assign(checks, await erp.readiness(), (await deps.readinessExtra?.()) ?? {});
      return { ready: Object.values(checks).every((c) => c.ok), checks };
    },
  });
  return { app, auth, audit, uow, db: deps.db, erp, telemetry, commands, credentials };
}

import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import {
  postgresOutboxAdminStore,
  postgresOutboxRelayStore,
} from '../adapters/db/postgres-outbox-relay-store.ts';
import type { Database } from '../adapters/db/postgres-pool.ts';
import { intakeB2mml } from '../adapters/erp/b2mml-intake.ts';
import { b2mmlPerformanceEncoder } from '../adapters/erp/b2mml-performance-encoder.ts';
import { csvActualsFolder } from '../adapters/erp/csv-actuals-folder.ts';
import { parseOrderCsv } from '../adapters/erp/erp-csv.ts';
import { httpErpClient } from '../adapters/erp/http-erp-client.ts';
import { jsonPerformanceEncoder } from '../adapters/erp/json-performance.ts';
import {
  orderFileWatcher,
  type OrderFileHandler,
  type OrderFileWatcher,
} from '../adapters/erp/order-file-watcher.ts';
import { createXsdValidator, type XsdValidator } from '../adapters/erp/xsd-validator.ts';
import { erpOutboxRoutes } from '../adapters/http/routes/erp-outbox-routes.ts';
import type { AuthService } from '../app/auth/auth-service.ts';
import { FILE_DROP_ACTOR, importOrderFile } from '../app/erp/import-order-file.ts';
import type { ErpDeliveryHealth } from '../app/erp/outbox-admin.ts';
import { OutboxDeliverer, type DelivererOptions } from '../app/erp/outbox-deliverer.ts';
import type { OutboundEncoder } from '../app/erp/outbox-ports.ts';
import type { AuditTrail, UnitOfWork } from '../app/ports.ts';
import type { LoomConfig } from '../config/config.ts';
import type { Clock } from '../domain/shared/clock.ts';
import { erpDeps } from './erp-inbound-feature.ts';

export interface ErpOutbound {
  readonly routes: (app: FastifyInstance) => Promise<void>;
  /** The relay, when outbound delivery is configured (an ERP URL or an outbound folder). */
  readonly deliverer: OutboxDeliverer | null;
  readonly fileDrop: OrderFileWatcher | null;
  /** Starts the delivery loop and the file drop watcher, as configured (`loom start`). */
  start(): void;
  stop(): Promise<void>;
  health(): Promise<ErpDeliveryHealth>;
  readiness(): Promise<Record<string, { ok: boolean; detail?: string }>>;
}

export interface ErpOutboundDeps {
  readonly config: LoomConfig;
  readonly db: Database;
  readonly uow: UnitOfWork;
  readonly audit: AuditTrail;
  readonly clock: Clock;
  readonly auth: AuthService;
  readonly logger: Logger;
  /** Test and benchmark knobs of the relay (batch size, lanes, idle pause). */
  readonly delivery?: Partial<Pick<DelivererOptions, 'batchSize' | 'lanes' | 'idleMs'>>;
  readonly filePollMs?: number;
  /** The file drop's B2MML schema validator; by default created on the first `.xml` file. */
  readonly validator?: XsdValidator;
}

const orderCounts = (summary: unknown): string => {
  const s = summary as { created?: number; updated?: number; unchanged?: number };
  return `${s.created ?? 0} created, ${s.updated ?? 0} updated, ${s.unchanged ?? 0} unchanged`;
};

function encoderFor(config: LoomConfig): OutboundEncoder {
  switch (config.erpOutboundFormat) {
    case 'json':
      return jsonPerformanceEncoder;
    case 'b2mml': {
      let validator: Promise<XsdValidator> | undefined;
      return b2mmlPerformanceEncoder(() => (validator ??= createXsdValidator()));
    }
  }
}

/**
 * ERP outbound (issue 4): the outbox relay to the ERP's HTTP endpoint and/or the outbound folder,
 * the legacy inbound file drop, and their admin API (/api/erp/outbox, /api/erp/health).
 */
export function erpOutboundFeature(deps: ErpOutboundDeps): ErpOutbound {
  const { config, logger } = deps;
  const log = logger.child({ component: 'erp' });
  const adminStore = postgresOutboxAdminStore(deps.db);
  const configured = config.erpOutboundUrl !== undefined || config.erpOutboxDir !== undefined;

  const deliverer = configured
    ? new OutboxDeliverer(
        {
          uow: deps.uow,
          store: postgresOutboxRelayStore(),
          encoder: encoderFor(config),
          ...(config.erpOutboundUrl
            ? {
                endpoint: httpErpClient({
                  url: config.erpOutboundUrl,
                  timeoutMs: config.erpRequestTimeoutMs,
                  ...(config.erpOutboundToken ? { token: config.erpOutboundToken } : {}),
                }),
              }
            : {}),
          ...(config.erpOutboxDir ? { folder: csvActualsFolder(config.erpOutboxDir) } : {}),
          onError: (e) => log.error({ err: e }, 'ERP delivery round failed; will retry'),
        },
        {
          maxAttempts: config.erpMaxAttempts,
          retryBaseMs: config.erpRetryBaseMs,
          retryMaxMs: config.erpRetryMaxMs,
          ...deps.delivery,
        },
      )
    : null;

  let fileDrop: OrderFileWatcher | null = null;
  if (config.erpInboxDir) {
    const erp = erpDeps({
      db: deps.db,
      uow: deps.uow,
      audit: deps.audit,
      clock: deps.clock,
      auth: deps.auth,
      timeZone: config.plantTimeZone,
    });
    const execution = erp.execution;
    const csv: OrderFileHandler = async (name, content) => {
      const parsed = parseOrderCsv(content);
      if (!parsed.ok) return { ok: false, problems: parsed.problems };
      const r = await importOrderFile(execution, name, parsed.rows);
      if (!r.ok) return { ok: false, problems: [r.error.problem] };
      return {
        ok: true,
        summary: `${r.value.created} created, ${r.value.updated} updated, ${r.value.unchanged} unchanged`,
      };
    };
    // Compiled on the first XML file: a plant that only drops CSV never pays for the schema set.
    let validator: Promise<XsdValidator> | undefined = deps.validator && Promise.resolve(deps.validator);
    const xml: OrderFileHandler = async (name, content) => {
      const r = await intakeB2mml(
        { erp, validator: await (validator ??= createXsdValidator()), clock: deps.clock },
        content,
        FILE_DROP_ACTOR,
        { requestId: `file:${name}` },
        { accepts: ['ProcessProductionSchedule'] },
      );
      if (!r.ok) {
        return { ok: false, reason: `${r.error.code}: ${r.error.message}`, problems: r.problems };
      }
      if (r.replayed)
        return { ok: true, summary: `replay of BODID ${r.bodId}: already applied, nothing changed` };
      return { ok: true, summary: `BODID ${r.bodId}: ${orderCounts(r.summary)}` };
    };
    fileDrop = orderFileWatcher({
      dir: config.erpInboxDir,
      handlers: { csv, xml },
      ...(deps.filePollMs ? { pollMs: deps.filePollMs } : {}),
      onError: (e, file) => log.error({ err: e, file }, 'ERP file drop failed; will retry'),
      onProcessed: (file, outcome) =>
        outcome.ok
          ? log.info({ file, summary: outcome.summary }, 'ERP order file processed')
          : log.warn({ file, problems: outcome.problems }, 'ERP order file refused'),
    });
  }

  const health = async (): Promise<ErpDeliveryHealth> => ({
    configured,
    workerRunning: deliverer?.running ?? false,
    format: config.erpOutboundFormat,
    ...(await adminStore.health()),
  });

  return {
    routes: erpOutboxRoutes({ uow: deps.uow, store: adminStore, audit: deps.audit, health }),
    deliverer,
    fileDrop,
    start() {
      deliverer?.start();
      fileDrop?.start();
    },
    async stop() {
      await Promise.all([deliverer?.stop(), fileDrop?.stop()]);
    },
    health,
    // A slow or failing ERP does not make Loom unready (the outbox holds the messages); a relay that
    // is configured but not running does.
    async readiness() {
      if (!deliverer) return { erp: { ok: true, detail: 'outbound delivery not configured' } };
      return {
        erp: deliverer.running
          ? { ok: true }
          : { ok: false, detail: 'outbound delivery is configured but its worker is not running' },
      };
    },
  };
}

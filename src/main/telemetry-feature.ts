import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { startPostgresLiveBridge, type PostgresLiveBridge } from '../adapters/db/postgres-live-bridge.ts';
import { listenPostgres, type PostgresListener } from '../adapters/db/postgres-listener.ts';
import type { Database } from '../adapters/db/postgres-pool.ts';
import { postgresSampleStore } from '../adapters/db/postgres-sample-store.ts';
import { postgresSignalHistory } from '../adapters/db/postgres-signal-history.ts';
import { liveRoutes } from '../adapters/http/routes/live-routes.ts';
import { opcuaRoutes, type OpcUaBrowser } from '../adapters/http/routes/opcua-routes.ts';
import { telemetryRoutes } from '../adapters/http/routes/telemetry-routes.ts';
import { ConnectivityRegistry } from '../app/telemetry/connectivity-registry.ts';
import { IngestPipeline } from '../app/telemetry/ingest-pipeline.ts';
import type { MappedSignal } from '../app/telemetry/sample-store.ts';
import { LiveHub, connectPipeline, type LiveLimits } from '../app/telemetry/live-hub.ts';
import type { LoomConfig } from '../config/config.ts';
import type { Clock } from '../domain/shared/clock.ts';

export interface Telemetry {
  readonly pipeline: IngestPipeline;
  readonly connectivity: ConnectivityRegistry;
  /** Called after a tag-map reload with the signals whose source tag became mapped. */
  onSignalsMapped(listener: (signals: readonly MappedSignal[]) => void): void;
  /** Called after every tag-map reload with all signals (connectors that poll follow it). */
  onTagMapReloaded(listener: (signals: readonly MappedSignal[]) => void): void;
  /** Live fan-out to dashboards (`GET /api/live`) and, once started, to the other instances. */
  readonly live: LiveHub;
  readonly routes: (app: FastifyInstance) => Promise<void>;
  /** The OPC UA connector `GET /api/opcua/browse` asks (the shop floor sets it while it runs). */
  setOpcUaBrowser(browser: OpcUaBrowser | null): void;
  /**
   * Starts the ingest pipeline, follows tag-map changes (LISTEN) and joins the live fan-out between
   * instances (LISTEN/NOTIFY `loom_live`). Connectors start separately.
   */
  start(): Promise<void>;
  /** Writes what is buffered and stops. */
  stop(): Promise<void>;
}

/** Signals, the ingest pipeline, history and connection health (issue #5). */
export function telemetryFeature(deps: {
  config: LoomConfig;
  db: Database;
  clock: Clock;
  logger: Logger;
  /** Live stream bounds; defaults in `DEFAULT_LIVE_LIMITS`. */
  live?: Partial<LiveLimits>;
}): Telemetry {
  const log = deps.logger.child({ component: 'telemetry' });
  const connectivity = new ConnectivityRegistry(deps.clock);
  const pipeline = new IngestPipeline({
    store: postgresSampleStore(deps.db),
    clock: deps.clock,
    log,
    flushMs: deps.config.ingestFlushMs,
    maxBufferedSamples: deps.config.ingestBufferSamples,
    retentionDays: deps.config.telemetryRetentionDays ?? null,
  });
  const live = new LiveHub({ log, limits: deps.live });
  connectPipeline(live, pipeline);
  let bridge: PostgresLiveBridge | null = null;
  let listener: PostgresListener | null = null;
  let reload: NodeJS.Timeout | null = null;
  const addedListeners = new Set<(signals: readonly MappedSignal[]) => void>();
  const reloadListeners = new Set<(signals: readonly MappedSignal[]) => void>();
  const reloadSoon = () => {
    if (reload !== null) return;
    reload = setTimeout(() => {
      reload = null;
      pipeline.reloadSignals().then(
        (added) => {
          for (const listener of reloadListeners) listener(pipeline.signals());
          if (added.length > 0) for (const listener of addedListeners) listener(added);
        },
        (e: unknown) => log.error({ err: e }, 'reloading the tag map failed'),
      );
    }, 50);
  };
  const history = telemetryRoutes({
    history: postgresSignalHistory(deps.db),
    ingestStats: () => pipeline.stats(),
    connectivity: () => connectivity.list(),
    now: () => deps.clock.now(),
  });
  const stream = liveRoutes({ hub: live, bridgeStats: () => bridge?.stats() ?? null });
  let opcuaBrowser: OpcUaBrowser | null = null;
  const opcua = opcuaRoutes({ browser: () => opcuaBrowser });
  return {
    pipeline,
    connectivity,
    live,
    onSignalsMapped(listener) {
      addedListeners.add(listener);
    },
    onTagMapReloaded(listener) {
      reloadListeners.add(listener);
    },
    routes: async (app) => {
      await history(app);
      await stream(app);
      await opcua(app);
    },
    setOpcUaBrowser(browser) {
      opcuaBrowser = browser;
    },
    async start() {
      listener = await listenPostgres(deps.db, 'loom_signals_changed', reloadSoon, log);
      bridge = await startPostgresLiveBridge({ db: deps.db, hub: live, log });
      await pipeline.start();
    },
    async stop() {
      if (reload !== null) clearTimeout(reload);
      await bridge?.stop();
      bridge = null;
      await listener?.stop();
      listener = null;
      await pipeline.stop();
    },
  };
}

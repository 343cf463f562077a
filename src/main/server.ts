import type { Logger } from 'pino';
import type { LoomConfig } from '../config/config.ts';
import { systemClock } from '../domain/shared/clock.ts';
import { composeLoom, type Loom } from './loom.ts';
import { openDatabase } from './open-database.ts';
import { startShopFloor, type ShopFloor } from './shop-floor-feature.ts';

export interface RunningServer {
  readonly loom: Loom;
  readonly url: string;
  stop(): Promise<void>;
}

/** `loom start`: store, migrations, first admin, HTTP. Prints a generated admin password once, never to the log. */
export async function startServer(
  config: LoomConfig,
  logger: Logger,
  print: (line: string) => void,
): Promise<RunningServer> {
  const started = performance.now();
  const store = await openDatabase(config, logger);
  logger.info(`using ${store.describe}`);
  let loom: Loom;
  let shopFloor: ShopFloor | null = null;
  try {
    loom = await composeLoom({
      config,
      db: store.db,
      logger,
      readinessExtra: async () => shopFloor?.readiness() ?? {},
    });
    const admin = await loom.auth.bootstrapAdmin(config.adminPassword);
    if (admin.generatedPassword) {
      print(
        `\n  First start: created user 'admin' with the one-time password\n\n      ${admin.generatedPassword}\n\n` +
          `  It is shown only now and must be changed at first login.\n`,
      );
    } else if (admin.created) {
      logger.info("first start: created user 'admin' with the password from LOOM_ADMIN_PASSWORD");
    }
    shopFloor = await startShopFloor({
      config,
      telemetry: loom.telemetry,
      auth: loom.auth,
      clock: systemClock,
      logger,
    });
    await loom.app.listen({ host: config.host, port: config.port });
  } catch (e) {
    await shopFloor?.stop().catch(() => undefined);
    await store.close();
    throw e;
  }
  const address = loom.app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  const url = `http://${host}:${port}`;
  logger.info({ url, startupMs: Math.round(performance.now() - started) }, 'Loom is ready');

  // Link committed audit entries into the hash chain (docs/adr/0005): writers never wait for it.
  const chainer = setInterval(() => {
    loom.audit
      .chainPending()
      .catch((e: unknown) => logger.error({ err: e }, 'audit chaining failed; will retry'));
  }, 1000);
  chainer.unref();
  // ERP outbound relay and file drop (src/main/erp-outbound-feature.ts), when configured.
  loom.erp.start();

  let stopping: Promise<void> | undefined;
  return {
    loom,
    url,
    stop() {
      stopping ??= (async () => {
        clearInterval(chainer);
        await loom.erp.stop();
        await loom.app.close();
        await shopFloor?.stop();
        await loom.audit.chainPending().catch(() => 0);
        await store.close();
      })();
      return stopping;
    },
  };
}

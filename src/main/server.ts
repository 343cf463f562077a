import type { Logger } from 'pino';
import type { LoomConfig } from '../config/config.ts';
import { systemClock } from '../domain/shared/clock.ts';
import { composeLoom, type Loom } from './loom.ts';
import { openDatabase } from './open-database.ts';
import { startShopFloor, type ShopFloor } from './shop-floor-feature.ts';
import { startModbusDevice } from '../sim/modbus-device.ts';
import { SparkplugEdgeNode } from '../sim/sparkplug-edge.ts';

/** Where `loom start` runs the simulated Modbus press (examples/plant.yaml maps press-1 to it). */
const SIM_PRESS_PORT = 1502;

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
  opts: { sim?: boolean } = {},
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
    loom.commands.connect(shopFloor);
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
  const sim = opts.sim === true ? await startSimulatedPlant(config, shopFloor, logger) : null;

  let stopping: Promise<void> | undefined;
  return {
    loom,
    url,
    stop() {
      stopping ??= (async () => {
        clearInterval(chainer);
        await sim?.stop();
        await loom.erp.stop();
        await loom.app.close();
        loom.commands.disconnect();
        await shopFloor?.stop();
        await loom.audit.chainPending().catch(() => 0);
        await store.close();
      })();
      return stopping;
    },
  };
}

/**
 * The simulated plant beside the embedded broker (`loom start` without `--no-sim`): a Sparkplug
 * edge node `plant1/paint-edge` with the curing oven `oven-1`, whose metrics examples/plant.yaml
 * maps to `paint-oven-1.*` signals. A real MQTT client on the embedded broker, in this process.
 */
async function startSimulatedPlant(
  config: LoomConfig,
  shopFloor: ShopFloor | null,
  logger: Logger,
): Promise<{ stop(): Promise<void> } | null> {
  const press = await startModbusDevice({ host: '127.0.0.1', port: SIM_PRESS_PORT }).catch((e: unknown) => {
    logger.warn({ err: e, port: SIM_PRESS_PORT }, 'simulated Modbus press not started (port taken?)');
    return null;
  });
  if (config.mqttUrl !== undefined || shopFloor?.brokerUrl == null) {
    return press ? { stop: () => press.stop() } : null;
  }
  const edge = new SparkplugEdgeNode({
    url: shopFloor.brokerUrl,
    // Loom's own login: the embedded broker refuses anonymous clients when bound off loopback.
    ...(shopFloor.embeddedBrokerLogin ?? {}),
    groupId: 'plant1',
    edgeNodeId: 'paint-edge',
    primaryHostId: config.sparkplugHostId,
    devices: [{ id: 'oven-1', kind: 'oven' }],
    intervalMs: 1000,
    logger: logger.child({ component: 'sim' }),
  });
  await edge.start();
  logger.info(
    {
      edgeNode: 'plant1/paint-edge',
      devices: ['oven-1'],
      modbusPress: press ? `127.0.0.1:${press.port}` : null,
    },
    'simulated plant started (--no-sim to leave it out)',
  );
  return {
    stop: async () => {
      await edge.stop();
      await press?.stop();
    },
  };
}

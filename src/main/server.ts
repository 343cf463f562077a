import path from 'node:path';
import type { Logger } from 'pino';
import type { LoomConfig } from '../config/config.ts';
import { systemClock } from '../domain/shared/clock.ts';
import { composeLoom, type Loom } from './loom.ts';
import { openDatabase } from './open-database.ts';
import { startShopFloor, type ShopFloor } from './shop-floor-feature.ts';
import { startModbusDevice } from '../sim/modbus-device.ts';
import { spawnOpcUaMachine, type OpcUaMachineProcess } from '../sim/opcua-machine-process.ts';
import { SparkplugEdgeNode } from '../sim/sparkplug-edge.ts';

/** Where `loom start` runs the simulated Modbus press (examples/plant.yaml maps press-1 to it). */
const SIM_PRESS_PORT = 1502;

/** The simulated OPC UA PLCs `loom start` runs, each its own process (examples/plant.yaml maps them). */
const SIM_OPCUA_MACHINES = [
  { kind: 'press', machineId: 'press-2', port: 4841, seed: 2 },
  { kind: 'oven', machineId: 'paint-oven-2', port: 4842, seed: 3 },
] as const;

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
  // The simulated OPC UA PLCs take seconds to start (node-opcua's import): in parallel with the database.
  const opcuaSims = opts.sim === true ? startOpcUaSims(config, logger) : Promise.resolve([]);
  let store: Awaited<ReturnType<typeof openDatabase>>;
  try {
    store = await openDatabase(config, logger);
  } catch (e) {
    await Promise.all((await opcuaSims).map((m) => m.stop()));
    throw e;
  }
  logger.info(`using ${store.describe}`);
  let loom: Loom | undefined;
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
      // Loom started these servers itself: their certificates are trusted, nobody else's are.
      trustedOpcUaCertificates: (await opcuaSims).map((m) => m.certificateFile),
    });
    loom.commands.connect(shopFloor);
    await loom.credentials.start();
    await loom.app.listen({ host: config.host, port: config.port });
  } catch (e) {
    await loom?.credentials.stop().catch(() => undefined);
    await shopFloor?.stop().catch(() => undefined);
    await Promise.all((await opcuaSims).map((m) => m.stop()));
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
  const sim =
    opts.sim === true ? await startSimulatedPlant(config, shopFloor, logger, await opcuaSims) : null;

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
        await loom.credentials.stop();
        loom.commands.disconnect();
        await shopFloor?.stop();
        // The OPC UA PLCs go after the connector, so their going is not reported as a lost connection.
        await Promise.all((await opcuaSims).map((m) => m.stop()));
        await loom.audit.chainPending().catch(() => 0);
        await store.close();
      })();
      return stopping;
    },
  };
}

/**
 * The simulated plant (`loom start` without `--no-sim`), mapped by examples/plant.yaml: a Sparkplug
 * edge node `plant1/paint-edge` with the curing oven `oven-1` (`paint-oven-1.*`), a real MQTT client
 * on the embedded broker in this process; the Modbus press on 127.0.0.1:1502 (`press-1.*`); and the
 * OPC UA PLCs of `press-2` and `paint-oven-2` (started earlier, in their own processes; listed here).
 */
async function startSimulatedPlant(
  config: LoomConfig,
  shopFloor: ShopFloor | null,
  logger: Logger,
  opcua: readonly OpcUaMachineProcess[],
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
      opcua: Object.fromEntries(opcua.map((m) => [m.machineId, m.endpointUrl])),
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

/**
 * The simulated OPC UA PLCs, each its own process with its certificate store under the data
 * folder (kept, so a restart presents the same certificate). One that cannot start (its port is
 * taken) is left out with a warning; the rest of the plant runs.
 */
async function startOpcUaSims(config: LoomConfig, logger: Logger): Promise<OpcUaMachineProcess[]> {
  const started = await Promise.all(
    SIM_OPCUA_MACHINES.map((m) =>
      spawnOpcUaMachine({
        ...m,
        pkiDir: path.join(config.dataDir, 'sim-opcua', m.machineId),
        logger,
      }).catch((e: unknown) => {
        logger.warn({ err: e, machine: m.machineId, port: m.port }, 'simulated OPC UA machine not started');
        return null;
      }),
    ),
  );
  return started.filter((m): m is OpcUaMachineProcess => m !== null);
}

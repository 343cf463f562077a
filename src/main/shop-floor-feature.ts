import { randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { isLoopbackHost, startAedesBroker, type EmbeddedMqttBroker } from '../adapters/mqtt/aedes-broker.ts';
import { ModbusTcpPoller } from '../adapters/modbus/modbus-tcp-poller.ts';
import { OpcUaConnector } from '../adapters/opcua/opcua-connector.ts';
import { defaultSecurity, loadOpcUaEndpointsFile } from '../adapters/opcua/opcua-endpoints-file.ts';
import { MqttSparkplugHost } from '../adapters/sparkplug/mqtt-sparkplug-host.ts';
import type { AuthService } from '../app/auth/auth-service.ts';
import type { LoomConfig } from '../config/config.ts';
import { hasAnyRole, type Role } from '../domain/auth/roles.ts';
import type { Clock } from '../domain/shared/clock.ts';
import { tagKey } from '../domain/signal/sample.ts';
import type { Telemetry } from './telemetry-feature.ts';

/** Who may connect to the embedded broker: Loom itself, and API tokens of these roles. */
const BROKER_ROLES: readonly Role[] = ['integration', 'admin'];

export interface ShopFloor {
  /** The MQTT broker Loom's connectors use (embedded or `LOOM_MQTT_URL`), without credentials. */
  readonly brokerUrl: string | null;
  /**
   * Loom's own credentials on its embedded broker, for clients inside this process (the simulated
   * plant); null with an external broker. Never logged.
   */
  readonly embeddedBrokerLogin: { readonly username: string; readonly password: string } | null;
  readonly sparkplug: MqttSparkplugHost | null;
  /** Polls the Modbus TCP registers that signals name; writes with read-back. Null with `LOOM_DEVICE_CONNECTORS=false`. */
  readonly modbus: ModbusTcpPoller | null;
  /**
   * Subscribes to the OPC UA variables that signals name; writes with read-back, reads, method
   * calls, browsing; `trustCertificate` adds a server certificate to Loom's trust list. Null with
   * `LOOM_DEVICE_CONNECTORS=false`.
   */
  readonly opcua: OpcUaConnector | null;
  readiness(): Record<string, { ok: boolean; detail?: string }>;
  stop(): Promise<void>;
}

/**
 * Starts what talks to the shop floor, in order: the telemetry pipeline, the embedded MQTT broker
 * (unless `LOOM_MQTT_URL` names one), the Sparkplug host. Stops them in reverse order, so the
 * host publishes its STATE death (H6) before the broker goes and the pipeline writes last.
 */
export async function startShopFloor(deps: {
  config: LoomConfig;
  telemetry: Telemetry;
  auth: AuthService;
  clock: Clock;
  logger: Logger;
  /** Where the endpoints file's `passwordEnv` variables are read; default `process.env`. */
  env?: Readonly<Record<string, string | undefined>>;
  /** OPC UA server certificates (PEM or DER files) to put on the trust list before connecting. */
  trustedOpcUaCertificates?: readonly string[];
}): Promise<ShopFloor> {
  const { config, telemetry, logger } = deps;
  const opcuaDefaults = defaultSecurity(config);
  // A bad endpoints file is a configuration error: refused before anything starts.
  const opcuaEndpoints =
    config.opcuaEndpointsFile === undefined
      ? []
      : loadOpcUaEndpointsFile(config.opcuaEndpointsFile, deps.env ?? process.env, opcuaDefaults);
  await telemetry.start();
  let broker: EmbeddedMqttBroker | null = null;
  let host: MqttSparkplugHost | null = null;
  const direct = config.deviceConnectors;
  // Modbus TCP devices are polled directly: the register map is in the signals' sources.
  const modbus = direct
    ? new ModbusTcpPoller({
        sink: telemetry.pipeline,
        connectivity: telemetry.connectivity,
        clock: deps.clock,
        logger,
      })
    : null;
  if (modbus) {
    modbus.setSignals(telemetry.pipeline.signals());
    telemetry.onTagMapReloaded((signals) => modbus.setSignals(signals));
  }
  // OPC UA servers are subscribed to directly: endpoint and NodeId are in the signals' sources.
  const opcua = direct
    ? new OpcUaConnector({
        sink: telemetry.pipeline,
        connectivity: telemetry.connectivity,
        clock: deps.clock,
        logger,
        defaults: opcuaDefaults,
        endpoints: opcuaEndpoints,
        pkiDir: config.opcuaPkiDir ?? path.join(config.dataDir, 'pki', 'opcua'),
        maxMessageBytes: config.opcuaMaxMessageBytes,
        ...(config.opcuaMaxChunkCount !== undefined ? { maxChunkCount: config.opcuaMaxChunkCount } : {}),
        sessionTimeoutMs: config.opcuaSessionTimeoutMs,
      })
    : null;
  if (opcua) {
    // Certificates the composition vouches for (the simulated plant's own servers) go on the trust
    // list before the first connection, so they are never refused.
    for (const certificate of deps.trustedOpcUaCertificates ?? []) {
      await opcua.trustCertificate(certificate).then(
        (thumbprint) => logger.info({ certificate, thumbprint }, 'OPC UA server certificate trusted'),
        (e: unknown) =>
          logger.warn({ err: e, certificate }, 'OPC UA server certificate could not be trusted'),
      );
    }
    opcua.setSignals(telemetry.pipeline.signals());
    telemetry.onTagMapReloaded((signals) => opcua.setSignals(signals));
    telemetry.setOpcUaBrowser(opcua);
  } else {
    logger.info(
      'device connectors (OPC UA, Modbus TCP) are off on this instance (LOOM_DEVICE_CONNECTORS=false)',
    );
  }
  const stop = async () => {
    telemetry.setOpcUaBrowser(null);
    await Promise.all([modbus?.stop(), opcua?.stop()]);
    await host?.stop();
    await broker?.stop();
    await telemetry.stop();
  };
  let embeddedBrokerLogin: { username: string; password: string } | null = null;
  try {
    let url = config.mqttUrl;
    let username = config.mqttUsername;
    let password = config.mqttPassword;
    if (url === undefined && config.sparkplugEnabled) {
      // Loom's own connection to its embedded broker uses a secret made for this run.
      const internalPassword = randomBytes(24).toString('base64url');
      const internal = Buffer.from(internalPassword);
      broker = await startAedesBroker({
        host: config.mqttHost,
        port: config.mqttPort,
        maxMessageBytes: config.mqttMaxMessageBytes,
        logger,
        authenticate: async (user, pass) => {
          if (user === 'loom' && pass.length === internal.length && timingSafeEqual(pass, internal))
            return true;
          // Any other client presents an API token (role integration or admin) as its password.
          if (pass.length === 0) return isLoopbackHost(config.mqttHost);
          const principal = await deps.auth.authenticateToken(pass.toString('utf8'));
          return principal !== null && hasAnyRole(principal, BROKER_ROLES);
        },
      });
      url = broker.url;
      username = 'loom';
      password = internalPassword;
      embeddedBrokerLogin = { username, password };
    }
    if (url !== undefined && config.sparkplugEnabled) {
      host = new MqttSparkplugHost({
        url,
        ...(username !== undefined ? { username } : {}),
        ...(password !== undefined ? { password } : {}),
        ...(config.mqttCaFile !== undefined ? { ca: readFileSync(config.mqttCaFile) } : {}),
        hostId: config.sparkplugHostId,
        ...(config.sparkplugSharedGroup !== undefined ? { sharedGroup: config.sparkplugSharedGroup } : {}),
        ...(config.sparkplugGroups !== undefined ? { groups: config.sparkplugGroups } : {}),
        requestRebirths: config.sparkplugRequestRebirths,
        keepaliveSeconds: config.mqttKeepaliveSeconds,
        maxMessageBytes: config.mqttMaxMessageBytes,
        reorderTimeoutMs: config.sparkplugReorderTimeoutMs,
        rebirthIntervalMs: config.sparkplugRebirthIntervalMs,
        sink: telemetry.pipeline,
        connectivity: telemetry.connectivity,
        clock: deps.clock,
        logger,
      });
      await host.start();
      const sparkplug = host;
      // A newly mapped metric has no value until it changes (report by exception) or its node is
      // reborn: ask the nodes concerned for a rebirth, so the new signals start with their current value.
      telemetry.onSignalsMapped((signals) => {
        const nodes = new Map<string, { group: string; edgeNode: string }>();
        for (const s of signals) {
          const node = tagKey.sparkplugNodeOf(s.tag);
          if (node) nodes.set(`${node.group}/${node.edgeNode}`, node);
        }
        for (const { group, edgeNode } of nodes.values()) {
          sparkplug.requestRebirth(group, edgeNode, 'signals newly mapped to its metrics');
        }
      });
    }
  } catch (e) {
    await stop();
    throw e;
  }
  const sparkplug = host;
  return {
    brokerUrl: sparkplug?.status().broker ?? broker?.url ?? null,
    embeddedBrokerLogin,
    sparkplug,
    modbus,
    opcua,
    readiness(): Record<string, { ok: boolean; detail?: string }> {
      if (sparkplug === null) return {};
      const s = sparkplug.status();
      return {
        mqtt: s.connected
          ? { ok: true, detail: `${s.broker} as Sparkplug host '${s.hostId}'` }
          : { ok: false, detail: `not connected to ${s.broker}${s.lastError ? `: ${s.lastError}` : ''}` },
      };
    },
    stop,
  };
}

import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { postgresCommandStore } from '../adapters/db/postgres-command-store.ts';
import type { Database } from '../adapters/db/postgres-pool.ts';
import { commandRoutes } from '../adapters/http/routes/command-routes.ts';
import { encodeValue } from '../adapters/modbus/modbus-register-map.ts';
import type { ModbusTcpPoller } from '../adapters/modbus/modbus-tcp-poller.ts';
import type { AuthService } from '../app/auth/auth-service.ts';
import { CommandGateway } from '../app/equipment/command-gateway.ts';
import type { CommandConnectors, EquipmentConnector } from '../app/equipment/command-ports.ts';
import { deviceConnector, type DeviceChannel } from '../app/equipment/device-connector.ts';
import { sparkplugConnector, type SparkplugCommandChannel } from '../app/equipment/sparkplug-connector.ts';
import type { AuditTrail, UnitOfWork } from '../app/ports.ts';
import type { LiveHub } from '../app/telemetry/live-hub.ts';
import type { Clock } from '../domain/shared/clock.ts';
import type { Signal } from '../domain/signal/signal.ts';

/** How long a Sparkplug write waits for the DDATA that confirms it. */
const SPARKPLUG_READ_BACK_MS = 5000;

/**
 * The connectors of a running shop floor (`ShopFloor` from shop-floor-feature.ts fits): each is
 * null when it does not run.
 */
export interface CommandFloor {
  readonly modbus: Pick<ModbusTcpPoller, 'read' | 'write'> | null;
  readonly sparkplug: SparkplugCommandChannel | null;
  /** OPC UA (`OpcUaConnector`): `read(target)` and `write(target, value)` with read-back by source tag. */
  readonly opcua?: DeviceChannel | null;
}

export interface Commands {
  readonly gateway: CommandGateway;
  readonly routes: (app: FastifyInstance) => Promise<void>;
  /** Points the gateway at the running connectors (`startServer`, once the shop floor is up). */
  connect(floor: CommandFloor): void;
  /** The shop floor is stopping: commands fail with "no connector" rather than reach a closed one. */
  disconnect(): void;
}

/** The Modbus poller as a device channel: strings have no Modbus register type. */
function modbusChannel(poller: Pick<ModbusTcpPoller, 'read' | 'write'>): DeviceChannel {
  return {
    read: (tag) => poller.read(tag),
    write: async (tag, value) =>
      typeof value === 'string'
        ? {
            ok: false,
            code: 'LOOM_MODBUS_TYPE_MISMATCH',
            message: 'a Modbus register takes a number or a boolean',
          }
        : poller.write(tag, value),
  };
}

/** A Modbus value must fit its register (type, range, whole scale steps) before anything is sent. */
function checkModbus(signal: Signal, value: number | boolean | string): string | null {
  if (!('modbus' in signal.source)) return null;
  if (typeof value === 'string') return 'a Modbus register takes a number or a boolean';
  const enc = encodeValue(value, signal.source.modbus);
  return enc.ok ? null : enc.message;
}

/** The command gateway (issue #6): `POST /api/equipment/:id/commands` and its reads. */
export function commandFeature(deps: {
  db: Database;
  uow: UnitOfWork;
  audit: AuditTrail;
  clock: Clock;
  auth: AuthService;
  live: LiveHub;
  logger: Logger;
  /** Default 5000 ms. */
  sparkplugReadBackMs?: number;
}): Commands {
  let modbus: EquipmentConnector | null = null;
  let sparkplug: EquipmentConnector | null = null;
  let opcua: EquipmentConnector | null = null;
  const connectors: CommandConnectors = {
    for(signal) {
      if ('modbus' in signal.source) {
        return (
          modbus ?? {
            unavailable:
              'no Modbus connector runs in this Loom instance (the shop floor is not started, or LOOM_DEVICE_CONNECTORS=false: send the command to the instance that runs the device connectors)',
          }
        );
      }
      if ('sparkplug' in signal.source) {
        return (
          sparkplug ?? {
            unavailable:
              'no Sparkplug host runs in this Loom (LOOM_SPARKPLUG_ENABLED=false, or the shop floor is not started)',
          }
        );
      }
      return (
        opcua ?? {
          unavailable:
            'no OPC UA client runs in this Loom instance (the shop floor is not started, or LOOM_DEVICE_CONNECTORS=false: send the command to the instance that runs the device connectors)',
        }
      );
    },
  };
  const gateway = new CommandGateway({
    uow: deps.uow,
    store: postgresCommandStore(deps.db),
    audit: deps.audit,
    clock: deps.clock,
    connectors,
    sign: (principal, input, record) => deps.auth.sign(principal, input, record),
    log: deps.logger.child({ component: 'commands' }),
  });
  return {
    gateway,
    routes: commandRoutes(gateway),
    connect(floor) {
      modbus = floor.modbus ? deviceConnector(modbusChannel(floor.modbus), { check: checkModbus }) : null;
      sparkplug = floor.sparkplug
        ? sparkplugConnector({
            channel: floor.sparkplug,
            hub: deps.live,
            readBackTimeoutMs: deps.sparkplugReadBackMs ?? SPARKPLUG_READ_BACK_MS,
          })
        : null;
      // OPC UA: the one place its client joins the gateway (reads and writes by source tag).
      opcua = floor.opcua ? deviceConnector(floor.opcua) : null;
    },
    disconnect() {
      modbus = null;
      sparkplug = null;
      opcua = null;
    },
  };
}

import { z } from 'zod';
import { withArticle, type EquipmentCatalog } from '../equipment/equipment.ts';
import { atPath, parseAt } from '../shared/field-issues.ts';
import { Description, Identifier, Name } from '../shared/fields.ts';
import { ok, type FieldIssue, type Result } from '../shared/result.ts';
import { plantInvalid } from '../plant/plant-errors.ts';
import { tagKey } from './sample.ts';

export const SIGNAL_DATA_TYPES = ['number', 'boolean', 'string'] as const;
export type SignalDataType = (typeof SIGNAL_DATA_TYPES)[number];

/**
 * Sparkplug ids (group, edge node, device) are UTF-8 without the MQTT wildcards and separator
 * (Sparkplug 3.0 §1, RELIABILITY.md H20).
 */
const SparkplugId = z
  .string()
  .min(1)
  .max(256)
  .refine((v) => !/[+/#]/.test(v), "must not contain '+', '/' or '#' (MQTT topic characters)");

const SparkplugSource = z.strictObject({
  group: SparkplugId,
  edgeNode: SparkplugId,
  /** Unset: a metric of the edge node itself (NBIRTH/NDATA). */
  device: SparkplugId.optional(),
  metric: z.string().min(1).max(1024),
});

export const MODBUS_TABLES = ['holding', 'input', 'coil', 'discrete'] as const;
export const MODBUS_TYPES = ['int16', 'uint16', 'int32', 'uint32', 'float32', 'bool'] as const;

/**
 * A Modbus TCP register (or coil) read by Loom's poller. Multi-word values follow `wordOrder`
 * (`big`: high word first, the Modbus convention; `little`: low word first, common in PLCs) and
 * `byteOrder` within each word; value = raw × scale + offset.
 */
const ModbusSource = z
  .strictObject({
    host: z.string().min(1).max(253),
    port: z.number().int().min(1).max(65535).default(502),
    unitId: z.number().int().min(0).max(255).default(1),
    table: z.enum(MODBUS_TABLES),
    /** Zero-based protocol address (register 40001 is holding address 0). */
    address: z.number().int().min(0).max(65535),
    type: z.enum(MODBUS_TYPES),
    wordOrder: z.enum(['big', 'little']).default('big'),
    byteOrder: z.enum(['big', 'little']).default('big'),
    scale: z.number().finite().default(1),
    offset: z.number().finite().default(0),
    /** Poll period of this register, in ms. */
    pollMs: z.number().int().min(50).max(3_600_000).default(1000),
  })
  .superRefine((m, ctx) => {
    const words = m.type === 'int32' || m.type === 'uint32' || m.type === 'float32' ? 2 : 1;
    if (m.address + words > 65536) {
      ctx.addIssue({
        code: 'custom',
        path: ['address'],
        message: `a ${m.type} at ${m.address} runs past the last address 65535; use at most ${65536 - words}`,
      });
    }
    const bit = m.table === 'coil' || m.table === 'discrete';
    if (bit !== (m.type === 'bool')) {
      ctx.addIssue({
        code: 'custom',
        path: ['type'],
        message: bit ? `${m.table}s hold single bits: use type bool` : `bool needs table coil or discrete`,
      });
    }
  });

/**
 * An OPC UA variable read by Loom's OPC UA client through a subscription (one monitored item per
 * signal). The endpoint's security (mode, policy, login) is connection configuration, not plant
 * data: see `LOOM_OPCUA_*` and the endpoints file. The signal's `deadband` becomes the monitored
 * item's absolute DataChangeFilter, so the server does not send what Loom would drop.
 */
const OpcUaSource = z.strictObject({
  /** The server's endpoint URL, `opc.tcp://host:port/path`. */
  endpoint: z
    .string()
    .max(2048)
    .regex(
      /^opc\.tcp:\/\/[^\s/?#]+(\/[^\s?#]*)?$/,
      'must be an OPC UA endpoint URL: opc.tcp://host:port/path',
    ),
  /**
   * The variable's NodeId in OPC UA string notation: `ns=2;s=Oven.Temperature`, `ns=3;i=1001`,
   * `nsu=urn:vendor:plc;s=Line1.Speed` (a namespace URI survives the server renumbering namespaces).
   */
  nodeId: z
    .string()
    .max(4096)
    .regex(
      /^(?:(?:ns=\d{1,5}|nsu=[^;]+);)?(?:i=\d{1,10}|s=.+|g=[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|b=[A-Za-z0-9+/=]+)$/s,
      "must be a NodeId like 'ns=2;s=Oven.Temperature', 'ns=3;i=1001' or 'nsu=<namespace uri>;s=<name>'",
    ),
  /** The monitored item's sampling interval, ms (0: as fast as the server can). */
  samplingMs: z.number().int().min(0).max(3_600_000).default(1000),
  /** Values the server may queue between two publishes (no loss when it samples faster). */
  queueSize: z.number().int().min(1).max(10_000).default(10),
});

/** Where a signal's values come from: exactly one source per signal. */
export const SignalSourceSchema = z.union([
  z.strictObject({ sparkplug: SparkplugSource }),
  z.strictObject({ modbus: ModbusSource }),
  z.strictObject({ opcua: OpcUaSource }),
]);
export type SignalSource = z.output<typeof SignalSourceSchema>;
export type ModbusRegisterSource = z.output<typeof ModbusSource>;
export type OpcUaNodeSource = z.output<typeof OpcUaSource>;

/**
 * What a signal is to the command gateway. `state`: it carries the equipment's PackML state (a
 * state name such as `Idle`, or its PackML number, 1–17); interlocks read it. `command`: start,
 * stop, hold, unhold, reset and abort are written to it as PackML command numbers (CntrlCmd:
 * 1 Reset, 2 Start, 3 Stop, 4 Hold, 5 Unhold, 6 Suspend, 7 Unsuspend, 8 Abort, 9 Clear).
 */
export const PACKML_ROLES = ['state', 'command'] as const;
export type PackmlRole = (typeof PACKML_ROLES)[number];

const Limits = z
  .strictObject({ low: z.number().finite().optional(), high: z.number().finite().optional() })
  .refine((l) => l.low === undefined || l.high === undefined || l.low <= l.high, {
    message: 'low must not be above high',
    path: ['low'],
  });

/**
 * A named, typed, equipment-scoped value (`oven-1.temperature`) mapped from one source tag.
 * A plant-model entity: it lives in the plant file's `signals` section and in `/api/plant/signals`.
 */
export const SignalSchema = z
  .strictObject({
    id: Identifier,
    /** The equipment the value belongs to. */
    equipment: Identifier,
    name: Name.optional(),
    description: Description.optional(),
    dataType: z.enum(SIGNAL_DATA_TYPES),
    /** A unit of measure id from the `units` section. */
    unit: Identifier.optional(),
    /** Engineering limits: a value outside them is an alarm condition. */
    limits: Limits.optional(),
    /**
     * A new value is kept only when it differs from the last kept one by more than this
     * (absolute, in the signal's unit). Numbers only; 0 or unset keeps every change.
     */
    deadband: z.number().finite().min(0).optional(),
    source: SignalSourceSchema,
    /**
     * Commands (`POST /api/equipment/:id/commands`) may write it: a setpoint or a recipe
     * parameter. Read-only unless said; the source must be writable too (a holding register or
     * coil, an OPC UA variable with write access, a metric the edge node accepts in a DCMD).
     */
    writable: z.boolean().default(false),
    /** Its PackML role for the command gateway, if any (see `PACKML_ROLES`). */
    packml: z.enum(PACKML_ROLES).optional(),
  })
  .superRefine((s, ctx) => {
    if (s.packml === 'command' && !s.writable) {
      ctx.addIssue({
        code: 'custom',
        path: ['writable'],
        message: 'a PackML command signal is written by the command gateway: set writable: true',
      });
    }
    if (
      'modbus' in s.source &&
      s.writable &&
      (s.source.modbus.table === 'input' || s.source.modbus.table === 'discrete')
    ) {
      ctx.addIssue({
        code: 'custom',
        path: ['writable'],
        message: `Modbus ${s.source.modbus.table} ${s.source.modbus.table === 'input' ? 'registers are' : 'inputs are'} read-only; use a holding register or coil, or writable: false`,
      });
    }
    if (s.dataType !== 'number' && s.deadband !== undefined && s.deadband > 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['deadband'],
        message: `applies to numbers only; ${s.dataType} signals keep every change`,
      });
    }
    if (s.dataType !== 'number' && s.limits !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['limits'],
        message: `apply to numbers only, not to ${s.dataType} signals`,
      });
    }
  });
export type Signal = z.output<typeof SignalSchema>;

/** The source tag key a signal maps from (see `tagKey`). */
export function sourceTagOf(source: SignalSource): string {
  if ('opcua' in source) return tagKey.opcua(source.opcua.endpoint, source.opcua.nodeId);
  if ('modbus' in source) {
    const m = source.modbus;
    return tagKey.modbus(`${m.host}:${m.port}/${m.unitId}`, `${m.table}:${m.address}:${m.type}`);
  }
  const s = source.sparkplug;
  return tagKey.sparkplug(s.group, s.edgeNode, s.device ?? null, s.metric);
}

export interface SignalReferences {
  readonly units: ReadonlySet<string>;
  readonly equipment: EquipmentCatalog;
}

/** References of one signal: its equipment and unit exist. */
export function checkSignalReferences(signal: Signal, refs: SignalReferences, at: string): FieldIssue[] {
  const issues: FieldIssue[] = [];
  const equipment = refs.equipment.get(signal.equipment);
  if (!refs.equipment.has(signal.equipment)) {
    issues.push({
      path: atPath(at, 'equipment'),
      message: `equipment '${signal.equipment}' is not defined; define it in equipment or use an existing id`,
    });
  } else if (equipment && equipment.level === 'Enterprise') {
    issues.push({
      path: atPath(at, 'equipment'),
      message: `'${signal.equipment}' is ${withArticle(equipment.level)}; signals belong to a Site, Area, WorkCenter or WorkUnit`,
    });
  }
  if (signal.unit !== undefined && !refs.units.has(signal.unit)) {
    issues.push({
      path: atPath(at, 'unit'),
      message: `unit '${signal.unit}' is not defined; define it in units or use an existing id`,
    });
  }
  return issues;
}

/** One source tag feeds one signal: a second signal on the same tag would split its history. */
export function repeatedSourceTags(entries: readonly { at: string; value: Signal }[]): FieldIssue[] {
  const owner = new Map<string, string>();
  const issues: FieldIssue[] = [];
  for (const { at, value } of entries) {
    const tag = sourceTagOf(value.source);
    const first = owner.get(tag);
    if (first === undefined) owner.set(tag, at);
    else {
      issues.push({
        path: atPath(at, 'source'),
        message: `this source already feeds the signal at ${first}; one source tag maps to one signal`,
      });
    }
  }
  return issues;
}

/** One equipment has at most one PackML state signal and one PackML command signal. */
export function repeatedPackmlRoles(entries: readonly { at: string; value: Signal }[]): FieldIssue[] {
  const owner = new Map<string, string>();
  const issues: FieldIssue[] = [];
  for (const { at, value } of entries) {
    if (value.packml === undefined) continue;
    const key = `${value.equipment}\u0000${value.packml}`;
    const first = owner.get(key);
    if (first === undefined) owner.set(key, at);
    else {
      issues.push({
        path: atPath(at, 'packml'),
        message: `equipment '${value.equipment}' already has its PackML ${value.packml} signal at ${first}; one per equipment`,
      });
    }
  }
  return issues;
}

/** A single signal from the API, checked against stored equipment and units. */
export function validateSignal(input: unknown, refs: SignalReferences): Result<Signal> {
  const parsed = parseAt(SignalSchema, input, '', 'signal');
  if (!parsed.ok) return plantInvalid('signal', parsed.issues);
  const issues = checkSignalReferences(parsed.value, refs, '');
  return issues.length > 0 ? plantInvalid('signal', issues) : ok(parsed.value);
}

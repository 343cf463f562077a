import { EventEmitter } from 'node:events';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import mqtt, { type MqttClient } from 'mqtt';
import pino, { type Logger } from 'pino';
import { systemClock, type Clock } from '../domain/shared/clock.ts';
import {
  LoadGenerator,
  Oven,
  Press,
  seededRandom,
  type MetricValue,
  type SimulatedMachine,
  type WriteRefusal,
} from './plant-physics.ts';
import {
  BDSEQ_METRIC,
  REBIRTH_METRIC,
  RollingBuffer,
  SampleStore,
  birthMetric,
  changed,
  commandValue,
  dataMetric,
  deathPayload,
  decodeCommand,
  encodePayload,
  parseState,
  topics,
  type MetricDefinition,
  type Sample,
} from './sparkplug-edge-protocol.ts';

/**
 * A simulated Sparkplug B edge node: a real MQTT client that publishes a few simulated machines
 * the way an Ignition/Cirrus Link edge does, rule by rule (RELIABILITY.md B.3, E1–E14). Used by
 * `loom sim sparkplug`, by the integration tests, and by the benchmarks (load-generator devices).
 *
 * Session: Clean Session 3.1.1 CONNECT whose Will is the NDEATH carrying bdSeq (E1, E2); bdSeq
 * goes up by one on every CONNECT, reconnects included, and survives restarts in `bdSeqFile` (E3);
 * subscribe NCMD/DCMD and the Primary Host STATE (E4); wait for the host online (E5); on a valid
 * host offline publish NDEATH, disconnect and start over (E6); NBIRTH, DBIRTHs (E7, E8); data by
 * exception (E9, E10); rebirth on request (E11); DDEATH on unplug (E12); NDEATH before DISCONNECT
 * (E13); store-and-forward with a rolling buffer, flushed as historical after the next birth (E14).
 */

/** Which simulated machine a device is. `metrics` makes it a load generator with that many Doubles. */
export type EdgeDeviceSpec =
  | { readonly id: string; readonly kind: 'oven' | 'press' }
  | { readonly id: string; readonly kind?: 'load'; readonly metrics: number }
  | { readonly id: string; readonly machine: SimulatedMachine };

export interface SparkplugEdgeOptions {
  /** Broker URL (`mqtt://127.0.0.1:1884` is Loom's embedded broker). */
  readonly url: string;
  readonly groupId: string;
  readonly edgeNodeId: string;
  /** Primary Host to wait for before any BIRTH (E5); null: publish births right after connecting. */
  readonly primaryHostId: string | null;
  /** Default: an oven `oven-1` and a press `press-1`. */
  readonly devices?: readonly EdgeDeviceSpec[];
  /** Sample and publish period; 0: no timer, the caller calls `tick()`. Default 1000. */
  readonly intervalMs?: number;
  /** File that keeps the last bdSeq across restarts (E3); without it each process starts at 0. */
  readonly bdSeqFile?: string;
  /** Time source of timestamps and physics. Default: the system clock. */
  readonly clock?: Clock;
  /** Seed of the simulated machines' randomness. Default 1. */
  readonly seed?: number;
  readonly username?: string;
  readonly password?: string;
  /** Default `loom-sim-<group>-<edge>`. */
  readonly clientId?: string;
  /** MQTT keep-alive. Default 30. */
  readonly keepaliveSeconds?: number;
  /** Wait between reconnect attempts. Default 2000. */
  readonly reconnectPeriodMs?: number;
  /** Default 10 000. */
  readonly connectTimeoutMs?: number;
  /** Samples kept while offline; beyond, the oldest are dropped and counted. Default 100 000. */
  readonly storeCapacity?: number;
  /** Published samples kept to resend after a link loss (rule 2: ≥ 2 × keep-alive). Default 2 × keep-alive; 0 off. */
  readonly rollingBufferMs?: number;
  /** Metrics per historical message when flushing the store. Default 500. */
  readonly flushBatchSize?: number;
  /** Pause between historical messages, so live data is not starved. Default 100. */
  readonly flushIntervalMs?: number;
  /** Largest NCMD/DCMD payload decoded. Default 64 KiB. */
  readonly maxCommandBytes?: number;
  readonly logger?: Logger;
}

export type EdgeNodeState = 'stopped' | 'connecting' | 'waiting-for-host' | 'online' | 'stopping';

export type CommandRefusal = WriteRefusal | 'unknown-device' | 'malformed' | 'null-value';

/** What became of one metric of an NCMD/DCMD. */
export type CommandOutcome =
  | {
      readonly device: string | null;
      readonly metric: string;
      readonly ok: true;
      readonly value: MetricValue;
    }
  | {
      readonly device: string | null;
      readonly metric: string;
      readonly ok: false;
      readonly reason: CommandRefusal;
      readonly message: string;
    };

export interface EdgeNodeStats {
  readonly state: EdgeNodeState;
  /** bdSeq of the current (or last) CONNECT's Will. */
  readonly bdSeq: number;
  /** seq of the last message published. */
  readonly seq: number;
  readonly connects: number;
  readonly births: number;
  readonly dataMessages: number;
  readonly metricsPublished: number;
  /** Samples in the store now. */
  readonly stored: number;
  readonly flushedHistorical: number;
  /** Samples lost: store full, or their device unplugged before they were flushed. */
  readonly droppedSamples: number;
  /** Ticks whose data went to the store because the socket was backed up (> 1 MiB unsent). */
  readonly congestedTicks: number;
  readonly commandsApplied: number;
  readonly commandsRefused: number;
  readonly malformedMessages: number;
}

interface EdgeEvents {
  state: [EdgeNodeState];
  birth: [{ readonly bdSeq: number }];
  command: [CommandOutcome];
}

interface DeviceRuntime {
  readonly id: string;
  readonly machine: SimulatedMachine;
  readonly defs: readonly MetricDefinition[];
  readonly byAlias: ReadonlyMap<number, MetricDefinition>;
  readonly byName: ReadonlyMap<string, MetricDefinition>;
  plugged: boolean;
  /** A DBIRTH went out in the current session. */
  born: boolean;
  /** Last value reported or stored per metric: the baseline of report by exception. */
  readonly last: Map<string, MetricValue>;
}

export const DEFAULT_PLANT_DEVICES: readonly EdgeDeviceSpec[] = [
  { id: 'oven-1', kind: 'oven' },
  { id: 'press-1', kind: 'press' },
];

/** `devices` load-generator devices (`load-01`…) of `metrics` Double metrics each, for benchmarks. */
export function loadGeneratorDevices(devices: number, metrics: number): EdgeDeviceSpec[] {
  const width = Math.max(2, String(devices).length);
  return Array.from({ length: devices }, (_, i) => ({
    id: `load-${String(i + 1).padStart(width, '0')}`,
    metrics,
  }));
}

const UPTIME: MetricDefinition = { name: 'Node Info/Uptime', datatype: 'Int64', unit: 's', alias: 1 };
const REBIRTH: MetricDefinition = { name: REBIRTH_METRIC, datatype: 'Boolean', writable: true };
const BDSEQ: MetricDefinition = { name: BDSEQ_METRIC, datatype: 'Int64' };
const ID_RE = /^[^+/#]+$/;
const CONGESTED_BYTES = 1024 * 1024;

export class SparkplugEdgeNode extends EventEmitter<EdgeEvents> {
  readonly groupId: string;
  readonly edgeNodeId: string;
  readonly #opts: SparkplugEdgeOptions;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #devices = new Map<string, DeviceRuntime>();
  readonly #store: SampleStore;
  readonly #rolling: RollingBuffer;
  readonly #intervalMs: number;
  readonly #keepalive: number;
  #client: MqttClient | undefined;
  #state: EdgeNodeState = 'stopped';
  #bdSeq = 0;
  #seq = 0;
  /** Timestamp of the last valid Primary Host STATE (E5, E6). */
  #lastStateTs: number | undefined;
  #startedAt = 0;
  #lastTickAt = 0;
  #nodeLast: MetricValue | undefined;
  #tickTimer: NodeJS.Timeout | undefined;
  #flushTimer: NodeJS.Timeout | undefined;
  #connectFailures = 0;
  #startedBefore = false;
  #granted: { topic: string; qos: number }[] = [];
  #stopping: Promise<void> | undefined;
  #counters = {
    connects: 0,
    births: 0,
    dataMessages: 0,
    metricsPublished: 0,
    flushedHistorical: 0,
    droppedUnplugged: 0,
    congestedTicks: 0,
    commandsApplied: 0,
    commandsRefused: 0,
    malformedMessages: 0,
  };

  constructor(opts: SparkplugEdgeOptions) {
    super();
    for (const [what, id] of [
      ['groupId', opts.groupId],
      ['edgeNodeId', opts.edgeNodeId],
      ['primaryHostId', opts.primaryHostId ?? 'x'],
    ] as const) {
      if (!ID_RE.test(id)) throw new RangeError(`${what} '${id}' must be non-empty without +, / or # (H20)`);
    }
    this.#opts = opts;
    this.groupId = opts.groupId;
    this.edgeNodeId = opts.edgeNodeId;
    this.#clock = opts.clock ?? systemClock;
    this.#log = (opts.logger ?? pino({ level: 'silent' })).child({
      edgeNode: `${opts.groupId}/${opts.edgeNodeId}`,
    });
    this.#intervalMs = opts.intervalMs ?? 1000;
    this.#keepalive = opts.keepaliveSeconds ?? 30;
    this.#store = new SampleStore(opts.storeCapacity ?? 100_000);
    this.#rolling = new RollingBuffer(
      opts.rollingBufferMs ?? 2 * this.#keepalive * 1000,
      opts.storeCapacity ?? 100_000,
    );
    const seed = opts.seed ?? 1;
    // Aliases are unique across the whole edge node (H15); 1 is the node's own Uptime.
    let alias = 2;
    for (const [i, spec] of (opts.devices ?? DEFAULT_PLANT_DEVICES).entries()) {
      if (!ID_RE.test(spec.id))
        throw new RangeError(`device id '${spec.id}' must be non-empty without +, / or #`);
      if (this.#devices.has(spec.id)) throw new RangeError(`device id '${spec.id}' appears twice`);
      const random = seededRandom(seed + i * 7919);
      const machine =
        'machine' in spec
          ? spec.machine
          : 'metrics' in spec
            ? new LoadGenerator(spec.metrics, random)
            : spec.kind === 'oven'
              ? new Oven({ random })
              : new Press({ random });
      const defs = machine.metrics.map((m): MetricDefinition => ({ ...m, alias: alias++ }));
      this.#devices.set(spec.id, {
        id: spec.id,
        machine,
        defs,
        byAlias: new Map(defs.map((d) => [d.alias!, d])),
        byName: new Map(defs.map((d) => [d.name, d])),
        plugged: true,
        born: false,
        last: new Map(),
      });
    }
  }

  get state(): EdgeNodeState {
    return this.#state;
  }

  /** bdSeq of the current (or last) CONNECT, which its Will and NBIRTH carry. */
  get bdSeq(): number {
    return this.#bdSeq;
  }

  /** The simulated machine behind a device (to open an oven door or jam a press in a test or demo). */
  machine(deviceId: string): SimulatedMachine {
    const d = this.#devices.get(deviceId);
    if (!d) throw new RangeError(`no device '${deviceId}'`);
    return d.machine;
  }

  /** The device's metrics as its DBIRTH declares them (with aliases). */
  deviceMetrics(deviceId: string): readonly MetricDefinition[] {
    const d = this.#devices.get(deviceId);
    if (!d) throw new RangeError(`no device '${deviceId}'`);
    return d.defs;
  }

  /** The subscriptions of the current session as the broker granted them (SUBACK), for E4 checks. */
  subscriptions(): readonly { readonly topic: string; readonly qos: number }[] {
    return this.#granted;
  }

  stats(): EdgeNodeStats {
    const c = this.#counters;
    return {
      state: this.#state,
      bdSeq: this.#bdSeq,
      seq: this.#seq,
      connects: c.connects,
      births: c.births,
      dataMessages: c.dataMessages,
      metricsPublished: c.metricsPublished,
      stored: this.#store.size,
      flushedHistorical: c.flushedHistorical,
      droppedSamples: this.#store.dropped + c.droppedUnplugged,
      congestedTicks: c.congestedTicks,
      commandsApplied: c.commandsApplied,
      commandsRefused: c.commandsRefused,
      malformedMessages: c.malformedMessages,
    };
  }

  /**
   * Connects (and keeps reconnecting) in the background; resolves once the first CONNECT is on
   * its way. Throws only for a bdSeq file it cannot write. Use `waitFor('online')` to wait.
   */
  async start(): Promise<void> {
    if (this.#state !== 'stopped' || this.#client) throw new Error('edge node already started');
    this.#stopping = undefined;
    // A restart in the same process continues the count even without a file (E3).
    this.#bdSeq = this.#opts.bdSeqFile || this.#startedBefore ? this.#nextBdSeqAtStart() : 0;
    this.#startedBefore = true;
    this.#persistBdSeq(true);
    const now = this.#now();
    this.#startedAt = now;
    this.#lastTickAt = now;
    const o = this.#opts;
    // E1: Clean Session, MQTT 3.1.1 (Loom's embedded broker speaks no MQTT 5). E2: Will = NDEATH.
    // QoS 0 publishes are never queued while offline: a DATA sent after a reconnect would carry a
    // seq of the old session and precede the new NBIRTH (E9); the store keeps them instead (E14).
    const client = mqtt.connect(o.url, {
      clientId: o.clientId ?? `loom-sim-${o.groupId}-${o.edgeNodeId}`,
      protocolVersion: 4,
      clean: true,
      keepalive: this.#keepalive,
      reconnectPeriod: o.reconnectPeriodMs ?? 2000,
      connectTimeout: o.connectTimeoutMs ?? 10_000,
      queueQoSZero: false,
      resubscribe: false,
      will: this.#will(),
      ...(o.username !== undefined ? { username: o.username } : {}),
      ...(o.password !== undefined ? { password: o.password } : {}),
    });
    this.#client = client;
    client.on('connect', () => this.#onConnect());
    client.on('reconnect', () => this.#onReconnect());
    client.on('close', () => this.#onClose());
    client.on('message', (topic, payload) => this.#onMessage(topic, payload));
    client.on('error', (e) => {
      this.#connectFailures++;
      if (this.#connectFailures === 1)
        this.#log.warn({ err: e, url: o.url }, 'MQTT connection failed; retrying');
      else this.#log.debug({ err: e }, 'MQTT connection failed');
    });
    this.#setState('connecting');
    if (this.#intervalMs > 0) this.#tickTimer = setInterval(() => this.tick(), this.#intervalMs);
  }

  /** Resolves when the edge node reaches `state` (now or later), or rejects after `timeoutMs`. */
  waitFor(state: EdgeNodeState, timeoutMs = 10_000): Promise<void> {
    if (this.#state === state) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const onState = (s: EdgeNodeState) => {
        if (s !== state) return;
        clearTimeout(timer);
        this.off('state', onState);
        resolve();
      };
      const timer = setTimeout(() => {
        this.off('state', onState);
        reject(new Error(`edge node not ${state} within ${timeoutMs} ms (it is ${this.#state})`));
      }, timeoutMs);
      this.on('state', onState);
    });
  }

  /**
   * One sampling period: advance every machine by the time since the last tick, then report the
   * metrics that changed beyond their deadband (E9) — published when online, stored otherwise (E14).
   */
  tick(): void {
    if (this.#state === 'stopped' || this.#state === 'stopping') return;
    const now = this.#now();
    const dt = Math.max(0, now - this.#lastTickAt);
    this.#lastTickAt = now;
    const online = this.#state === 'online' && !this.#congested();
    if (!online && this.#state === 'online') this.#counters.congestedTicks++;

    const uptime = Math.floor((now - this.#startedAt) / 1000);
    if (changed(UPTIME, this.#nodeLast, uptime)) {
      this.#nodeLast = uptime;
      const s: Sample = { device: null, metric: UPTIME, value: uptime, ts: now };
      if (online) this.#publishData(null, [s], false);
      else this.#store.push(s);
    }
    for (const d of this.#devices.values()) {
      d.machine.advance(dt);
      if (!d.plugged) continue;
      const samples: Sample[] = [];
      for (const def of d.defs) {
        const v = d.machine.read(def.name);
        if (!changed(def, d.last.get(def.name), v)) continue;
        d.last.set(def.name, v);
        samples.push({ device: d.id, metric: def, value: v, ts: now });
      }
      if (samples.length === 0) continue;
      if (online && d.born) this.#publishData(d.id, samples, false);
      else for (const s of samples) this.#store.push(s);
    }
    if (this.#state === 'online' && this.#store.size > 0) this.#scheduleFlush();
  }

  /** Sends NBIRTH and every DBIRTH again with the same bdSeq, as on an NCMD Rebirth (E11). */
  rebirth(): void {
    if (this.#state === 'online') this.#birth('rebirth');
  }

  /** The device is unplugged: DDEATH now (E12), and no more of its data until `plug`. */
  unplug(deviceId: string): void {
    const d = this.#device(deviceId);
    if (!d.plugged) return;
    d.plugged = false;
    if (this.#state === 'online' && d.born) {
      const ts = this.#now();
      this.#publish(topics.device(this.groupId, this.edgeNodeId, 'DDEATH', d.id), {
        timestamp: ts,
        seq: this.#nextSeq(),
        metrics: [],
      });
      this.#log.info({ device: d.id }, 'DDEATH: device unplugged');
    }
    d.born = false;
  }

  /** The device is back: DBIRTH now when online (E8). */
  plug(deviceId: string): void {
    const d = this.#device(deviceId);
    if (d.plugged) return;
    d.plugged = true;
    d.last.clear();
    if (this.#state === 'online') this.#deviceBirth(d, this.#now());
  }

  /** Destroys the TCP connection without DISCONNECT, as a cable pull would: the broker sends the Will. */
  simulateLinkLoss(): void {
    this.#client?.stream.destroy();
  }

  /** NDEATH, then DISCONNECT (E13); stops timers and reconnects. Idempotent. */
  stop(): Promise<void> {
    return (this.#stopping ??= this.#stop());
  }

  async #stop(): Promise<void> {
    if (this.#state === 'stopped' && !this.#client) return;
    this.#setState('stopping');
    clearInterval(this.#tickTimer);
    clearInterval(this.#flushTimer);
    this.#tickTimer = this.#flushTimer = undefined;
    const client = this.#client;
    if (client?.connected) {
      const topic = topics.node(this.groupId, this.edgeNodeId, 'NDEATH');
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          client.publishAsync(topic, deathPayload(this.#bdSeq, this.#now()), { qos: 1, retain: false }),
          new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('no PUBACK in 2 s')), 2000))),
        ]);
        this.#log.info({ bdSeq: this.#bdSeq }, 'NDEATH published before DISCONNECT');
      } catch (e) {
        this.#log.warn({ err: e }, 'NDEATH not acknowledged; the broker sends the Will instead');
      } finally {
        clearTimeout(timer);
      }
      await client.endAsync();
    } else {
      await client?.endAsync(true);
    }
    this.#client = undefined;
    this.#setState('stopped');
  }

  #onConnect(): void {
    this.#counters.connects++;
    this.#connectFailures = 0;
    const client = this.#client!;
    for (const d of this.#devices.values()) d.born = false;
    this.#log.info({ bdSeq: this.#bdSeq, url: this.#opts.url }, 'connected');
    const subs = [
      topics.node(this.groupId, this.edgeNodeId, 'NCMD'),
      topics.device(this.groupId, this.edgeNodeId, 'DCMD', '+'),
      ...(this.#opts.primaryHostId !== null ? [topics.state(this.#opts.primaryHostId)] : []),
    ];
    // E4 (and E5's STATE): QoS 1. A Clean Session starts with no subscriptions, so every
    // connect subscribes again; the broker handles SUBSCRIBE before anything published later.
    this.#granted = [];
    client.subscribe(
      Object.fromEntries(subs.map((topic) => [topic, { qos: 1 as const }])),
      (err, granted) => {
        if (err) this.#log.error({ err }, 'SUBSCRIBE failed');
        else this.#granted = (granted ?? []).map((g) => ({ topic: g.topic, qos: g.qos }));
      },
    );
    if (this.#opts.primaryHostId === null) {
      this.#birth('connect');
    } else {
      this.#setState('waiting-for-host');
      this.#log.info(
        { primaryHostId: this.#opts.primaryHostId },
        'waiting for the Primary Host STATE online',
      );
    }
  }

  /** mqtt.js builds every CONNECT from `client.options.will`, so a new bdSeq goes in here (E3, H2 pitfall). */
  #onReconnect(): void {
    if (this.#state === 'stopping' || this.#state === 'stopped') return;
    this.#bdSeq = (this.#bdSeq + 1) % 256;
    this.#persistBdSeq(false);
    if (this.#client) this.#client.options.will = this.#will();
  }

  #onClose(): void {
    if (this.#state === 'online') {
      this.#log.warn({ bdSeq: this.#bdSeq }, 'connection lost; storing data until the next birth');
      this.#spillRollingBuffer();
    }
    clearInterval(this.#flushTimer);
    this.#flushTimer = undefined;
    if (this.#state === 'online' || this.#state === 'waiting-for-host') this.#setState('connecting');
  }

  #onMessage(topic: string, payload: Buffer): void {
    if (this.#state === 'stopping' || this.#state === 'stopped') return;
    if (this.#opts.primaryHostId !== null && topic === topics.state(this.#opts.primaryHostId)) {
      this.#onState(payload);
    } else if (topic === topics.node(this.groupId, this.edgeNodeId, 'NCMD')) {
      this.#onNodeCommand(payload);
    } else {
      const prefix = topics.device(this.groupId, this.edgeNodeId, 'DCMD', '');
      if (topic.startsWith(prefix)) this.#onDeviceCommand(topic.slice(prefix.length), payload);
    }
  }

  /** E5/E6: the first STATE is taken as valid; after that, one older than the last is ignored. */
  #onState(payload: Buffer): void {
    const s = parseState(payload);
    if (!s) {
      // An empty retained payload clears STATE; anything else is a malformed STATE.
      if (payload.length > 0) this.#counters.malformedMessages++;
      return;
    }
    if (this.#lastStateTs !== undefined && s.timestamp < this.#lastStateTs) {
      this.#log.debug({ ...s, last: this.#lastStateTs }, 'STATE older than the last one: ignored');
      return;
    }
    this.#lastStateTs = s.timestamp;
    if (s.online) {
      if (this.#state === 'waiting-for-host') this.#birth('host online');
    } else if (this.#state === 'online') {
      this.#onHostOffline(s.timestamp);
    }
  }

  /** E6: NDEATH, DISCONNECT, then a new CONNECT (new bdSeq) that waits for the host again. */
  #onHostOffline(ts: number): void {
    const client = this.#client!;
    this.#log.warn({ timestamp: ts }, 'Primary Host offline: NDEATH, disconnect, start over');
    this.#spillRollingBuffer();
    clearInterval(this.#flushTimer);
    this.#flushTimer = undefined;
    this.#setState('connecting');
    client.publish(
      topics.node(this.groupId, this.edgeNodeId, 'NDEATH'),
      deathPayload(this.#bdSeq, this.#now()),
      { qos: 1, retain: false },
      () => {
        client.end(false, () => {
          if (this.#state === 'connecting' && this.#client === client) client.reconnect();
        });
      },
    );
  }

  #onNodeCommand(payload: Buffer): void {
    const cmd = decodeCommand(payload, this.#opts.maxCommandBytes ?? 64 * 1024);
    if (!cmd.ok) {
      this.#refuse(null, '(payload)', 'malformed', cmd.message);
      this.#counters.malformedMessages++;
      return;
    }
    let rebirth = false;
    for (const m of cmd.metrics) {
      const name = m.name ?? `alias ${m.alias ?? '?'}`;
      if (m.name === REBIRTH_METRIC) {
        const v = commandValue(m, 'Boolean');
        if (v === true) {
          rebirth = true;
          this.#counters.commandsApplied++;
          this.emit('command', { device: null, metric: name, ok: true, value: true });
        } else this.#refuse(null, name, 'wrong-type', 'Node Control/Rebirth takes Boolean true');
      } else {
        this.#refuse(null, name, 'unknown-metric', 'this edge node accepts only Node Control/Rebirth');
      }
    }
    if (rebirth) {
      if (this.#state === 'online') this.#birth('rebirth requested');
      else this.#log.info('rebirth requested before the first birth: the birth follows the host STATE');
    }
  }

  #onDeviceCommand(deviceId: string, payload: Buffer): void {
    const d = this.#devices.get(deviceId);
    if (!d || !d.plugged) {
      this.#refuse(deviceId, '(all)', 'unknown-device', d ? 'device is unplugged' : 'no such device');
      return;
    }
    const cmd = decodeCommand(payload, this.#opts.maxCommandBytes ?? 64 * 1024);
    if (!cmd.ok) {
      this.#refuse(deviceId, '(payload)', 'malformed', cmd.message);
      this.#counters.malformedMessages++;
      return;
    }
    for (const m of cmd.metrics) {
      const def =
        m.alias !== undefined
          ? d.byAlias.get(m.alias)
          : m.name !== undefined
            ? d.byName.get(m.name)
            : undefined;
      const label = def?.name ?? m.name ?? `alias ${m.alias ?? '?'}`;
      if (!def) {
        this.#refuse(deviceId, label, 'unknown-metric', 'not in the DBIRTH');
        continue;
      }
      if (m.isNull) {
        this.#refuse(deviceId, label, 'null-value', 'a write needs a value');
        continue;
      }
      const v = commandValue(m, def.datatype);
      if (v === undefined) {
        this.#refuse(
          deviceId,
          label,
          'wrong-type',
          `'${def.name}' is ${def.datatype}; got ${m.field ?? 'no value'}`,
        );
        continue;
      }
      const r = d.machine.write(def.name, v);
      if (!r.ok) {
        this.#refuse(deviceId, label, r.reason, r.message);
        continue;
      }
      this.#counters.commandsApplied++;
      this.#log.info({ device: deviceId, metric: def.name, value: r.value }, 'DCMD applied');
      this.emit('command', { device: deviceId, metric: def.name, ok: true, value: r.value });
    }
  }

  #refuse(device: string | null, metric: string, reason: CommandRefusal, message: string): void {
    this.#counters.commandsRefused++;
    this.#log.warn({ device, metric, reason }, `command refused: ${message}`);
    this.emit('command', { device, metric, ok: false, reason, message });
  }

  /** NBIRTH (seq 0, the Will's bdSeq, every node metric, Rebirth false) then each DBIRTH (E7, E8, E11). */
  #birth(why: string): void {
    const ts = this.#now();
    this.#seq = 0;
    const uptime = Math.floor((ts - this.#startedAt) / 1000);
    this.#nodeLast = uptime;
    this.#publish(topics.node(this.groupId, this.edgeNodeId, 'NBIRTH'), {
      timestamp: ts,
      seq: 0,
      metrics: [
        birthMetric(BDSEQ, this.#bdSeq, ts),
        birthMetric(REBIRTH, false, ts),
        birthMetric(UPTIME, uptime, ts),
      ],
    });
    for (const d of this.#devices.values()) {
      d.born = false;
      if (d.plugged) this.#deviceBirth(d, ts);
    }
    this.#counters.births++;
    this.#log.info({ bdSeq: this.#bdSeq, why, stored: this.#store.size }, 'NBIRTH');
    this.#setState('online');
    this.emit('birth', { bdSeq: this.#bdSeq });
    if (this.#store.size > 0) this.#scheduleFlush();
  }

  #deviceBirth(d: DeviceRuntime, ts: number): void {
    d.last.clear();
    const metrics = d.defs.map((def) => {
      const v = d.machine.read(def.name);
      d.last.set(def.name, v);
      return birthMetric(def, v, ts);
    });
    this.#publish(topics.device(this.groupId, this.edgeNodeId, 'DBIRTH', d.id), {
      timestamp: ts,
      seq: this.#nextSeq(),
      metrics,
    });
    d.born = true;
  }

  #publishData(device: string | null, samples: readonly Sample[], historical: boolean): void {
    const topic =
      device === null
        ? topics.node(this.groupId, this.edgeNodeId, 'NDATA')
        : topics.device(this.groupId, this.edgeNodeId, 'DDATA', device);
    const now = this.#now();
    this.#publish(topic, {
      timestamp: now,
      seq: this.#nextSeq(),
      metrics: samples.map((s) => dataMetric(s, historical)),
    });
    this.#counters.dataMessages++;
    this.#counters.metricsPublished += samples.length;
    if (!historical) for (const s of samples) this.#rolling.record(s, now);
  }

  /** Store-and-forward flush: oldest first, `flushBatchSize` metrics per message, one message per pause. */
  #scheduleFlush(): void {
    if (this.#flushTimer) return;
    this.#flushTimer = setInterval(() => this.#flushSome(), this.#opts.flushIntervalMs ?? 100);
    this.#flushSome();
  }

  #flushSome(): void {
    if (this.#state !== 'online' || this.#store.size === 0) {
      clearInterval(this.#flushTimer);
      this.#flushTimer = undefined;
      return;
    }
    if (this.#congested()) return;
    const batch = this.#store.take(this.#opts.flushBatchSize ?? 500);
    const byDevice = new Map<string | null, Sample[]>();
    for (const s of batch) {
      const list = byDevice.get(s.device);
      if (list) list.push(s);
      else byDevice.set(s.device, [s]);
    }
    for (const [device, samples] of byDevice) {
      const d = device === null ? null : this.#devices.get(device);
      if (d && !d.born) {
        // DATA for a device needs its DBIRTH in this session (E8/E9); an unplugged one has none.
        this.#counters.droppedUnplugged += samples.length;
        continue;
      }
      this.#publishData(device, samples, true);
      this.#counters.flushedHistorical += samples.length;
    }
    if (this.#store.size === 0) {
      this.#log.info({ flushed: this.#counters.flushedHistorical }, 'store-and-forward flushed');
      clearInterval(this.#flushTimer);
      this.#flushTimer = undefined;
    }
  }

  /** After a link or host loss: what was published in the blind spot goes to the store (rule 2). */
  #spillRollingBuffer(): void {
    for (const s of this.#rolling.drain(this.#now())) this.#store.push(s);
  }

  #publish(topic: string, payload: Parameters<typeof encodePayload>[0]): void {
    // NBIRTH/DBIRTH/DATA/DDEATH: QoS 0, retain false (E7–E9, E12). No callback: with one,
    // MQTT.js adds a 'drain' listener per message while the socket is backed up.
    this.#client?.publish(topic, encodePayload(payload), { qos: 0, retain: false });
  }

  /**
   * The socket has more than CONGESTED_BYTES waiting: the broker or the network is not keeping up.
   * Live data then goes to the store like during an outage, instead of piling up in memory
   * unbounded; it is flushed as historical when the socket drains (E14).
   */
  #congested(): boolean {
    const stream = this.#client?.stream as { writableLength?: number } | undefined;
    return (stream?.writableLength ?? 0) > CONGESTED_BYTES;
  }

  #nextSeq(): number {
    this.#seq = (this.#seq + 1) % 256;
    return this.#seq;
  }

  #will(): { topic: string; payload: Buffer; qos: 1; retain: false } {
    return {
      topic: topics.node(this.groupId, this.edgeNodeId, 'NDEATH'),
      payload: deathPayload(this.#bdSeq, this.#now()),
      qos: 1,
      retain: false,
    };
  }

  #nextBdSeqAtStart(): number {
    const file = this.#opts.bdSeqFile;
    if (!file) return (this.#bdSeq + 1) % 256;
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 0;
      throw e;
    }
    const last = Number(text.trim());
    if (!Number.isInteger(last) || last < 0 || last > 255) {
      this.#log.warn({ file, content: text.slice(0, 20) }, 'bdSeq file unreadable; starting at 0');
      return 0;
    }
    return (last + 1) % 256;
  }

  /** Written before the CONNECT that uses it, atomically (temp file + rename). */
  #persistBdSeq(throwOnError: boolean): void {
    const file = this.#opts.bdSeqFile;
    if (!file) return;
    try {
      writeFileSync(`${file}.tmp`, `${this.#bdSeq}\n`);
      renameSync(`${file}.tmp`, file);
    } catch (e) {
      if (throwOnError)
        throw new Error(`cannot write the bdSeq file ${file}: ${(e as Error).message}`, { cause: e });
      this.#log.error({ err: e, file }, 'cannot persist bdSeq');
    }
  }

  #device(id: string): DeviceRuntime {
    const d = this.#devices.get(id);
    if (!d) throw new RangeError(`no device '${id}'`);
    return d;
  }

  #setState(s: EdgeNodeState): void {
    if (this.#state === s) return;
    this.#state = s;
    this.emit('state', s);
  }

  #now(): number {
    return this.#clock.now().getTime();
  }
}

/** Parses a load-generator spec `<devices>x<metrics>` (`10x100`); null when it is not one. */
export function parseLoadSpec(spec: string): EdgeDeviceSpec[] | null {
  const m = /^(\d{1,5})x(\d{1,6})$/.exec(spec.trim());
  if (!m) return null;
  const devices = Number(m[1]);
  const metrics = Number(m[2]);
  if (devices < 1 || metrics < 1) return null;
  return loadGeneratorDevices(devices, metrics);
}

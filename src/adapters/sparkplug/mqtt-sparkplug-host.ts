import mqtt, { type IClientOptions, type IPublishPacket, type MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import type {
  ConnectivityKind,
  ConnectivityReporter,
  TelemetrySink,
} from '../../app/telemetry/telemetry-ports.ts';
import type { Clock } from '../../domain/shared/clock.ts';
import { err, ok, type Result } from '../../domain/shared/result.ts';
import {
  SparkplugHostSession,
  type HostAction,
  type MetricWrite,
  type SparkplugCommandError,
  type WriteTarget,
} from './sparkplug-host-session.ts';
import {
  decodeSparkplugPayload,
  encodeCommandPayload,
  encodeRebirthRequest,
} from './sparkplug-payload-codec.ts';
import {
  SPARKPLUG_NAMESPACE,
  commandTopic,
  invalidSparkplugId,
  parseSparkplugTopic,
  stateTopic,
} from './sparkplug-topic.ts';

export interface MqttSparkplugHostOptions {
  /** mqtt://, mqtts://, ws:// or wss:// URL of the broker. */
  readonly url: string;
  readonly username?: string;
  /** Secret: never logged. */
  readonly password?: string;
  /** PEM of the CA that signed the broker's certificate; default: the system CAs. */
  readonly ca?: string | Buffer;
  /** MQTT client id; default `<hostId>-<random>`, so two Loom instances never take over each other's connection. */
  readonly clientId?: string;
  /** Sparkplug host id: the STATE topic `spBv1.0/STATE/<hostId>` (H7, H20). */
  readonly hostId: string;
  /**
   * Edge node groups this host serves: subscribes `spBv1.0/<group>/#` for each (H3 allows "the
   * groups we own"). Default: every group (`spBv1.0/#`).
   */
  readonly groups?: readonly string[];
  /**
   * Share the DATA load with other Loom instances of this group: NDATA/DDATA are subscribed as
   * `$share/<sharedGroup>/…`, while BIRTH and DEATH messages (and our STATE) stay direct, because
   * every instance needs every BIRTH to resolve aliases. The broker spreads shared messages one by
   * one, so no instance sees a node's whole seq stream: seq checks and reordering (H8/H9) are off.
   */
  readonly sharedGroup?: string;
  readonly keepaliveSeconds: number;
  /** Larger payloads are counted (`oversize`) and dropped undecoded. */
  readonly maxMessageBytes: number;
  readonly reorderTimeoutMs: number;
  readonly rebirthIntervalMs: number;
  /** Request rebirths on bad or out-of-sync input (H11); default true. */
  readonly requestRebirths?: boolean;
  /** 4 = MQTT 3.1.1 (default; Loom's embedded aedes broker speaks only that), 5 = MQTT 5.0. */
  readonly protocolVersion?: 4 | 5;
  /** First reconnect delay; doubles per failed attempt up to `reconnectMaxMs`. Default 1000. */
  readonly reconnectMinMs?: number;
  /** Default 30000. */
  readonly reconnectMaxMs?: number;
  /** Give up one connection attempt after this long. Default 10000. */
  readonly connectTimeoutMs?: number;
  readonly sink: TelemetrySink;
  readonly connectivity: ConnectivityReporter;
  readonly clock: Clock;
  readonly logger: Logger;
}

/** For `/ready` and diagnostics. */
export interface SparkplugHostStatus {
  /** Started and not stopped. */
  readonly running: boolean;
  /** Connected to the broker, subscribed, and the STATE birth acknowledged. */
  readonly connected: boolean;
  /** The broker URL without credentials (the connectivity entry's id). */
  readonly broker: string;
  readonly hostId: string;
  /** The timestamp of the current STATE birth (= the Will's), or null when not connected. */
  readonly stateTimestamp: number | null;
  readonly lastError: string | null;
  readonly edgeNodes: { readonly online: number; readonly stale: number; readonly offline: number };
}

/** A command handed to the broker. QoS 0: not confirmed until the value is read back (H18). */
export interface WriteReceipt {
  readonly topic: string;
  readonly timestamp: number;
  readonly metrics: number;
  readonly confirmed: false;
}

/** One MQTT connection: mqtt.js's own reconnect is off, so every CONNECT gets a fresh Will (H2). */
interface Connection {
  readonly client: MqttClient;
  /** T of this CONNECT's Will, and so of its STATE birth (H4). */
  readonly willTs: number;
  born: boolean;
  closed: boolean;
  lastOverride: string | null;
  lastOverrideAt: number;
}

const STATE_PAYLOAD_MAX = 1024;
const LOGGED_KEYS_MAX = 10_000;
const STOP_PUBLISH_TIMEOUT_MS = 2000;

/** The broker URL as shown in reports and logs: never with its credentials. */
export function brokerIdOf(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    return u.toString();
  } catch {
    return url.replace(/\/\/[^@/]*@/, '//');
  }
}

const statePayload = (online: boolean, timestamp: number): Buffer =>
  Buffer.from(JSON.stringify({ online, timestamp }));

/**
 * Loom as the Sparkplug B 3.0 Primary Host Application (RELIABILITY.md B.1/B.2). Owns one MQTT
 * connection at a time and its reconnect loop; hands samples to the TelemetrySink and the health
 * of the broker, every edge node and every device to the ConnectivityReporter. Bad input from a
 * source is counted and logged once per source and kind; it never throws out of a handler.
 */
export class MqttSparkplugHost {
  readonly #o: MqttSparkplugHostOptions;
  readonly #session: SparkplugHostSession;
  readonly #log: Logger;
  readonly #brokerId: string;
  readonly #stateTopic: string;
  readonly #filters: readonly string[];
  readonly #clientId: string;
  #phase: 'idle' | 'running' | 'stopping' | 'stopped' = 'idle';
  #conn: Connection | null = null;
  #failures = 0;
  #lastError: string | null = null;
  #reconnectTimer: NodeJS.Timeout | null = null;
  #reorderTimer: NodeJS.Timeout | null = null;
  #reorderTimerAt: number | null = null;
  readonly #logged = new Set<string>();
  #firstAttempt: Promise<void> | null = null;
  #settleFirstAttempt: () => void = () => undefined;
  #stopped: Promise<void> | null = null;

  constructor(options: MqttSparkplugHostOptions) {
    const ids: [string, string | undefined][] = [
      ['hostId', options.hostId],
      ['sharedGroup', options.sharedGroup],
      ...(options.groups ?? []).map((g): [string, string] => ['group', g]),
    ];
    for (const [what, id] of ids) {
      const bad = id === undefined ? null : invalidSparkplugId(id);
      if (bad !== null) throw new Error(`Sparkplug ${what} ${JSON.stringify(id)} ${bad}`);
    }
    if (options.groups?.length === 0) throw new Error('Sparkplug groups is empty');
    if (options.groups?.includes('STATE'))
      throw new Error('Sparkplug group "STATE" is reserved for host state');
    this.#o = options;
    this.#session = new SparkplugHostSession({
      reorderTimeoutMs: options.reorderTimeoutMs,
      rebirthIntervalMs: options.rebirthIntervalMs,
      requestRebirths: options.requestRebirths ?? true,
      trackSeq: options.sharedGroup === undefined,
    });
    this.#brokerId = brokerIdOf(options.url);
    this.#stateTopic = stateTopic(options.hostId);
    const scopes = (options.groups ?? ['+']).map((g) => `${SPARKPLUG_NAMESPACE}/${g}`);
    const share = options.sharedGroup;
    this.#filters = [
      ...(share === undefined
        ? options.groups === undefined
          ? [`${SPARKPLUG_NAMESPACE}/#`]
          : scopes.map((s) => `${s}/#`)
        : scopes.flatMap((s) => [
            `${s}/NBIRTH/+`,
            `${s}/NDEATH/+`,
            `${s}/DBIRTH/+/+`,
            `${s}/DDEATH/+/+`,
            `$share/${share}/${s}/NDATA/+`,
            `$share/${share}/${s}/DDATA/+/+`,
          ])),
      this.#stateTopic,
    ];
    this.#clientId = options.clientId ?? `${options.hostId}-${Math.random().toString(16).slice(2, 10)}`;
    this.#log = options.logger.child({
      component: 'sparkplug-host',
      hostId: options.hostId,
      broker: this.#brokerId,
    });
  }

  /**
   * Connects and keeps reconnecting until `stop()`. Resolves once the first attempt has settled
   * (online, or failed and retrying: see `status()`); never rejects, so a broker that is down does
   * not stop Loom from starting.
   */
  start(): Promise<void> {
    if (this.#firstAttempt !== null) return this.#firstAttempt;
    // One-shot: a stopped host stays stopped (a new one is cheap; its session state starts clean).
    if (this.#phase !== 'idle') return Promise.resolve();
    this.#firstAttempt = new Promise<void>((resolve) => (this.#settleFirstAttempt = resolve));
    this.#phase = 'running';
    this.#o.connectivity.setState('mqtt-broker', this.#brokerId, 'connecting', 'starting');
    this.#connect();
    return this.#firstAttempt;
  }

  /**
   * H6: publishes the STATE death with the current time, waits for the broker's PUBACK, then sends
   * DISCONNECT (which suppresses the Will). Idempotent; leaves no timer or socket behind.
   */
  stop(): Promise<void> {
    this.#stopped ??= this.#stop();
    return this.#stopped;
  }

  status(): SparkplugHostStatus {
    const conn = this.#conn;
    return {
      running: this.#phase === 'running',
      connected: conn !== null && conn.born,
      broker: this.#brokerId,
      hostId: this.#o.hostId,
      stateTimestamp: conn !== null && conn.born ? conn.willTs : null,
      lastError: this.#lastError,
      edgeNodes: this.#session.summary(),
    };
  }

  /**
   * Writes metrics of an edge node (NCMD) or one of its devices (DCMD), H18. Only metrics of the
   * current BIRTH with a compatible value are sent; anything else, or a broker or node that is not
   * online, is a typed error and nothing is sent or queued. Success means "handed to the broker"
   * (QoS 0): confirm by reading the value back.
   */
  async writeMetrics(
    target: WriteTarget,
    metrics: readonly MetricWrite[],
  ): Promise<Result<WriteReceipt, SparkplugCommandError>> {
    const conn = this.#conn;
    if (this.#phase !== 'running' || conn === null || !conn.born) {
      return err({
        code: 'LOOM_SPARKPLUG_BROKER_DISCONNECTED',
        message: `not connected to the MQTT broker ${this.#brokerId}${this.#lastError ? ` (${this.#lastError})` : ''}`,
      });
    }
    const prepared = this.#session.prepareCommand(target, metrics);
    if (!prepared.ok) return prepared;
    const timestamp = this.#now();
    const { group, edgeNode, device } = prepared.value;
    const topic = commandTopic(group, edgeNode, device);
    const payload = Buffer.from(encodeCommandPayload(timestamp, prepared.value.metrics));
    const failed = await new Promise<Error | undefined>((resolve) =>
      conn.client.publish(topic, payload, { qos: 0, retain: false }, (e) => resolve(e)),
    );
    if (failed !== undefined) {
      return err({
        code: 'LOOM_SPARKPLUG_BROKER_DISCONNECTED',
        message: `command not sent: ${failed.message}`,
      });
    }
    this.#log.info(
      { topic, metrics: metrics.map((m) => m.name) },
      'Sparkplug command sent (unconfirmed until read back)',
    );
    return ok({ topic, timestamp, metrics: metrics.length, confirmed: false });
  }

  #now(): number {
    return this.#o.clock.now().getTime();
  }

  #connect(): void {
    const willTs = this.#now();
    const o = this.#o;
    const options: IClientOptions = {
      clientId: this.#clientId,
      protocolVersion: o.protocolVersion ?? 4,
      // H1: Clean Session (3.1.1) / Clean Start with Session Expiry 0 (5.0): nothing is kept for us.
      clean: true,
      ...(o.protocolVersion === 5 ? { properties: { sessionExpiryInterval: 0 } } : {}),
      keepalive: o.keepaliveSeconds,
      connectTimeout: o.connectTimeoutMs ?? 10_000,
      // Own reconnect loop: mqtt.js would resend the CONNECT (and the Will's timestamp) it built first,
      // and could replay an old STATE birth from its in-flight store after the new CONNECT.
      reconnectPeriod: 0,
      resubscribe: false,
      queueQoSZero: false,
      // H2: Will = STATE death, QoS 1, retained, with T = now (this CONNECT).
      will: { topic: this.#stateTopic, payload: statePayload(false, willTs), qos: 1, retain: true },
      ...(o.username !== undefined ? { username: o.username } : {}),
      ...(o.password !== undefined ? { password: o.password } : {}),
      ...(o.ca !== undefined ? { ca: o.ca } : {}),
    };
    let client: MqttClient;
    try {
      client = mqtt.connect(o.url, options);
    } catch (e) {
      this.#lastError = (e as Error).message;
      this.#warnOnce(
        'mqtt-broker',
        this.#brokerId,
        'connect',
        { err: this.#lastError },
        'cannot connect to the MQTT broker',
      );
      this.#o.connectivity.setState('mqtt-broker', this.#brokerId, 'connecting', this.#lastError);
      this.#scheduleReconnect();
      this.#settleFirstAttempt();
      return;
    }
    const conn: Connection = {
      client,
      willTs,
      born: false,
      closed: false,
      lastOverride: null,
      lastOverrideAt: 0,
    };
    this.#conn = conn;
    client.on('connect', () => void this.#afterConnect(conn));
    client.on('message', (topic, payload, packet) => this.#onMessage(conn, topic, payload, packet));
    client.on('error', (e) => this.#onError(conn, e));
    client.on('close', () => this.#onClose(conn));
  }

  /** H3 then H4: subscribe (and wait for SUBACK) before the first publish, which is the STATE birth. */
  async #afterConnect(conn: Connection): Promise<void> {
    try {
      const granted = await conn.client.subscribeAsync([...this.#filters], { qos: 1 });
      const refused = granted.filter((g) => g.qos === 128);
      if (refused.length > 0)
        throw new Error(`broker refused the subscription to ${refused.map((g) => g.topic).join(', ')}`);
      if (conn !== this.#conn || this.#phase !== 'running') return;
      await conn.client.publishAsync(this.#stateTopic, statePayload(true, conn.willTs), {
        qos: 1,
        retain: true,
      });
      if (conn !== this.#conn || this.#phase !== 'running') return;
      conn.born = true;
      this.#failures = 0;
      this.#lastError = null;
      this.#o.connectivity.setState('mqtt-broker', this.#brokerId, 'online', `STATE birth ${conn.willTs}`);
      this.#log.info({ stateTimestamp: conn.willTs, clientId: this.#clientId }, 'Sparkplug host online');
      this.#settleFirstAttempt();
    } catch (e) {
      if (conn !== this.#conn || this.#phase !== 'running') return;
      this.#lastError = (e as Error).message;
      this.#log.error({ err: this.#lastError }, 'Sparkplug host could not come online; reconnecting');
      conn.client.end(true);
    }
  }

  #onError(conn: Connection, e: Error): void {
    if (conn !== this.#conn) return;
    const code = (e as Error & { code?: string | number }).code;
    this.#lastError =
      code !== undefined && !e.message.includes(String(code)) ? `${e.message} (${code})` : e.message;
    this.#o.connectivity.setState('mqtt-broker', this.#brokerId, 'connecting', this.#lastError);
    this.#warnOnce(
      'mqtt-broker',
      this.#brokerId,
      `error:${code ?? e.message}`,
      { err: this.#lastError },
      'MQTT broker connection error',
    );
  }

  #onClose(conn: Connection): void {
    if (conn.closed) return;
    conn.closed = true;
    if (conn !== this.#conn) return;
    this.#conn = null;
    if (this.#phase !== 'running') return;
    const now = this.#now();
    if (conn.born) {
      this.#log.warn(
        { err: this.#lastError },
        'Sparkplug host lost the MQTT broker connection; reconnecting',
      );
      this.#run(this.#session.connectionLost(now));
      this.#armReorderTimer();
    }
    this.#o.connectivity.setState(
      'mqtt-broker',
      this.#brokerId,
      'connecting',
      this.#lastError ?? 'connection closed',
    );
    conn.client.end(true);
    this.#scheduleReconnect();
    this.#settleFirstAttempt();
  }

  #scheduleReconnect(): void {
    if (this.#phase !== 'running' || this.#reconnectTimer !== null) return;
    const min = this.#o.reconnectMinMs ?? 1000;
    const max = this.#o.reconnectMaxMs ?? 30_000;
    const ceiling = Math.min(max, min * 2 ** Math.min(this.#failures, 20));
    this.#failures++;
    // Half fixed, half random: Loom instances restarted together do not reconnect in lockstep.
    const delay = Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = null;
      if (this.#phase === 'running') this.#connect();
    }, delay);
  }

  #onMessage(conn: Connection, topic: string, payload: Buffer, packet: IPublishPacket): void {
    if (conn !== this.#conn) return;
    try {
      const now = this.#now();
      this.#o.connectivity.touch('mqtt-broker', this.#brokerId, now);
      this.#o.connectivity.count('mqtt-broker', this.#brokerId, 'messages');
      const parsed = parseSparkplugTopic(topic);
      if (!parsed.ok) {
        this.#o.connectivity.count('mqtt-broker', this.#brokerId, 'badTopic');
        const shown = topic.length > 200 ? `${topic.slice(0, 200)}…` : topic;
        this.#warnOnce(
          'mqtt-broker',
          this.#brokerId,
          `badTopic:${shown}`,
          { topic: shown, reason: parsed.reason, detail: parsed.detail },
          'Sparkplug: message on an invalid topic dropped (further ones on it are counted, not logged)',
        );
        return;
      }
      const t = parsed.topic;
      switch (t.kind) {
        case 'state':
          if (t.hostId === this.#o.hostId) this.#ownState(conn, payload, packet.retain, now);
          return;
        case 'command':
          // NCMD/DCMD are for edge nodes; the namespace subscription also echoes our own.
          return;
        case 'edge': {
          const decoded = decodeSparkplugPayload(payload, this.#o.maxMessageBytes);
          this.#run(
            this.#session.receive(
              { type: t.type, group: t.group, edgeNode: t.edgeNode, device: t.device, payload: decoded },
              now,
            ),
          );
          this.#armReorderTimer();
          return;
        }
      }
    } catch (e) {
      // A defect here must not stop the other sources: mqtt.js would otherwise stop reading the socket.
      this.#warnOnce(
        'mqtt-broker',
        this.#brokerId,
        `internal:${(e as Error).message}`,
        { err: e, topic },
        'Sparkplug: message handling failed',
      );
    }
  }

  /**
   * H5: our own STATE delivered as offline: re-publish the birth with the same T at once. Not for a
   * retained death older than our T: that is an earlier connection's Will, which the broker hands
   * out on subscribe, possibly before our birth has replaced it (the v4 draft's RETAIN rule).
   */
  #ownState(conn: Connection, payload: Buffer, retained: boolean, now: number): void {
    let state: { online: boolean; timestamp: number } | null = null;
    if (payload.length <= STATE_PAYLOAD_MAX) {
      try {
        const v: unknown = JSON.parse(payload.toString('utf8'));
        if (typeof v === 'object' && v !== null && 'online' in v && 'timestamp' in v) {
          const { online, timestamp } = v;
          if (typeof online === 'boolean' && typeof timestamp === 'number') state = { online, timestamp };
        }
      } catch {
        state = null;
      }
    }
    if (state === null) {
      this.#o.connectivity.count('mqtt-broker', this.#brokerId, 'malformedState');
      this.#warnOnce(
        'mqtt-broker',
        this.#brokerId,
        'malformedState',
        { topic: this.#stateTopic },
        'Sparkplug: our STATE topic carries a payload that is not Sparkplug 3.0 STATE JSON',
      );
      return;
    }
    if (state.online) return;
    if (retained && state.timestamp < conn.willTs) return;
    // The namespace and the STATE subscriptions overlap, so the broker may deliver one message twice.
    const key = payload.toString('utf8');
    if (conn.lastOverride === key && now - conn.lastOverrideAt < 1000) return;
    conn.lastOverride = key;
    conn.lastOverrideAt = now;
    this.#o.connectivity.count('mqtt-broker', this.#brokerId, 'stateOverrides');
    this.#warnOnce(
      'mqtt-broker',
      this.#brokerId,
      'stateOverride',
      { offlineTimestamp: state.timestamp, stateTimestamp: conn.willTs },
      'Sparkplug: STATE offline published for our host id while we are online; re-publishing our STATE birth (another host with the same id?)',
    );
    conn.client.publish(this.#stateTopic, statePayload(true, conn.willTs), { qos: 1, retain: true }, (e) => {
      if (e) this.#log.warn({ err: e.message }, 'Sparkplug: STATE re-birth not acknowledged');
    });
  }

  #run(actions: readonly HostAction[]): void {
    const c = this.#o.connectivity;
    for (const a of actions) {
      switch (a.type) {
        case 'samples':
          this.#safely('sink', () => this.#o.sink.accept(a.samples));
          break;
        case 'stale':
          this.#safely('sink', () => this.#o.sink.markStale(a.tagPrefix, a.at, a.reason));
          break;
        case 'state':
          c.setState(a.kind, a.id, a.state, a.detail);
          break;
        case 'touch':
          c.touch(a.kind, a.id, a.at);
          break;
        case 'count':
          c.count(a.kind, a.id, a.counter);
          break;
        case 'problem':
          c.count(a.kind, a.id, a.counter);
          this.#warnOnce(
            a.kind,
            a.id,
            a.code,
            { problem: a.code, counter: a.counter, detail: a.detail },
            `Sparkplug: ${a.counter} input from ${a.kind} ${a.id} (further ones are counted, not logged)`,
          );
          break;
        case 'notice':
          this.#warnOnce(
            a.kind,
            a.id,
            a.code,
            { notice: a.code, detail: a.detail },
            `Sparkplug: ${a.kind} ${a.id}: ${a.detail}`,
          );
          break;
        case 'rebirth':
          this.#requestRebirth(a.group, a.edgeNode, a.reason);
          break;
      }
    }
  }

  /**
   * Asks an edge node to publish its births again (H10), e.g. because signals were just mapped to
   * its metrics and their current values only come with a BIRTH (report by exception). Nothing is
   * sent while disconnected.
   */
  requestRebirth(group: string, edgeNode: string, reason: string): void {
    if (this.#phase === 'running') this.#requestRebirth(group, edgeNode, reason);
  }

  /** H10: NCMD `Node Control/Rebirth` = true, QoS 0, not retained, with a timestamp and no seq. */
  #requestRebirth(group: string, edgeNode: string, reason: string): void {
    const conn = this.#conn;
    if (conn === null || !conn.born) return;
    const topic = commandTopic(group, edgeNode, null);
    conn.client.publish(
      topic,
      Buffer.from(encodeRebirthRequest(this.#now())),
      { qos: 0, retain: false },
      (e) => {
        if (e) this.#log.warn({ topic, err: e.message }, 'Sparkplug: rebirth request not sent');
      },
    );
    this.#o.connectivity.count('edge-node', `${group}/${edgeNode}`, 'rebirthRequests');
    this.#log.info({ edgeNode: `${group}/${edgeNode}`, reason }, 'Sparkplug: rebirth requested');
  }

  #armReorderTimer(): void {
    const next = this.#session.nextDeadline();
    if (next === this.#reorderTimerAt) return;
    if (this.#reorderTimer !== null) clearTimeout(this.#reorderTimer);
    this.#reorderTimer = null;
    this.#reorderTimerAt = next;
    if (next === null || this.#phase !== 'running') return;
    this.#reorderTimer = setTimeout(
      () => {
        this.#reorderTimer = null;
        this.#reorderTimerAt = null;
        try {
          this.#run(this.#session.tick(this.#now()));
        } catch (e) {
          this.#warnOnce(
            'mqtt-broker',
            this.#brokerId,
            'internal:tick',
            { err: e },
            'Sparkplug: reorder timeout handling failed',
          );
        }
        this.#armReorderTimer();
      },
      Math.max(0, next - this.#now()),
    );
  }

  #safely(what: string, f: () => void): void {
    try {
      f();
    } catch (e) {
      this.#warnOnce(
        'mqtt-broker',
        this.#brokerId,
        `${what}:${(e as Error).message}`,
        { err: e },
        `Sparkplug: the ${what} failed`,
      );
    }
  }

  /**
   * Logs a problem the first time a source shows it; later ones only count. Bounded, so a source
   * inventing new topics or ids cannot grow memory without limit through the log bookkeeping.
   */
  #warnOnce(
    kind: ConnectivityKind,
    id: string,
    code: string,
    fields: Record<string, unknown>,
    message: string,
  ): void {
    const key = `${kind}\u0000${id}\u0000${code}`;
    if (this.#logged.has(key)) return;
    if (this.#logged.size >= LOGGED_KEYS_MAX) {
      if (this.#logged.has('\u0000full')) return;
      this.#logged.add('\u0000full');
      this.#log.warn(
        `Sparkplug: ${LOGGED_KEYS_MAX} distinct input problems logged; further ones are only counted`,
      );
      return;
    }
    this.#logged.add(key);
    this.#log.warn({ source: `${kind} ${id}`, ...fields }, message);
  }

  async #stop(): Promise<void> {
    const wasRunning = this.#phase === 'running';
    this.#phase = 'stopping';
    if (this.#reconnectTimer !== null) clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = null;
    if (this.#reorderTimer !== null) clearTimeout(this.#reorderTimer);
    this.#reorderTimer = null;
    this.#reorderTimerAt = null;
    const conn = this.#conn;
    this.#conn = null;
    if (conn !== null) {
      if (conn.client.connected) {
        let timer: NodeJS.Timeout | undefined;
        try {
          await Promise.race([
            conn.client.publishAsync(this.#stateTopic, statePayload(false, this.#now()), {
              qos: 1,
              retain: true,
            }),
            new Promise((_, reject) => {
              timer = setTimeout(
                () => reject(new Error('no PUBACK for the STATE death')),
                STOP_PUBLISH_TIMEOUT_MS,
              );
            }),
          ]);
          await conn.client.endAsync();
        } catch (e) {
          this.#log.warn(
            { err: (e as Error).message },
            'Sparkplug: STATE death not acknowledged; the broker will publish our Will',
          );
          await conn.client.endAsync(true);
        } finally {
          clearTimeout(timer);
        }
      } else {
        await conn.client.endAsync(true);
      }
    }
    this.#phase = 'stopped';
    if (wasRunning) this.#o.connectivity.setState('mqtt-broker', this.#brokerId, 'offline', 'stopped');
    this.#settleFirstAttempt();
    if (wasRunning) this.#log.info('Sparkplug host stopped');
  }
}

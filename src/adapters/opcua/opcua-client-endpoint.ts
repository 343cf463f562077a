/**
 * One OPC UA server as Loom's connector sees it: one OPCUAClient, one session, one subscription
 * with a monitored item per signal, and the reads, writes, method calls and browses the command
 * gateway and the mapping UI ask for. Loaded only when a signal or the endpoints file names an
 * OPC UA endpoint (node-opcua takes over a second to import).
 *
 * Reconnection follows OPC UA Part 4 §6.7 as node-opcua implements it: a new secure channel, then
 * ActivateSession on the old session and Republish of what the server still queues (no loss); if
 * the session is gone (server restart, session timeout) a new session, TransferSubscriptions, and
 * if that fails a recreated subscription with its monitored items. That last path loses whatever
 * changed in between: it is recorded as a gap (RELIABILITY.md rule 7), the endpoint's tags are
 * marked stale from the loss, and the recreated items' initial values re-read every variable.
 */
import { createHash } from 'node:crypto';
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { format } from 'node:util';
import {
  AttributeIds,
  BrowseDirection,
  ClientMonitoredItemGroup,
  DataChangeFilter,
  DataChangeNotification,
  DataChangeTrigger,
  DeadbandType,
  MessageSecurityMode,
  NodeClass,
  OPCUACertificateManager,
  OPCUAClient,
  RepublishRequest,
  SecurityPolicy,
  TimestampsToReturn,
  UserTokenType,
  Variant,
  VariableIds,
  coerceNodeId,
  findBasicDataType,
  setDebugLogger,
  setErrorLogger,
  setWarningLogger,
  type ClientMonitoredItemBase,
  type ClientSession,
  type ClientSessionPublishService,
  type ClientSessionRawSubscriptionService,
  type ClientSubscription,
  type DataValue,
  type MonitoringParametersOptions,
  type NodeId,
  type NotificationMessage,
  type ReadValueIdOptions,
  type ReferenceDescription,
  type RepublishResponse,
  type UserIdentityInfo,
} from 'node-opcua';
import type { Logger } from 'pino';
import type { MappedSignal } from '../../app/telemetry/sample-store.ts';
import type { ConnectivityReporter, TelemetrySink } from '../../app/telemetry/telemetry-ports.ts';
import type { Clock } from '../../domain/shared/clock.ts';
import { tagKey, type SampleValue, type TagSample } from '../../domain/signal/sample.ts';
import type { OpcUaNodeSource } from '../../domain/signal/signal.ts';
import type {
  OpcUaBrowseChild,
  OpcUaBrowseResult,
  OpcUaCallResult,
  OpcUaReadResult,
  OpcUaWriteResult,
} from './opcua-connector.ts';
import type { OpcUaEndpointSecurity } from './opcua-endpoints-file.ts';
import {
  BuiltInType,
  UNSUPPORTED,
  builtInTypeName,
  describeUnsupported,
  encodeForDataType,
  hasOverflow,
  qualityOf,
  resolveNamespace,
  sampleValueOf,
} from './opcua-values.ts';

const KIND = 'opcua-endpoint' as const;

/** Loom's OPC UA certificate store: its own certificate, the trust list and the rejected servers. */
export interface OpcUaPki {
  readonly manager: OPCUACertificateManager;
  readonly rootDir: string;
  /** Where Loom's own certificate is (give it to servers that must trust Loom). */
  readonly ownCertificateFile: string;
}

/** Opens (creating on first use) the certificate store at `rootDir`. Unknown server certificates are refused. */
export async function openPki(rootDir: string): Promise<OpcUaPki> {
  const manager = new OPCUACertificateManager({
    rootFolder: rootDir,
    name: 'Loom',
    automaticallyAcceptUnknownCertificate: false,
  });
  await manager.initialize();
  return { manager, rootDir, ownCertificateFile: path.join(rootDir, 'own/certs/client_certificate.pem') };
}

/** SHA-1 thumbprint of a DER certificate, in the lower-case hex node-opcua names files with. */
export const thumbprintOf = (der: Buffer): string => createHash('sha1').update(der).digest('hex');

/** A certificate from a PEM or DER file, or as bytes; the first certificate of a PEM chain. */
export async function readCertificate(certificate: Buffer | string): Promise<Buffer> {
  const bytes = typeof certificate === 'string' ? await readFile(certificate) : certificate;
  const text = bytes.subarray(0, 64).toString('latin1');
  if (!text.includes('-----BEGIN')) return bytes;
  const m = /-----BEGIN CERTIFICATE-----([\s\S]+?)-----END CERTIFICATE-----/.exec(bytes.toString('latin1'));
  if (!m) throw new Error('no certificate in the PEM file');
  return Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64');
}

/** Puts a server certificate on Loom's trust list; returns its thumbprint. */
export async function trustServerCertificate(pki: OpcUaPki, certificate: Buffer | string): Promise<string> {
  const der = await readCertificate(certificate);
  await pki.manager.trustCertificate(der);
  return thumbprintOf(der);
}

/**
 * node-opcua writes its warnings straight to the console, some of them once per retry. They go to
 * the logger at debug level instead (Loom logs each fault itself, once); known secrets are masked.
 */
export function routeNodeOpcuaLogs(logger: Logger, secrets: () => readonly string[]): void {
  const log = logger.child({ component: 'node-opcua' });
  const route =
    (level: 'debug' | 'trace') =>
    (_context?: unknown, ...args: unknown[]): void => {
      if (!log.isLevelEnabled(level)) return;
      let text = format(...args);
      for (const s of secrets()) if (s !== '') text = text.split(s).join('***');
      log[level](text);
    };
  setWarningLogger(route('debug'));
  setErrorLogger(route('debug'));
  setDebugLogger(route('trace'));
}

export interface EndpointOptions {
  readonly sink: TelemetrySink;
  readonly connectivity: ConnectivityReporter;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly pki: OpcUaPki;
  readonly maxMessageBytes: number;
  readonly maxChunkCount: number;
  readonly sessionTimeoutMs: number;
  /** Longest wait for a read, write, call or browse answer, ms. */
  readonly requestTimeoutMs: number;
  /** First reconnect delay, ms (doubles up to `maxReconnectMs`, with jitter). */
  readonly reconnectMs: number;
  readonly maxReconnectMs: number;
  /** Bounds of the subscription's publishing interval (the smallest samplingMs within them). */
  readonly minPublishingMs: number;
  readonly maxPublishingMs: number;
  /** Keep-alive the subscription asks for when idle, ms; silence for 2.5 × this marks the endpoint stale. */
  readonly keepAliveMs: number;
  /** Monitored items per CreateMonitoredItems request (capped by the server's MaxMonitoredItemsPerCall). */
  readonly createBatchSize: number;
  readonly applicationName: string;
}

/** What a signal asks of its monitored item. Items with the same parameters are created together. */
interface ItemSpec {
  readonly tag: string;
  readonly nodeId: string;
  readonly samplingMs: number;
  readonly queueSize: number;
  /** Absolute deadband for the server's DataChangeFilter; 0: none. */
  readonly deadband: number;
  readonly key: string;
}

interface Item {
  readonly spec: ItemSpec;
  monitored: ClientMonitoredItemBase | null;
  handle: number;
  /** Status name of a failed creation; retried after a reconnection or a tag-map change. */
  failed: string | null;
  /** The server refused the deadband filter: created without it (the pipeline applies the deadband). */
  noFilter: boolean;
  /** The next notification is the item's initial value: it may repeat a stored sample. */
  initial: boolean;
}

type Phase = 'connecting' | 'online' | 'reconnecting' | 'stopped';

/** OPC UA Part 4 §7.39 masks the sequence number at 2³² − 1, then starts again at 1. */
const nextSeq = (seq: number): number => (seq >= 0xffffffff ? 1 : seq + 1);
/** How long a skipped notification message may take to arrive by Republish before it counts as lost. */
const MISSING_GRACE_MS = 30_000;
/** More skipped messages than this are not tracked one by one: the rest is a gap at once. */
const MAX_TRACKED_MISSING = 10_000;
/** How long after seeing a skip Loom asks the server itself for what is still missing (Republish). */
const REPUBLISH_AFTER_MS = 1_000;
/** Skipped messages asked for one by one per round; more wait for the next skip or expire. */
const MAX_REPUBLISH_PER_ROUND = 200;

const ISO = (ms: number): string => new Date(ms).toISOString();

interface ConnectFault {
  readonly kind: string;
  readonly detail: string;
  readonly counter: string;
}

function classifyConnectError(e: unknown, mode: string, policy: string): ConnectFault {
  const msg = e instanceof Error ? e.message : String(e);
  if (/certificate verification failed|BadCertificateUntrusted/i.test(msg)) {
    return { kind: 'untrustedCertificate', detail: msg, counter: 'untrustedCertificate' };
  }
  if (/cannot find (an )?endpoint/i.test(msg)) {
    return {
      kind: 'noEndpoint',
      detail: `the server offers no endpoint with security mode ${mode} and policy ${policy}`,
      counter: 'connectFailures',
    };
  }
  if (/BadUserAccessDenied|BadIdentityToken/i.test(msg)) {
    return { kind: 'loginRefused', detail: msg, counter: 'loginRefused' };
  }
  if (/BadSecurityChecksFailed|BadCertificate|BadSecurityPolicyRejected/i.test(msg)) {
    return { kind: 'certificateRefused', detail: msg, counter: 'certificateRefused' };
  }
  return { kind: 'connect', detail: msg, counter: 'connectFailures' };
}

const sleepFor = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done);
  });

class RequestTimeout extends Error {}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new RequestTimeout()), ms);
    }),
  ]);
}

export class OpcUaEndpoint {
  readonly url: string;
  readonly #o: EndpointOptions;
  readonly #security: OpcUaEndpointSecurity;
  readonly #prefix: string;
  readonly #abort = new AbortController();
  readonly #logged = new Set<string>();

  #specs = new Map<string, ItemSpec>();
  readonly #items = new Map<string, Item>();
  readonly #byHandle = new Map<number, Item>();
  /** Items whose creation is under way: a notification may come before the CreateMonitoredItems answer. */
  readonly #byMonitored = new WeakMap<ClientMonitoredItemBase, Item>();

  #client: OPCUAClient | null = null;
  #session: ClientSession | null = null;
  #subscription: ClientSubscription | null = null;
  #phase: Phase = 'connecting';
  #done: Promise<void> = Promise.resolve();
  #reconciling: Promise<void> | null = null;
  #dirty = false;
  #publishingMs = 0;
  #namespaces: readonly string[] = [];
  #serverStartTime: number | null = null;
  #maxItemsPerCall = 0;
  readonly #dataTypes = new Map<string, { readonly type: number; readonly valueRank: number }>();

  /** The last time the server said anything on the subscription (data or keep-alive), epoch ms. */
  #lastHeardAt: number | null = null;
  #lastSeq = 0;
  /**
   * Sequence numbers skipped by a newer message, with when the skip was seen. A Republish after a
   * reconnection can deliver them after newer ones (OPC UA Part 4 §5.13.6); only one still missing
   * after `MISSING_GRACE_MS` is a lost message, and a gap.
   */
  readonly #missing = new Map<number, number>();
  #republishTimer: NodeJS.Timeout | null = null;
  #stale = false;
  #watchdog: NodeJS.Timeout | null = null;
  /** The connection was lost at `from`; still down, or up again without its subscription yet. */
  #loss: { from: number; staleMarked: boolean; recreated: boolean; timer: NodeJS.Timeout | null } | null =
    null;
  #connectedOnce = false;
  #backoffMs: number;
  /** The refused server certificate, looked up once per refusal streak. */
  #untrusted: { thumbprint: string } | null = null;

  constructor(url: string, security: OpcUaEndpointSecurity, o: EndpointOptions) {
    this.url = url;
    this.#security = security;
    this.#o = o;
    this.#prefix = tagKey.opcuaEndpointPrefix(url);
    this.#backoffMs = o.reconnectMs;
  }

  /** The session is active and not being repaired: requests can go out now. */
  get connected(): boolean {
    return this.#phase === 'online' && this.#session !== null;
  }

  /** The monitored items this endpoint should have (its signals); applied now or when connected. */
  setSignals(signals: readonly MappedSignal[]): void {
    const specs = new Map<string, ItemSpec>();
    for (const s of signals) {
      if (!('opcua' in s.source)) continue;
      const src: OpcUaNodeSource = s.source.opcua;
      const deadband = s.dataType === 'number' && s.deadband > 0 ? s.deadband : 0;
      specs.set(s.tag, {
        tag: s.tag,
        nodeId: src.nodeId,
        samplingMs: src.samplingMs,
        queueSize: src.queueSize,
        deadband,
        key: `${src.nodeId}\u0000${src.samplingMs}\u0000${src.queueSize}\u0000${deadband}`,
      });
    }
    this.#specs = specs;
    this.#reconcileSoon();
  }

  start(): void {
    this.#o.connectivity.setState(KIND, this.url, 'connecting', 'connecting');
    this.#watchdog = setInterval(() => this.#checkSilence(), 1000);
    this.#watchdog.unref();
    this.#done = this.#run();
  }

  async stop(): Promise<void> {
    if (this.#stopped) return this.#done;
    this.#phase = 'stopped';
    this.#abort.abort();
    if (this.#watchdog) clearInterval(this.#watchdog);
    if (this.#loss?.timer) clearTimeout(this.#loss.timer);
    if (this.#republishTimer) clearTimeout(this.#republishTimer);
    await this.#teardown();
    // A connect() still retrying settles once disconnect() cancels it; never wait forever.
    await withTimeout(this.#done, 5000).catch(() => undefined);
  }

  get #stopped(): boolean {
    return this.#abort.signal.aborted;
  }

  // ---------------------------------------------------------------- connection

  async #run(): Promise<void> {
    while (!this.#stopped) {
      const fault = await this.#connect().catch((e: unknown) =>
        classifyConnectError(e, this.#security.securityMode, this.#security.securityPolicy),
      );
      if (this.#stopped) return;
      if (fault === null) return; // connected: node-opcua reconnects from here on
      await this.#onConnectFault(fault);
      await this.#teardown();
      await sleepFor(this.#backoffMs * (0.8 + Math.random() * 0.4), this.#abort.signal);
      this.#backoffMs = Math.min(this.#backoffMs * 2, this.#o.maxReconnectMs);
    }
  }

  /** Connects, opens the session and the subscription, creates the items; null when all went well. */
  async #connect(): Promise<ConnectFault | null> {
    const { connectivity } = this.#o;
    this.#phase = 'connecting';
    connectivity.setState(
      KIND,
      this.url,
      'connecting',
      this.#connectedOnce ? 'connecting again' : 'connecting',
    );
    const client = OPCUAClient.create({
      applicationName: this.#o.applicationName,
      clientName: `Loom ${this.url}`,
      endpointMustExist: false,
      securityMode: MessageSecurityMode[this.#security.securityMode],
      securityPolicy: SecurityPolicy[this.#security.securityPolicy],
      clientCertificateManager: this.#o.pki.manager,
      connectionStrategy: {
        initialDelay: this.#o.reconnectMs,
        maxDelay: this.#o.maxReconnectMs,
        maxRetry: -1,
        randomisationFactor: 0.2,
      },
      requestedSessionTimeout: this.#o.sessionTimeoutMs,
      keepSessionAlive: true,
      transportSettings: { maxMessageSize: this.#o.maxMessageBytes, maxChunkCount: this.#o.maxChunkCount },
    });
    this.#client = client;
    client.on('backoff', (count, delay) => this.#onBackoff(count, delay));
    client.on('connection_lost', () => this.#onConnectionLost());
    client.on('reconnection_attempt_has_failed', (err: Error) => this.#onReconnectFailed(err));
    // node-opcua's hook between a new session and the repair of its subscriptions: the old session
    // is gone, so whatever the server sends next for the items is a fresh initial value.
    (
      client as unknown as { beforeSubscriptionRecreate?: () => Promise<undefined> }
    ).beforeSubscriptionRecreate = async () => {
      for (const item of this.#items.values()) item.initial = true;
      return undefined;
    };

    // stop() may come during any step: what a step opened after the teardown is closed here.
    const abandoned = async (): Promise<boolean> => {
      if (!this.#stopped) return false;
      await this.#teardown();
      return true;
    };
    await client.connect(this.url);
    if (await abandoned()) return null;
    const identity: UserIdentityInfo =
      this.#security.username !== undefined && this.#security.password !== undefined
        ? {
            type: UserTokenType.UserName,
            userName: this.#security.username,
            password: this.#security.password,
          }
        : { type: UserTokenType.Anonymous };
    const session = await client.createSession(identity);
    this.#session = session;
    if (await abandoned()) return null;
    session.on('session_restored', () => this.#onSessionRestored());
    await this.#readServerFacts(session);
    this.#publishingMs = this.#publishingInterval();
    const subscription = await session.createSubscription2(this.#subscriptionParameters(this.#publishingMs));
    this.#attach(subscription);
    if (await abandoned()) return null;

    this.#phase = 'online';
    this.#untrusted = null;
    this.#connectedOnce = true;
    this.#backoffMs = this.#o.reconnectMs;
    this.#heard(this.#o.clock.now().getTime());
    for (const kind of [
      'connect',
      'untrustedCertificate',
      'certificateRefused',
      'loginRefused',
      'noEndpoint',
      'unreachable',
    ]) {
      this.#logged.delete(kind);
    }
    const m = this.#security;
    connectivity.setState(
      KIND,
      this.url,
      'online',
      `session open (${m.securityMode}${m.securityMode === 'None' ? '' : ` ${m.securityPolicy}`}, ${m.username === undefined ? 'anonymous' : `user ${m.username}`})`,
    );
    this.#o.logger.info({ endpoint: this.url, securityMode: m.securityMode }, 'OPC UA endpoint connected');
    for (const item of this.#items.values()) item.initial = true;
    await this.#reconcile(true);
    return null;
  }

  async #readServerFacts(session: ClientSession): Promise<void> {
    const values = await session.read([
      { nodeId: VariableIds.Server_NamespaceArray, attributeId: AttributeIds.Value },
      { nodeId: VariableIds.Server_ServerStatus_StartTime, attributeId: AttributeIds.Value },
      {
        nodeId: VariableIds.Server_ServerCapabilities_OperationLimits_MaxMonitoredItemsPerCall,
        attributeId: AttributeIds.Value,
      },
    ]);
    const ns = values[0]?.value.value as unknown;
    this.#namespaces = Array.isArray(ns) ? (ns as string[]) : [];
    const start = values[1]?.value.value as unknown;
    this.#serverStartTime = start instanceof Date ? start.getTime() : null;
    const max = values[2]?.value.value as unknown;
    this.#maxItemsPerCall = typeof max === 'number' && max > 0 ? max : 0;
  }

  #publishingInterval(): number {
    let min = Number.POSITIVE_INFINITY;
    for (const s of this.#specs.values()) min = Math.min(min, s.samplingMs);
    if (!Number.isFinite(min)) min = 1000;
    return Math.min(this.#o.maxPublishingMs, Math.max(this.#o.minPublishingMs, min));
  }

  #subscriptionParameters(publishingMs: number) {
    const keepAliveCount = Math.max(3, Math.ceil(this.#o.keepAliveMs / publishingMs));
    // The subscription must outlive an outage the session survives, or republish finds nothing.
    const lifetimeCount = Math.max(
      keepAliveCount * 3,
      Math.ceil((this.#o.sessionTimeoutMs + this.#o.keepAliveMs) / publishingMs),
    );
    return {
      requestedPublishingInterval: publishingMs,
      requestedMaxKeepAliveCount: keepAliveCount,
      requestedLifetimeCount: lifetimeCount,
      // Bounded so one Publish response stays well inside the message-size limit.
      maxNotificationsPerPublish: Math.min(65_535, Math.floor(this.#o.maxMessageBytes / 256)),
      publishingEnabled: true,
      priority: 10,
    };
  }

  #attach(subscription: ClientSubscription): void {
    this.#subscription = subscription;
    this.#lastSeq = 0;
    this.#missing.clear();
    subscription.on('received_notifications', this.#onNotifications);
    subscription.on('keepalive', this.#onKeepAlive);
    subscription.on('subscriptionId_changed' as 'keepalive', () => this.#onSubscriptionRecreated());
    subscription.on('terminated', () => {
      if (this.#subscription === subscription) void this.#onSubscriptionTerminated();
    });
  }

  async #onConnectFault(f: ConnectFault): Promise<void> {
    const { connectivity, pki } = this.#o;
    let detail = f.detail;
    let hint: string | undefined;
    switch (f.kind) {
      case 'untrustedCertificate': {
        this.#untrusted ??= await this.#inspectServerCertificate();
        const thumb = this.#untrusted?.thumbprint ?? 'unknown';
        const file = await this.#rejectedFileOf(thumb);
        detail = `server certificate not trusted (thumbprint ${thumb})`;
        hint = `Loom refused it and put it in ${pki.manager.rejectedFolder}; to trust it, move ${file ?? `its file (…[${thumb}].pem)`} to ${pki.manager.trustedFolder}`;
        // An operator may have moved the file since: look again before the next attempt.
        await pki.manager.reloadCertificates().catch(() => undefined);
        break;
      }
      case 'certificateRefused':
        hint = `the server did not accept Loom's certificate: add ${pki.ownCertificateFile} to the server's trust list`;
        break;
      case 'loginRefused':
        hint = `the server refused the login ${this.#security.username === undefined ? '(anonymous)' : `of user ${this.#security.username}`}: check the user name and password (LOOM_OPCUA_USERNAME or the endpoints file)`;
        break;
      case 'noEndpoint':
        hint =
          'set securityMode and securityPolicy to what the server offers (LOOM_OPCUA_SECURITY_* or the endpoints file)';
        break;
      default:
        break;
    }
    connectivity.count(KIND, this.url, f.counter);
    connectivity.setState(KIND, this.url, 'offline', hint === undefined ? detail : `${detail}: ${hint}`);
    this.#logOnce(
      f.kind,
      { err: f.detail, retryInMs: this.#backoffMs, ...(hint ? { hint } : {}) },
      `OPC UA endpoint: ${detail}`,
    );
  }

  async #rejectedFileOf(thumbprint: string): Promise<string | null> {
    const folder = this.#o.pki.manager.rejectedFolder;
    const names = await readdir(folder).catch(() => [] as string[]);
    const name = names.find((n) => n.includes(`[${thumbprint}]`));
    return name === undefined ? null : path.join(folder, name);
  }

  /** The server's certificate, fetched over an unsecured discovery connection (GetEndpoints). */
  async #inspectServerCertificate(): Promise<{ thumbprint: string } | null> {
    const probe = OPCUAClient.create({
      endpointMustExist: false,
      securityMode: MessageSecurityMode.None,
      securityPolicy: SecurityPolicy.None,
      clientCertificateManager: this.#o.pki.manager,
      connectionStrategy: { maxRetry: 0, initialDelay: 100, maxDelay: 200 },
      transportSettings: { maxMessageSize: this.#o.maxMessageBytes, maxChunkCount: this.#o.maxChunkCount },
    });
    try {
      await withTimeout(probe.connect(this.url), this.#o.requestTimeoutMs);
      const endpoints = await withTimeout(probe.getEndpoints(), this.#o.requestTimeoutMs);
      const cert = endpoints.find(
        (e) => e.serverCertificate && e.serverCertificate.length > 0,
      )?.serverCertificate;
      return cert ? { thumbprint: thumbprintOf(await readCertificate(cert)) } : null;
    } catch {
      return null;
    } finally {
      await probe.disconnect().catch(() => undefined);
    }
  }

  #onBackoff(count: number, delay: number): void {
    if (this.#stopped) return;
    const { connectivity } = this.#o;
    if (this.#phase === 'connecting') {
      connectivity.count(KIND, this.url, 'connectFailures');
      connectivity.setState(KIND, this.url, 'offline', `unreachable; attempt ${count + 1} in ${delay} ms`);
      this.#logOnce(
        'unreachable',
        { retryInMs: delay },
        'OPC UA endpoint unreachable; retrying with backoff',
      );
    } else if (this.#loss !== null) {
      connectivity.setState(
        KIND,
        this.url,
        this.#loss.staleMarked ? 'offline' : 'connecting',
        `connection lost (last message ${ISO(this.#loss.from)}); reconnect attempt ${count + 1} in ${delay} ms`,
      );
    }
  }

  #onConnectionLost(): void {
    if (this.#stopped || this.#phase === 'connecting') return;
    const now = this.#o.clock.now().getTime();
    this.#phase = 'reconnecting';
    if (this.#loss === null) {
      const from = this.#lastHeardAt ?? now;
      const loss = { from, staleMarked: false, recreated: false, timer: null as NodeJS.Timeout | null };
      // After the session timeout the server has dropped the session: data is being lost for sure.
      loss.timer = setTimeout(() => {
        if (this.#loss === loss && this.#phase !== 'online') {
          this.#markStale(loss, 'connection lost for longer than the session timeout');
          this.#o.connectivity.setState(
            KIND,
            this.url,
            'offline',
            `connection lost (last message ${ISO(from)}) for longer than the session timeout (${this.#o.sessionTimeoutMs} ms): data is being lost; reconnecting`,
          );
        }
      }, this.#o.sessionTimeoutMs);
      loss.timer.unref();
      this.#loss = loss;
    }
    this.#o.connectivity.setState(
      KIND,
      this.url,
      'connecting',
      `connection lost (last message ${ISO(this.#loss.from)}); reconnecting`,
    );
    this.#logOnce(
      'disconnected',
      { lastMessageAt: ISO(this.#loss.from) },
      'OPC UA connection lost; reconnecting',
    );
  }

  #onReconnectFailed(err: Error): void {
    if (this.#stopped) return;
    const f = classifyConnectError(err, this.#security.securityMode, this.#security.securityPolicy);
    if (f.kind !== 'connect') this.#o.connectivity.count(KIND, this.url, f.counter);
    this.#logOnce(`reconnect:${f.kind}`, { err: f.detail }, `OPC UA reconnect attempt failed: ${f.detail}`);
  }

  #onSubscriptionRecreated(): void {
    // The server no longer had the subscription (restart, session or subscription timeout): what
    // changed since the loss is gone. The items are being recreated; their first values re-read all.
    this.#lastSeq = 0;
    this.#missing.clear();
    this.#dataTypes.clear();
    for (const item of this.#items.values()) item.initial = true;
    const now = this.#o.clock.now().getTime();
    const loss = this.#loss ?? {
      from: this.#lastHeardAt ?? now,
      staleMarked: false,
      recreated: false,
      timer: null,
    };
    loss.recreated = true;
    this.#loss = loss;
    this.#markStale(loss, 'OPC UA subscription lost; recreated');
  }

  #onSessionRestored(): void {
    if (this.#stopped) return;
    const loss = this.#loss;
    this.#loss = null;
    if (loss?.timer) clearTimeout(loss.timer);
    this.#phase = 'online';
    const now = this.#o.clock.now().getTime();
    this.#heard(now);
    this.#o.connectivity.count(KIND, this.url, 'reconnects');
    this.#logged.delete('disconnected');
    for (const k of [...this.#logged]) if (k.startsWith('reconnect:')) this.#logged.delete(k);
    if (loss !== null && (loss.recreated || loss.staleMarked)) {
      void this.#closeGap(loss.from, now);
    } else {
      this.#o.connectivity.setState(
        KIND,
        this.url,
        'online',
        `reconnected at ${ISO(now)}: session reactivated, notifications republished, nothing lost`,
      );
      this.#o.logger.info(
        { endpoint: this.url },
        'OPC UA connection back; session reactivated, nothing lost',
      );
    }
    this.#reconcileSoon(true);
    if (this.#missing.size > 0) this.#scheduleRepublish();
  }

  async #onSubscriptionTerminated(): Promise<void> {
    if (this.#stopped || this.#session === null) return;
    // The server closed the subscription (Part 4 §5.13.1.1 h: lifetime expired) while the session
    // lives on: a gap until a new subscription delivers initial values.
    const now = this.#o.clock.now().getTime();
    const from = this.#lastHeardAt ?? now;
    const loss = { from, staleMarked: false, recreated: true, timer: null };
    this.#markStale(loss, 'OPC UA subscription closed by the server');
    this.#subscription = null;
    this.#byHandle.clear();
    for (const item of this.#items.values()) {
      item.monitored = null;
      item.handle = 0;
    }
    this.#items.clear();
    try {
      const sub = await this.#session.createSubscription2(this.#subscriptionParameters(this.#publishingMs));
      this.#attach(sub);
      await this.#reconcile(true);
      await this.#closeGap(from, this.#o.clock.now().getTime());
    } catch (e) {
      this.#logOnce(
        'subscription',
        { err: (e as Error).message },
        'OPC UA subscription could not be recreated',
      );
    }
  }

  #markStale(loss: { from: number; staleMarked: boolean }, reason: string): void {
    if (loss.staleMarked) return;
    loss.staleMarked = true;
    this.#o.sink.markStale(this.#prefix, loss.from, `${reason} (${this.url})`);
  }

  /** Records a gap [from, to] now that data flows again, with why (server restart or timeout). */
  async #closeGap(from: number, to: number): Promise<void> {
    let reason = 'session or subscription lost: recreated, initial values re-read';
    const before = this.#serverStartTime;
    const session = this.#session;
    if (session !== null) {
      try {
        const [dv] = await withTimeout(
          session.read([
            { nodeId: VariableIds.Server_ServerStatus_StartTime, attributeId: AttributeIds.Value },
          ]),
          this.#o.requestTimeoutMs,
        );
        const start = dv?.value.value as unknown;
        if (start instanceof Date) {
          this.#serverStartTime = start.getTime();
          reason =
            before !== null && start.getTime() !== before
              ? `server restarted at ${start.toISOString()}: subscription recreated, initial values re-read`
              : 'session timed out: subscription recreated, initial values re-read';
        }
      } catch {
        // the reason stays general
      }
    }
    const { connectivity } = this.#o;
    connectivity.recordGap(KIND, this.url, { from, to, reason });
    connectivity.setState(
      KIND,
      this.url,
      'online',
      `reconnected at ${ISO(to)} after a gap from ${ISO(from)}: ${reason}`,
    );
    this.#o.logger.warn(
      { endpoint: this.url, gapFrom: ISO(from), gapTo: ISO(to), gapMs: to - from, reason },
      'OPC UA data gap: values between these times are lost',
    );
  }

  #heard(at: number): void {
    this.#lastHeardAt = at;
    this.#o.connectivity.touch(KIND, this.url, at);
    if (this.#stale) {
      this.#stale = false;
      this.#o.connectivity.setState(KIND, this.url, 'online', 'the server answers again');
    }
  }

  #checkSilence(): void {
    if (this.#phase !== 'online' || this.#lastHeardAt === null || this.#stale) return;
    const silentMs = this.#o.clock.now().getTime() - this.#lastHeardAt;
    if (silentMs > this.#o.keepAliveMs * 2.5) {
      this.#stale = true;
      this.#o.connectivity.count(KIND, this.url, 'silences');
      this.#o.connectivity.setState(
        KIND,
        this.url,
        'stale',
        `no publish response for ${Math.round(silentMs / 1000)} s (keep-alive every ${this.#o.keepAliveMs / 1000} s); waiting`,
      );
    }
  }

  async #teardown(): Promise<void> {
    if (!this.#stopped && this.#phase !== 'stopped') this.#phase = 'connecting';
    const client = this.#client;
    const session = this.#session;
    this.#client = null;
    this.#session = null;
    this.#subscription = null;
    this.#byHandle.clear();
    for (const item of this.#items.values()) {
      item.monitored = null;
      item.handle = 0;
    }
    this.#items.clear();
    if (session !== null) await withTimeout(session.close(true), 3000).catch(() => undefined);
    if (client !== null) await withTimeout(client.disconnect(), 3000).catch(() => undefined);
  }

  // ---------------------------------------------------------------- notifications (hot path)

  readonly #onKeepAlive = (): void => {
    const now = this.#o.clock.now().getTime();
    this.#heard(now);
    this.#expireMissing(now);
  };

  /**
   * One Publish response: every value of every item, as one batch for the pipeline. No closure or
   * intermediate object per value; the sample itself is the only allocation.
   */
  readonly #onNotifications = (msg: NotificationMessage): void => {
    const seq = msg.sequenceNumber;
    const last = this.#lastSeq;
    const now = this.#o.clock.now().getTime();
    if (last !== 0 && seq !== nextSeq(last)) {
      const behind = seq <= last && last - seq < 0x7fffffff;
      if (behind && !this.#missing.delete(seq)) {
        this.#o.connectivity.count(KIND, this.url, 'duplicateMessages');
        return;
      }
      if (behind) this.#o.connectivity.count(KIND, this.url, 'lateMessages');
      else this.#skipped(last, seq, now);
    }
    // A message republished after newer ones carries older values: history, never the live value.
    const late = last !== 0 && seq !== nextSeq(last) && seq <= last && last - seq < 0x7fffffff;
    if (!late) this.#lastSeq = seq;
    this.#expireMissing(now);
    this.#heard(now);
    const data = msg.notificationData;
    if (!data) return;
    const samples: TagSample[] = [];
    let bad = 0;
    let overflow = 0;
    let unsupported = 0;
    for (let d = 0; d < data.length; d++) {
      const n = data[d];
      if (!(n instanceof DataChangeNotification) || !n.monitoredItems) continue;
      const list = n.monitoredItems;
      for (let i = 0; i < list.length; i++) {
        const m = list[i]!;
        const item = this.#byHandle.get(m.clientHandle) ?? this.#pendingItem(m.clientHandle);
        if (item === undefined) continue;
        const dv = m.value;
        const code = dv.statusCode.value;
        let quality = qualityOf(code);
        let value = sampleValueOf(dv.value);
        if (value === UNSUPPORTED) {
          unsupported++;
          if (!this.#logged.has('unsupported')) this.#logUnsupported(item, dv);
          value = null;
          quality = 'bad';
        }
        if (quality === 'bad') bad++;
        if (hasOverflow(code)) {
          overflow++;
          if (!this.#logged.has('overflow')) this.#logOverflow(item);
        }
        samples.push({
          tag: item.spec.tag,
          value,
          quality,
          sourceTs: dv.sourceTimestamp?.getTime() ?? dv.serverTimestamp?.getTime() ?? now,
          serverTs: now,
          historical: late,
          mayRepeat: item.initial,
        });
        item.initial = false;
      }
    }
    if (samples.length === 0) return;
    this.#o.sink.accept(samples);
    const { connectivity } = this.#o;
    connectivity.count(KIND, this.url, 'notifications', samples.length);
    if (bad > 0) connectivity.count(KIND, this.url, 'badQuality', bad);
    if (overflow > 0) connectivity.count(KIND, this.url, 'queueOverflows', overflow);
    if (unsupported > 0) connectivity.count(KIND, this.url, 'unsupportedValues', unsupported);
  };

  #pendingItem(handle: number): Item | undefined {
    const m = this.#subscription?.monitoredItems[handle];
    return m === undefined ? undefined : this.#byMonitored.get(m);
  }

  /** Messages `last`+1 … `seq`−1 did not come (yet): tracked until a Republish brings them or they expire. */
  #skipped(last: number, seq: number, now: number): void {
    const count = seq > last ? seq - last - 1 : 0xffffffff - last + seq - 1;
    let s = nextSeq(last);
    let tracked = 0;
    for (; s !== seq && tracked < MAX_TRACKED_MISSING; s = nextSeq(s), tracked++) this.#missing.set(s, now);
    if (count > tracked) this.#lostMessages(count - tracked, `${s}–${seq - 1}`, now);
    if (tracked > 0) this.#scheduleRepublish();
  }

  #scheduleRepublish(): void {
    if (this.#republishTimer !== null || this.#stopped) return;
    this.#republishTimer = setTimeout(() => {
      this.#republishTimer = null;
      void this.#republishMissing().catch(() => undefined);
    }, REPUBLISH_AFTER_MS);
    this.#republishTimer.unref();
  }

  /**
   * Asks the server for each skipped message still missing. node-opcua republishes after a
   * reconnection from its own last sequence number + 1; when a newer Publish response arrives on
   * the new channel first, that number has already moved past the messages lost with the old
   * channel, and they are never asked for (seen on CI as holes that never closed). The server keeps
   * every message not acknowledged (Part 4 §5.13.1.1), so asking by number brings them back; one it
   * no longer has (BadMessageNotAvailable) stays missing and expires into a gap as before. A failed
   * request ends the round and another follows a second later; the grace time ends them all.
   */
  async #republishMissing(): Promise<void> {
    const session = this.#session;
    const subscription = this.#subscription;
    if (this.#missing.size === 0 || this.#stopped) return;
    // While the connection is down nothing is asked: its return (#onSessionRestored) starts a round.
    if (session === null || subscription === null || this.#phase !== 'online') return;
    const wanted = [...this.#missing.keys()].slice(0, MAX_REPUBLISH_PER_ROUND);
    let asked = 0;
    let returned = 0;
    for (const seq of wanted) {
      if (!this.#missing.has(seq)) continue; // it came meanwhile
      asked++;
      const request = new RepublishRequest({
        subscriptionId: subscription.subscriptionId,
        retransmitSequenceNumber: seq,
      });
      const answer = await withTimeout(
        new Promise<{ response?: RepublishResponse | undefined; err: Error | null }>((resolve) =>
          (session as ClientSession & ClientSessionPublishService).republish(request, (err, response) =>
            resolve({ err, response }),
          ),
        ),
        this.#o.requestTimeoutMs,
      ).catch((err: Error) => ({ err, response: undefined }));
      if (this.#session !== session || this.#subscription !== subscription || this.#stopped) return;
      const message =
        answer.err === null && answer.response?.responseHeader.serviceResult.isGood()
          ? answer.response.notificationMessage
          : null;
      if (message) {
        if (this.#missing.has(seq)) {
          this.#onNotifications(message);
          returned++;
        }
        continue;
      }
      const reason = answer.err?.message ?? answer.response?.responseHeader.serviceResult.toString() ?? '';
      if (/BadMessageNotAvailable/.test(reason)) continue; // gone: it expires into a gap
      this.#scheduleRepublish();
      break;
    }
    if (asked === 0) return;
    this.#o.logger.info(
      { endpoint: this.url, asked, returned, stillMissing: this.#missing.size },
      'OPC UA: asked the server to republish skipped notification messages',
    );
  }

  /** Skipped messages that no Republish brought within the grace time are lost: one gap for all of them. */
  #expireMissing(now: number): void {
    if (this.#missing.size === 0) return;
    let lost = 0;
    let first = 0;
    let lastLost = 0;
    for (const [s, at] of this.#missing) {
      if (now - at < MISSING_GRACE_MS) continue;
      if (lost === 0) first = s;
      lastLost = s;
      lost++;
      this.#missing.delete(s);
    }
    if (lost > 0) this.#lostMessages(lost, first === lastLost ? `${first}` : `${first}…${lastLost}`, now);
  }

  #lostMessages(missing: number, which: string, now: number): void {
    this.#o.connectivity.count(KIND, this.url, 'lostMessages', missing);
    const reason = `${missing} notification message(s) lost (sequence ${which} not delivered, not republished)`;
    this.#o.connectivity.recordGap(KIND, this.url, { from: this.#lastHeardAt ?? now, to: now, reason });
    this.#o.logger.warn(
      { endpoint: this.url, gapFrom: ISO(this.#lastHeardAt ?? now), gapTo: ISO(now), reason },
      'OPC UA data gap: notifications lost',
    );
  }

  #logUnsupported(item: Item, dv: DataValue): void {
    this.#logOnce(
      'unsupported',
      { nodeId: item.spec.nodeId, value: describeUnsupported(dv.value) },
      `OPC UA value of ${item.spec.nodeId} is ${describeUnsupported(dv.value)}, which Loom does not store: recorded as bad`,
    );
  }

  #logOverflow(item: Item): void {
    this.#logOnce(
      'overflow',
      { nodeId: item.spec.nodeId, queueSize: item.spec.queueSize, samplingMs: item.spec.samplingMs },
      `OPC UA server discarded values of ${item.spec.nodeId}: its queue (${item.spec.queueSize}) overflowed; raise source.opcua.queueSize or samplingMs`,
    );
  }

  // ---------------------------------------------------------------- monitored items

  #reconcileSoon(retryFailed = false): void {
    if (this.#phase !== 'online') return;
    this.#dirty = true;
    if (this.#reconciling !== null) return;
    this.#reconciling = (async () => {
      while (this.#dirty && this.#phase === 'online') {
        this.#dirty = false;
        await this.#reconcile(retryFailed).catch((e: unknown) =>
          this.#logOnce(
            'items',
            { err: (e as Error).message },
            'OPC UA monitored items could not be updated',
          ),
        );
      }
    })().finally(() => {
      this.#reconciling = null;
    });
  }

  /** Makes the subscription's items match the signals: removes, (re)creates in batches. */
  async #reconcile(retryFailed: boolean): Promise<void> {
    const session = this.#session;
    const sub = this.#subscription;
    if (session === null || sub === null) return;
    const remove: Item[] = [];
    for (const [tag, item] of this.#items) {
      const spec = this.#specs.get(tag);
      if (spec === undefined || spec.key !== item.spec.key || (retryFailed && item.failed !== null)) {
        remove.push(item);
        this.#items.delete(tag);
      } else if (item.monitored !== null && item.handle !== 0 && !item.monitored.statusCode.isGood()) {
        // A recreation after a gap failed for this item (the node is gone): retried below.
        remove.push(item);
        this.#items.delete(tag);
      }
    }
    await this.#deleteItems(session, sub, remove);
    const wanted = this.#publishingInterval();
    if (wanted !== this.#publishingMs) {
      this.#publishingMs = wanted;
      await sub.modify(this.#subscriptionParameters(wanted)).catch(() => undefined);
    }
    const create: ItemSpec[] = [];
    for (const [tag, spec] of this.#specs) if (!this.#items.has(tag)) create.push(spec);
    if (create.length > 0) await this.#createItems(sub, create, false);
  }

  async #deleteItems(session: ClientSession, sub: ClientSubscription, items: readonly Item[]): Promise<void> {
    const ids: number[] = [];
    const table = sub.monitoredItems as Record<number, ClientMonitoredItemBase | undefined>;
    for (const item of items) {
      const m = item.monitored;
      if (m === null) continue;
      this.#byHandle.delete(item.handle);
      // Removed from node-opcua's table too, or a reconnection would recreate it on the server.
      delete table[item.handle];
      m.removeAllListeners();
      if (m.monitoredItemId !== undefined && m.statusCode.isGood()) ids.push(Number(m.monitoredItemId));
      item.monitored = null;
    }
    const batch = this.#batchSize();
    for (let i = 0; i < ids.length; i += batch) {
      await (session as ClientSession & ClientSessionRawSubscriptionService)
        .deleteMonitoredItems({
          subscriptionId: sub.subscriptionId,
          monitoredItemIds: ids.slice(i, i + batch),
        })
        .catch(() => undefined);
    }
  }

  #batchSize(): number {
    return this.#maxItemsPerCall > 0
      ? Math.min(this.#o.createBatchSize, this.#maxItemsPerCall)
      : this.#o.createBatchSize;
  }

  async #createItems(
    sub: ClientSubscription,
    specs: readonly ItemSpec[],
    withoutFilter: boolean,
  ): Promise<void> {
    const groups = new Map<string, { params: MonitoringParametersOptions; specs: ItemSpec[] }>();
    const failedNow: Item[] = [];
    for (const spec of specs) {
      const item: Item = {
        spec,
        monitored: null,
        handle: 0,
        failed: null,
        noFilter: withoutFilter,
        initial: true,
      };
      this.#items.set(spec.tag, item);
      const key = `${spec.samplingMs}|${spec.queueSize}|${withoutFilter ? 0 : spec.deadband}`;
      let g = groups.get(key);
      if (g === undefined) {
        g = {
          params: {
            samplingInterval: spec.samplingMs,
            queueSize: spec.queueSize,
            discardOldest: true,
            filter:
              spec.deadband > 0 && !withoutFilter
                ? new DataChangeFilter({
                    trigger: DataChangeTrigger.StatusValue,
                    deadbandType: DeadbandType.Absolute,
                    deadbandValue: spec.deadband,
                  })
                : null,
          },
          specs: [],
        };
        groups.set(key, g);
      }
      g.specs.push(spec);
    }
    const retryWithoutFilter: ItemSpec[] = [];
    const batch = this.#batchSize();
    for (const { params, specs: list } of groups.values()) {
      for (let i = 0; i < list.length; i += batch) {
        const chunk: { item: Item; nodeId: NodeId }[] = [];
        for (const spec of list.slice(i, i + batch)) {
          const item = this.#items.get(spec.tag)!;
          const resolved = resolveNamespace(spec.nodeId, this.#namespaces);
          let nodeId: NodeId | null;
          try {
            nodeId = resolved === null ? null : coerceNodeId(resolved);
          } catch {
            nodeId = null;
          }
          if (nodeId === null) {
            item.failed = resolved === null ? 'BadNamespaceUnknown' : 'BadNodeIdInvalid';
            failedNow.push(item);
          } else chunk.push({ item, nodeId });
        }
        if (chunk.length === 0) continue;
        const toMonitor: ReadValueIdOptions[] = chunk.map((c) => ({
          nodeId: c.nodeId,
          attributeId: AttributeIds.Value,
        }));
        const group = ClientMonitoredItemGroup.create(sub, toMonitor, params, TimestampsToReturn.Both);
        group.monitoredItems.forEach((m, k) => this.#byMonitored.set(m, chunk[k]!.item));
        const err = await new Promise<string | null>((resolve) => {
          group.once('initialized', () => resolve(null));
          group.once('err', (message: string) => resolve(message));
          group.once('terminated', (e?: Error) => resolve(e?.message ?? 'terminated'));
        });
        if (err !== null) {
          // The whole request failed (connection lost mid-way): drop node-opcua's half-made items
          // and leave the specs to the next reconcile.
          const table = sub.monitoredItems as Record<number, ClientMonitoredItemBase | undefined>;
          for (const m of group.monitoredItems) delete table[m.monitoringParameters.clientHandle];
          for (const c of chunk) this.#items.delete(c.item.spec.tag);
          this.#logOnce('items', { err }, `OPC UA monitored items could not be created: ${err}`);
          continue;
        }
        group.monitoredItems.forEach((m, k) => {
          const item = chunk[k]!.item;
          const status = m.statusCode;
          // The group re-emits each item's change event for listeners Loom does not have: values
          // are read from the Publish response as a whole (#onNotifications).
          m.removeAllListeners('changed');
          if (status.isGood()) {
            item.monitored = m;
            item.handle = m.monitoringParameters.clientHandle;
            this.#byHandle.set(item.handle, item);
            return;
          }
          if (params.filter !== null && /Filter|Deadband/.test(status.name)) {
            this.#items.delete(item.spec.tag);
            retryWithoutFilter.push(item.spec);
            return;
          }
          item.failed = status.name;
          failedNow.push(item);
        });
      }
    }
    if (failedNow.length > 0) this.#reportFailedItems(failedNow);
    if (retryWithoutFilter.length > 0) {
      this.#o.connectivity.count(KIND, this.url, 'filterRefused', retryWithoutFilter.length);
      this.#logOnce(
        'filter',
        { nodeIds: retryWithoutFilter.slice(0, 5).map((s) => s.nodeId), count: retryWithoutFilter.length },
        'OPC UA server refused the deadband filter; items created without it (Loom applies the deadband)',
      );
      await this.#createItems(sub, retryWithoutFilter, true);
    }
  }

  #reportFailedItems(items: readonly Item[]): void {
    const now = this.#o.clock.now().getTime();
    this.#o.connectivity.count(KIND, this.url, 'itemErrors', items.length);
    this.#o.sink.accept(
      items.map((item) => ({
        tag: item.spec.tag,
        value: null,
        quality: 'bad' as const,
        sourceTs: now,
        serverTs: now,
        historical: false,
      })),
    );
    const byStatus = new Map<string, string[]>();
    for (const item of items) {
      const list = byStatus.get(item.failed!) ?? [];
      list.push(item.spec.nodeId);
      byStatus.set(item.failed!, list);
    }
    for (const [status, nodeIds] of byStatus) {
      const hint =
        status === 'BadNamespaceUnknown'
          ? 'the server has no such namespace URI'
          : status === 'BadNodeIdUnknown'
            ? 'no such node on the server: check source.opcua.nodeId (GET /api/opcua/browse helps)'
            : 'the server refused to monitor it';
      this.#logOnce(
        `item:${status}`,
        { status, nodeIds: nodeIds.slice(0, 10), count: nodeIds.length },
        `OPC UA: ${nodeIds.length} signal(s) cannot be monitored (${status}): ${hint}`,
      );
    }
  }

  // ---------------------------------------------------------------- requests

  #disconnected(what: string): { ok: false; code: 'LOOM_OPCUA_DISCONNECTED'; message: string } {
    return {
      ok: false,
      code: 'LOOM_OPCUA_DISCONNECTED',
      message: `${this.url} is not connected; the ${what} was not sent (nothing is queued)`,
    };
  }

  /** A failure of a request that went out: timeout, lost connection, or a status the server gave. */
  #requestFailed(
    e: unknown,
    what: string,
  ):
    | { ok: false; code: 'LOOM_OPCUA_TIMEOUT'; message: string }
    | { ok: false; code: 'LOOM_OPCUA_DISCONNECTED'; message: string }
    | { ok: false; code: 'LOOM_OPCUA_BAD_STATUS'; message: string; status: string } {
    if (e instanceof RequestTimeout) {
      return {
        ok: false,
        code: 'LOOM_OPCUA_TIMEOUT',
        message: `${this.url} did not answer the ${what} within ${this.#o.requestTimeoutMs} ms${what === 'write' ? '; it may still have been applied: read the value before retrying' : ''}`,
      };
    }
    if (!this.connected) {
      return {
        ok: false,
        code: 'LOOM_OPCUA_DISCONNECTED',
        message: `${this.url} disconnected during the ${what}`,
      };
    }
    const message = e instanceof Error ? e.message : String(e);
    const status = /(Bad[A-Za-z]+)/.exec(message)?.[1] ?? 'Bad';
    return {
      ok: false,
      code: 'LOOM_OPCUA_BAD_STATUS' as const,
      message: `the ${what} failed: ${message}`,
      status,
    };
  }

  #nodeIdOf(nodeId: string): NodeId | null {
    const resolved = resolveNamespace(nodeId, this.#namespaces);
    if (resolved === null) return null;
    try {
      return coerceNodeId(resolved);
    } catch {
      return null;
    }
  }

  /** The node's built-in type and value rank, read once per session (a restart may change them). */
  async #dataTypeOf(session: ClientSession, nodeId: NodeId): Promise<{ type: number; valueRank: number }> {
    const key = nodeId.toString();
    const cached = this.#dataTypes.get(key);
    if (cached) return cached;
    const [dt, rank, val] = await session.read([
      { nodeId, attributeId: AttributeIds.DataType },
      { nodeId, attributeId: AttributeIds.ValueRank },
      { nodeId, attributeId: AttributeIds.Value },
    ]);
    if (!dt || !dt.statusCode.isGood()) throw new Error(dt?.statusCode.name ?? 'BadNodeIdUnknown');
    const typeId = dt.value.value as NodeId;
    const standard = typeId.namespace === 0 && typeof typeId.value === 'number' ? typeId.value : -1;
    let type: number;
    // BaseDataType (24) and the abstract Number, Integer, UInteger (26–28) say nothing: the
    // current value shows the concrete type.
    if (standard === 24 || (standard >= 26 && standard <= 28)) type = Number(val?.value.dataType ?? 0);
    else if (standard >= 0 && standard <= BuiltInType.DiagnosticInfo) type = standard;
    else type = Number(await findBasicDataType(session, typeId));
    const valueRank: unknown = rank?.value.value;
    const found = { type, valueRank: typeof valueRank === 'number' ? valueRank : -1 };
    this.#dataTypes.set(key, found);
    return found;
  }

  /** A NodeId whose `nsu=` namespace URI this server does not have. */
  #unknownNamespace(nodeIdText: string) {
    return {
      ok: false,
      code: 'LOOM_OPCUA_BAD_STATUS',
      message: `${nodeIdText}: no such namespace on ${this.url}`,
      status: 'BadNodeIdUnknown',
    } as const;
  }

  async write(nodeIdText: string, value: number | boolean | string): Promise<OpcUaWriteResult> {
    const session = this.#session;
    if (!this.connected || session === null) return this.#disconnected('write');
    const nodeId = this.#nodeIdOf(nodeIdText);
    if (nodeId === null) return this.#unknownNamespace(nodeIdText);
    const { connectivity } = this.#o;
    const fail = <R extends { ok: false }>(r: R): R => {
      connectivity.count(KIND, this.url, 'writeErrors');
      return r;
    };
    let type: { type: number; valueRank: number };
    try {
      type = await withTimeout(this.#dataTypeOf(session, nodeId), this.#o.requestTimeoutMs);
    } catch (e) {
      return fail(this.#requestFailed(e, 'data type read'));
    }
    if (type.valueRank > 0) {
      return fail({
        ok: false,
        code: 'LOOM_OPCUA_TYPE_MISMATCH' as const,
        message: `${nodeIdText} holds an array; Loom writes single values`,
      });
    }
    const enc = encodeForDataType(value, type.type);
    if (!enc.ok)
      return fail({
        ok: false,
        code: 'LOOM_OPCUA_TYPE_MISMATCH' as const,
        message: `${nodeIdText}: ${enc.message}`,
      });
    connectivity.count(KIND, this.url, 'writes');
    try {
      const status = await withTimeout(
        session.write({
          nodeId,
          attributeId: AttributeIds.Value,
          value: { value: new Variant({ dataType: enc.dataType, value: enc.value }) },
        }),
        this.#o.requestTimeoutMs,
      );
      if (!status.isGood()) {
        return fail({
          ok: false,
          code: 'LOOM_OPCUA_BAD_STATUS' as const,
          message: `${this.url} refused the write of ${JSON.stringify(value)} to ${nodeIdText}: ${status.name}`,
          status: status.name,
        });
      }
      const dv = await withTimeout(
        session.read({ nodeId, attributeId: AttributeIds.Value }, 0),
        this.#o.requestTimeoutMs,
      );
      if (!dv.statusCode.isGood()) {
        return fail({
          ok: false,
          code: 'LOOM_OPCUA_BAD_STATUS' as const,
          message: `written, but the read-back of ${nodeIdText} answered ${dv.statusCode.name}`,
          status: dv.statusCode.name,
        });
      }
      const back = sampleValueOf(dv.value);
      return { ok: true, readBack: back === UNSUPPORTED ? null : back };
    } catch (e) {
      return fail(this.#requestFailed(e, 'write'));
    }
  }

  async read(nodeIdText: string): Promise<OpcUaReadResult> {
    const session = this.#session;
    if (!this.connected || session === null) return this.#disconnected('read');
    const nodeId = this.#nodeIdOf(nodeIdText);
    if (nodeId === null) return this.#unknownNamespace(nodeIdText);
    try {
      const dv = await withTimeout(
        session.read({ nodeId, attributeId: AttributeIds.Value }, 0),
        this.#o.requestTimeoutMs,
      );
      const now = this.#o.clock.now().getTime();
      const v = sampleValueOf(dv.value);
      const quality = v === UNSUPPORTED ? 'bad' : qualityOf(dv.statusCode.value);
      return {
        ok: true,
        value: v === UNSUPPORTED ? null : v,
        quality,
        sourceTs: dv.sourceTimestamp?.getTime() ?? dv.serverTimestamp?.getTime() ?? now,
      };
    } catch (e) {
      return this.#requestFailed(e, 'read');
    }
  }

  async call(
    objectIdText: string,
    methodIdText: string,
    inputs: readonly (number | boolean | string)[],
  ): Promise<OpcUaCallResult> {
    const session = this.#session;
    if (!this.connected || session === null) return this.#disconnected('call');
    const objectId = this.#nodeIdOf(objectIdText);
    const methodId = this.#nodeIdOf(methodIdText);
    if (objectId === null || methodId === null) {
      return {
        ok: false,
        code: 'LOOM_OPCUA_BAD_STATUS' as const,
        message: `${objectId === null ? objectIdText : methodIdText}: not a NodeId of ${this.url}`,
        status: 'BadNodeIdInvalid',
      };
    }
    try {
      const def = await withTimeout(session.getArgumentDefinition(methodId), this.#o.requestTimeoutMs);
      const args = def.inputArguments ?? [];
      if (args.length !== inputs.length) {
        const sig = args.map((a) => a.name ?? '?').join(', ');
        return {
          ok: false,
          code: 'LOOM_OPCUA_TYPE_MISMATCH' as const,
          message: `${methodIdText} takes ${args.length} argument(s) (${sig}), not ${inputs.length}`,
        };
      }
      const variants: Variant[] = [];
      for (let i = 0; i < args.length; i++) {
        const a = args[i]!;
        if (a.valueRank > 0) {
          return {
            ok: false,
            code: 'LOOM_OPCUA_TYPE_MISMATCH' as const,
            message: `argument ${a.name ?? i} is an array; Loom passes single values`,
          };
        }
        const type = await withTimeout(findBasicDataType(session, a.dataType), this.#o.requestTimeoutMs);
        const enc = encodeForDataType(inputs[i]!, type);
        if (!enc.ok)
          return {
            ok: false,
            code: 'LOOM_OPCUA_TYPE_MISMATCH' as const,
            message: `argument ${a.name ?? i}: ${enc.message}`,
          };
        variants.push(new Variant({ dataType: enc.dataType, value: enc.value }));
      }
      const res = await withTimeout(
        session.call({ objectId, methodId, inputArguments: variants }),
        this.#o.requestTimeoutMs,
      );
      if (res.statusCode.isNotGood() && !res.statusCode.name.startsWith('Uncertain')) {
        const argStatus = (res.inputArgumentResults ?? [])
          .map((s, i) => (s.isGood() ? null : `${args[i]?.name ?? i}: ${s.name}`))
          .filter((s) => s !== null);
        return {
          ok: false,
          code: 'LOOM_OPCUA_BAD_STATUS' as const,
          message: `${methodIdText} answered ${res.statusCode.name}${argStatus.length > 0 ? ` (${argStatus.join(', ')})` : ''}`,
          status: res.statusCode.name,
        };
      }
      const outputs: SampleValue[] = (res.outputArguments ?? []).map((v) => {
        const x = sampleValueOf(v);
        return x === UNSUPPORTED ? null : x;
      });
      return { ok: true, status: res.statusCode.name, outputs };
    } catch (e) {
      return this.#requestFailed(e, 'call');
    }
  }

  async browse(nodeIdText: string, limit: number): Promise<OpcUaBrowseResult> {
    const session = this.#session;
    if (!this.connected || session === null) return this.#disconnected('browse');
    const nodeId = this.#nodeIdOf(nodeIdText);
    if (nodeId === null) {
      return {
        ok: false,
        code: 'LOOM_OPCUA_NODE_NOT_FOUND',
        message: `${nodeIdText}: no such namespace on ${this.url}`,
      };
    }
    try {
      const first = await withTimeout(
        session.browse({
          nodeId,
          browseDirection: BrowseDirection.Forward,
          referenceTypeId: 'HierarchicalReferences',
          includeSubtypes: true,
          nodeClassMask: 0,
          resultMask: 0x3f,
        }),
        this.#o.requestTimeoutMs,
      );
      if (first.statusCode.isNotGood()) {
        const name = first.statusCode.name;
        return /NodeIdUnknown|NodeIdInvalid/.test(name)
          ? {
              ok: false,
              code: 'LOOM_OPCUA_NODE_NOT_FOUND',
              message: `${this.url} has no node ${nodeIdText} (${name})`,
            }
          : {
              ok: false,
              code: 'LOOM_OPCUA_BAD_STATUS' as const,
              message: `browsing ${nodeIdText} answered ${name}`,
              status: name,
            };
      }
      const refs: ReferenceDescription[] = [...(first.references ?? [])];
      let cp = first.continuationPoint;
      while (cp && cp.length > 0 && refs.length < limit) {
        const next = await withTimeout(session.browseNext(cp, false), this.#o.requestTimeoutMs);
        refs.push(...(next.references ?? []));
        cp = next.continuationPoint;
      }
      const truncated = refs.length > limit || (cp !== null && cp !== undefined && cp.length > 0);
      if (cp && cp.length > 0) await session.browseNext(cp, true).catch(() => undefined);
      const kept = refs.slice(0, limit);
      const children: OpcUaBrowseChild[] = kept.map((r) => ({
        nodeId: r.nodeId.toString(),
        browseName: r.browseName.toString(),
        displayName: r.displayName.text ?? r.browseName.name ?? '',
        nodeClass: NodeClass[r.nodeClass] ?? String(r.nodeClass),
      }));
      await this.#describeVariables(session, kept, children);
      return { ok: true, nodeId: nodeIdText, children, truncated };
    } catch (e) {
      return this.#requestFailed(e, 'browse');
    }
  }

  /** Data type names and writability of the variables among `refs`, in two batched reads. */
  async #describeVariables(
    session: ClientSession,
    refs: readonly ReferenceDescription[],
    out: OpcUaBrowseChild[],
  ): Promise<void> {
    const vars = refs
      .map((r, i) => ({ r, i }))
      .filter(({ r }) => Number(r.nodeClass) === Number(NodeClass.Variable));
    if (vars.length === 0) return;
    const attrs = await withTimeout(
      session.read(
        vars.flatMap(({ r }) => [
          { nodeId: r.nodeId, attributeId: AttributeIds.DataType },
          { nodeId: r.nodeId, attributeId: AttributeIds.UserAccessLevel },
        ]),
      ),
      this.#o.requestTimeoutMs,
    );
    const customTypes = new Map<string, NodeId>();
    const typeIds: (NodeId | null)[] = vars.map((_, k) => {
      const dt = attrs[k * 2];
      return dt?.statusCode.isGood() ? (dt.value.value as NodeId) : null;
    });
    for (const t of typeIds) {
      if (
        t !== null &&
        !(t.namespace === 0 && typeof t.value === 'number' && t.value <= BuiltInType.DiagnosticInfo)
      ) {
        customTypes.set(t.toString(), t);
      }
    }
    const names = new Map<string, string>();
    if (customTypes.size > 0) {
      const ids = [...customTypes.values()];
      const read = await withTimeout(
        session.read(ids.map((nodeId) => ({ nodeId, attributeId: AttributeIds.BrowseName }))),
        this.#o.requestTimeoutMs,
      );
      ids.forEach((id, k) => {
        const bn = read[k]?.value.value as { name?: string } | undefined;
        names.set(id.toString(), bn?.name ?? id.toString());
      });
    }
    vars.forEach(({ i }, k) => {
      const t = typeIds[k];
      const access = attrs[k * 2 + 1];
      const child = out[i]!;
      if (t !== null && t !== undefined) {
        child.dataType =
          t.namespace === 0 && typeof t.value === 'number' && t.value <= BuiltInType.DiagnosticInfo
            ? builtInTypeName(t.value)
            : (names.get(t.toString()) ?? t.toString());
      }
      if (access?.statusCode.isGood() && typeof access.value.value === 'number') {
        // Part 3 §5.6.2: bit 1 of (User)AccessLevel is CurrentWrite.
        child.writable = (access.value.value & 0x02) !== 0;
      }
    });
  }

  /** One log line per fault kind until it clears, never one per retry. */
  #logOnce(kind: string, fields: Record<string, unknown>, msg: string): void {
    if (this.#logged.has(kind)) return;
    this.#logged.add(kind);
    this.#o.logger.warn({ endpoint: this.url, fault: kind.split(':')[0], ...fields }, msg);
  }
}

/**
 * Loom's OPC UA client connector: subscribes to every variable that signals name, one session and
 * one subscription per endpoint (src/adapters/opcua/opcua-client-endpoint.ts), hands the values to
 * the telemetry sink and reports each endpoint's health; writes with read-back, reads, method calls
 * and browsing for the command gateway and the mapping UI.
 *
 * node-opcua is loaded on first need: a Loom without OPC UA signals never imports it and never
 * creates a certificate store.
 */
import type { Logger } from 'pino';
import type { MappedSignal } from '../../app/telemetry/sample-store.ts';
import type { ConnectivityReporter, TelemetrySink } from '../../app/telemetry/telemetry-ports.ts';
import type { Clock } from '../../domain/shared/clock.ts';
import type { SampleQuality, SampleValue } from '../../domain/signal/sample.ts';
import type { EndpointOptions, OpcUaEndpoint, OpcUaPki } from './opcua-client-endpoint.ts';
import type { OpcUaEndpointSecurity, OpcUaEndpointSettings } from './opcua-endpoints-file.ts';

export type OpcUaErrorCode =
  | 'LOOM_OPCUA_UNKNOWN_TAG'
  | 'LOOM_OPCUA_UNKNOWN_ENDPOINT'
  | 'LOOM_OPCUA_DISCONNECTED'
  | 'LOOM_OPCUA_TYPE_MISMATCH'
  | 'LOOM_OPCUA_BAD_STATUS'
  | 'LOOM_OPCUA_TIMEOUT'
  | 'LOOM_OPCUA_NODE_NOT_FOUND';

/** Why a request did nothing, or did not finish. `status`: the server's StatusCode name (`BadOutOfRange`). */
export interface OpcUaFailure<C extends OpcUaErrorCode> {
  readonly ok: false;
  readonly code: C;
  readonly message: string;
  readonly status?: string;
}

/** A write's outcome: the value read back after writing, or why nothing (or not all) happened. */
export type OpcUaWriteResult =
  | { readonly ok: true; readonly readBack: SampleValue }
  | OpcUaFailure<
      | 'LOOM_OPCUA_UNKNOWN_TAG'
      | 'LOOM_OPCUA_DISCONNECTED'
      | 'LOOM_OPCUA_TYPE_MISMATCH'
      | 'LOOM_OPCUA_BAD_STATUS'
      | 'LOOM_OPCUA_TIMEOUT'
    >;

/** A read's outcome. A bad field value is data (`quality`), not a failure. */
export type OpcUaReadResult =
  | {
      readonly ok: true;
      readonly value: SampleValue;
      readonly quality: SampleQuality;
      /** SourceTimestamp, else ServerTimestamp, else Loom's clock: UTC epoch ms. */
      readonly sourceTs: number;
    }
  | OpcUaFailure<
      'LOOM_OPCUA_UNKNOWN_TAG' | 'LOOM_OPCUA_DISCONNECTED' | 'LOOM_OPCUA_BAD_STATUS' | 'LOOM_OPCUA_TIMEOUT'
    >;

/** A method call's outcome: its status (`Good`, or an Uncertain one) and output arguments. */
export type OpcUaCallResult =
  | { readonly ok: true; readonly status: string; readonly outputs: SampleValue[] }
  | OpcUaFailure<
      | 'LOOM_OPCUA_UNKNOWN_ENDPOINT'
      | 'LOOM_OPCUA_DISCONNECTED'
      | 'LOOM_OPCUA_TYPE_MISMATCH'
      | 'LOOM_OPCUA_BAD_STATUS'
      | 'LOOM_OPCUA_TIMEOUT'
    >;

export interface OpcUaBrowseChild {
  readonly nodeId: string;
  /** `<namespace index>:<name>`, as in a browse path. */
  readonly browseName: string;
  readonly displayName: string;
  /** `Object`, `Variable`, `Method`, … */
  readonly nodeClass: string;
  /** Variables: the DataType's name (`Double`, or a custom type's browse name). */
  dataType?: string;
  /** Variables: the current user may write the value (UserAccessLevel CurrentWrite). */
  writable?: boolean;
}

export type OpcUaBrowseResult =
  | {
      readonly ok: true;
      readonly nodeId: string;
      readonly children: OpcUaBrowseChild[];
      /** More children exist than `limit`. */
      readonly truncated: boolean;
    }
  | OpcUaFailure<
      | 'LOOM_OPCUA_UNKNOWN_ENDPOINT'
      | 'LOOM_OPCUA_DISCONNECTED'
      | 'LOOM_OPCUA_NODE_NOT_FOUND'
      | 'LOOM_OPCUA_BAD_STATUS'
      | 'LOOM_OPCUA_TIMEOUT'
    >;

export interface OpcUaConnectorOptions {
  readonly sink: TelemetrySink;
  readonly connectivity: ConnectivityReporter;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Security of endpoints `endpoints` does not list. */
  readonly defaults: OpcUaEndpointSecurity;
  /** Per-endpoint settings (the endpoints file); these endpoints are connected even without signals. */
  readonly endpoints?: readonly OpcUaEndpointSettings[];
  /** Root of Loom's OPC UA certificate store (`LOOM_OPCUA_PKI_DIR`). */
  readonly pkiDir: string;
  /** Default 16 MiB. */
  readonly maxMessageBytes?: number;
  /** Default: enough chunks of the smallest legal size (8 KiB, Part 6 §7.1.2.3) for `maxMessageBytes`. */
  readonly maxChunkCount?: number;
  /** Default 60 000 ms. */
  readonly sessionTimeoutMs?: number;
  /** Longest wait for a read, write, call or browse, ms. Default 10 000. */
  readonly requestTimeoutMs?: number;
  /** First reconnect delay, ms; doubles up to `maxReconnectMs`. Default 1000. */
  readonly reconnectMs?: number;
  /** Default 30 000. */
  readonly maxReconnectMs?: number;
  /** Bounds of a subscription's publishing interval, ms. Default 50 and 5000. */
  readonly minPublishingMs?: number;
  readonly maxPublishingMs?: number;
  /** Keep-alive asked of an idle subscription, ms; 2.5 × this without a word marks the endpoint stale. Default 2000. */
  readonly keepAliveMs?: number;
  /** Monitored items per CreateMonitoredItems request. Default 1000. */
  readonly createBatchSize?: number;
}

type Runtime = typeof import('./opcua-client-endpoint.ts');

const KIND = 'opcua-endpoint' as const;

/**
 * Subscribes to every OPC UA-sourced signal. `setSignals` may be called at any time (tag map
 * reloaded): endpoints that appear connect, endpoints no signal (and no endpoints-file entry)
 * names any more disconnect, the others add and remove monitored items in their session.
 */
export class OpcUaConnector {
  readonly #o: OpcUaConnectorOptions;
  readonly #settings: ReadonlyMap<string, OpcUaEndpointSettings>;
  readonly #endpoints = new Map<string, OpcUaEndpoint>();
  /** Source tag (and signal id) → endpoint URL and NodeId, for writes and reads by tag. */
  #byTag = new Map<string, { readonly endpoint: string; readonly nodeId: string }>();
  #known = new Set<string>();
  #signals: readonly MappedSignal[] = [];
  #runtime: Promise<{ rt: Runtime; pki: OpcUaPki }> | null = null;
  #chain: Promise<void> = Promise.resolve();
  #stopped = false;

  constructor(options: OpcUaConnectorOptions) {
    this.#o = options;
    this.#settings = new Map((options.endpoints ?? []).map((e) => [e.url, e]));
    this.#known = new Set(this.#settings.keys());
    if (this.#settings.size > 0) this.#apply();
  }

  setSignals(signals: readonly MappedSignal[]): void {
    if (this.#stopped) return;
    this.#signals = signals;
    const byTag = new Map<string, { endpoint: string; nodeId: string }>();
    const known = new Set(this.#settings.keys());
    for (const s of signals) {
      if (!('opcua' in s.source)) continue;
      const target = { endpoint: s.source.opcua.endpoint, nodeId: s.source.opcua.nodeId };
      byTag.set(s.tag, target);
      byTag.set(s.id, target);
      known.add(target.endpoint);
    }
    this.#byTag = byTag;
    this.#known = known;
    this.#apply();
  }

  /** The endpoints Loom connects to: named by a signal or listed in the endpoints file. */
  knowsEndpoint(url: string): boolean {
    return this.#known.has(url);
  }

  /** Loom's certificate store: its own certificate file and the trust list (loads node-opcua). */
  async pki(): Promise<OpcUaPki> {
    return (await this.#load()).pki;
  }

  /**
   * Puts a server certificate (PEM or DER file, or its bytes) on Loom's trust list, as an operator
   * moving it to `trusted/certs` would; endpoints waiting on it connect at their next attempt.
   * Returns the certificate's SHA-1 thumbprint.
   */
  async trustCertificate(certificate: Buffer | string): Promise<string> {
    const { rt, pki } = await this.#load();
    return rt.trustServerCertificate(pki, certificate);
  }

  /**
   * Writes a value to a signal's variable, converted to the node's DataType (read once, then
   * cached), and reads it back. Sent only while the session is up: never queued.
   * `target` is a signal, its id, or its source tag key.
   */
  async write(target: string | MappedSignal, value: number | boolean | string): Promise<OpcUaWriteResult> {
    const found = this.#target(target);
    if (found === null) return this.#unknownTag(target);
    const ep = this.#endpoints.get(found.endpoint);
    if (ep === undefined) return this.#notConnected(found.endpoint, 'write');
    return ep.write(found.nodeId, value);
  }

  /** Reads a signal's variable now (maxAge 0), for interlocks. */
  async read(target: string | MappedSignal): Promise<OpcUaReadResult> {
    const found = this.#target(target);
    if (found === null) return this.#unknownTag(target);
    const ep = this.#endpoints.get(found.endpoint);
    if (ep === undefined) return this.#notConnected(found.endpoint, 'read');
    return ep.read(found.nodeId);
  }

  /** Calls a method (Part 4 §5.11.2); inputs are converted to the method's argument types. */
  async call(
    endpoint: string,
    objectId: string,
    methodId: string,
    inputArguments: readonly (number | boolean | string)[],
  ): Promise<OpcUaCallResult> {
    if (!this.#known.has(endpoint)) return this.#unknownEndpoint(endpoint);
    const ep = this.#endpoints.get(endpoint);
    if (ep === undefined) return this.#notConnected(endpoint, 'call');
    return ep.call(objectId, methodId, inputArguments);
  }

  /** The children of a node (hierarchical references), with data type and writability of variables. */
  async browse(endpoint: string, nodeId = 'i=85', limit = 1000): Promise<OpcUaBrowseResult> {
    if (!this.#known.has(endpoint)) return this.#unknownEndpoint(endpoint);
    const ep = this.#endpoints.get(endpoint);
    if (ep === undefined) return this.#notConnected(endpoint, 'browse');
    return ep.browse(nodeId, limit);
  }

  /** Closes every session (deleting its subscriptions) and connection; resolves when all are gone. */
  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#chain;
    const all = [...this.#endpoints.values()];
    this.#endpoints.clear();
    await Promise.all(all.map((e) => e.stop()));
    if (this.#runtime !== null) {
      const { pki } = await this.#runtime.catch(() => ({ pki: null }));
      await pki?.manager.dispose().catch(() => undefined);
    }
  }

  #target(target: string | MappedSignal): { endpoint: string; nodeId: string } | null {
    if (typeof target !== 'string') {
      return 'opcua' in target.source
        ? { endpoint: target.source.opcua.endpoint, nodeId: target.source.opcua.nodeId }
        : null;
    }
    return this.#byTag.get(target) ?? null;
  }

  #unknownTag(target: string | MappedSignal): OpcUaFailure<'LOOM_OPCUA_UNKNOWN_TAG'> {
    const tag = typeof target === 'string' ? target : target.tag;
    return {
      ok: false,
      code: 'LOOM_OPCUA_UNKNOWN_TAG',
      message: `no signal reads an OPC UA variable with tag '${tag}'`,
    };
  }

  #unknownEndpoint(endpoint: string): OpcUaFailure<'LOOM_OPCUA_UNKNOWN_ENDPOINT'> {
    return {
      ok: false,
      code: 'LOOM_OPCUA_UNKNOWN_ENDPOINT',
      message: `Loom does not connect to ${endpoint}: no signal names it and the endpoints file does not list it`,
    };
  }

  #notConnected(endpoint: string, what: string): OpcUaFailure<'LOOM_OPCUA_DISCONNECTED'> {
    return {
      ok: false,
      code: 'LOOM_OPCUA_DISCONNECTED',
      message: `${endpoint} is not connected yet; the ${what} was not sent (nothing is queued)`,
    };
  }

  #load(): Promise<{ rt: Runtime; pki: OpcUaPki }> {
    this.#runtime ??= (async () => {
      const rt = await import('./opcua-client-endpoint.ts');
      const secrets = [
        this.#o.defaults.password ?? '',
        ...[...this.#settings.values()].map((s) => s.password ?? ''),
      ].filter((s) => s !== '');
      rt.routeNodeOpcuaLogs(this.#o.logger, () => secrets);
      const pki = await rt.openPki(this.#o.pkiDir);
      return { rt, pki };
    })();
    return this.#runtime;
  }

  /** Brings the endpoints in line with the latest signals, one change set at a time. */
  #apply(): void {
    this.#chain = this.#chain
      .then(async () => {
        if (this.#stopped) return;
        const signals = this.#signals;
        const byEndpoint = new Map<string, MappedSignal[]>();
        for (const url of this.#settings.keys()) byEndpoint.set(url, []);
        for (const s of signals) {
          if (!('opcua' in s.source)) continue;
          const list = byEndpoint.get(s.source.opcua.endpoint);
          if (list) list.push(s);
          else byEndpoint.set(s.source.opcua.endpoint, [s]);
        }
        for (const [url, ep] of this.#endpoints) {
          if (byEndpoint.has(url)) continue;
          this.#endpoints.delete(url);
          await ep.stop();
          this.#o.connectivity.setState(KIND, url, 'offline', 'no signal reads from it any more');
        }
        if (byEndpoint.size === 0) return;
        const { rt, pki } = await this.#load();
        if (this.#stopped) return;
        for (const [url, list] of byEndpoint) {
          let ep = this.#endpoints.get(url);
          if (ep === undefined) {
            ep = new rt.OpcUaEndpoint(
              url,
              this.#settings.get(url) ?? this.#o.defaults,
              this.#endpointOptions(pki),
            );
            this.#endpoints.set(url, ep);
            ep.setSignals(list);
            ep.start();
          } else ep.setSignals(list);
        }
      })
      .catch((e: unknown) =>
        this.#o.logger.error({ err: e }, 'OPC UA connector: applying the signals failed'),
      );
  }

  #endpointOptions(pki: OpcUaPki): EndpointOptions {
    const o = this.#o;
    const maxMessageBytes = o.maxMessageBytes ?? 16 * 1024 * 1024;
    return {
      sink: o.sink,
      connectivity: o.connectivity,
      clock: o.clock,
      logger: o.logger,
      pki,
      maxMessageBytes,
      maxChunkCount: o.maxChunkCount ?? Math.ceil(maxMessageBytes / 8192),
      sessionTimeoutMs: o.sessionTimeoutMs ?? 60_000,
      requestTimeoutMs: o.requestTimeoutMs ?? 10_000,
      reconnectMs: o.reconnectMs ?? 1000,
      maxReconnectMs: o.maxReconnectMs ?? 30_000,
      minPublishingMs: o.minPublishingMs ?? 50,
      maxPublishingMs: o.maxPublishingMs ?? 5000,
      keepAliveMs: o.keepAliveMs ?? 2000,
      createBatchSize: o.createBatchSize ?? 1000,
      applicationName: 'Loom',
    };
  }
}

import { Aedes, type AuthenticateError, type Client } from 'aedes';
import type { EventEmitter } from 'node:events';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { Duplex } from 'node:stream';
import type { Logger } from 'pino';

/**
 * Loom's embedded MQTT broker: aedes on a plain TCP listener, so `loom start` runs the whole loop
 * (Sparkplug edges → broker → Loom) without a separate broker to install.
 *
 * What aedes 1.2 is and is not (read from its source, `lib/handlers/connect.js` and
 * `lib/handlers/subscribe.js`, and its README "MQTT 5.0 (not support yet)"):
 * - MQTT 3.1 and 3.1.1 only. An MQTT 5 CONNECT is answered CONNACK 1 "unacceptable protocol
 *   version". Sparkplug B 3.0 works over 3.1.1 (Clean Session = true, RELIABILITY.md H1/E1).
 * - No shared subscriptions. aedes would take `$share/<group>/<filter>` as a literal filter that
 *   matches nothing, so a Loom instance configured for shared ingest would silently receive
 *   nothing. This broker refuses such a SUBSCRIBE instead (SUBACK 0x80, logged): scale-out with
 *   `$share/loom/spBv1.0/#` needs a broker that has them (Mosquitto ≥ 2, EMQX, HiveMQ).
 * - No packet size limit: its parser (mqtt-packet 9) buffers a packet of any declared length, up
 *   to MQTT's 256 MiB. The limit is enforced here, in front of the parser (see `FrameLimit`).
 * - Retained messages and Wills work (in-memory persistence), which Sparkplug STATE (QoS 1,
 *   retained, with a Will) and NDEATH (the edge's Will) need. They do not survive a restart.
 */
export interface AedesBrokerOptions {
  /** Interface to bind (`LOOM_MQTT_HOST`). Anything but loopback requires `authenticate`. */
  readonly host: string;
  /** TCP port (`LOOM_MQTT_PORT`); 0 picks a free one, reported in the result. */
  readonly port: number;
  /**
   * Largest MQTT packet a client may send, in bytes, headers included (`LOOM_MQTT_MAX_MESSAGE_BYTES`).
   * A larger one closes that client's connection: MQTT 3.1.1 has no way to refuse a single
   * packet (MQTT 5 would send DISCONNECT 0x95 "Packet too large"; Mosquitto's `max_packet_size`
   * disconnects too). The refusal is counted, and logged once per client.
   */
  readonly maxMessageBytes: number;
  /**
   * Checks the user name and password of every CONNECT; resolve `true` to accept. Required when
   * `host` is not loopback. When given, it applies on loopback too (no anonymous clients then).
   * A client without credentials is passed `''` and an empty buffer. A rejection counts as "no".
   */
  readonly authenticate?: (username: string, password: Buffer) => Promise<boolean>;
  readonly logger: Logger;
  /** Milliseconds a connection may stay silent before its CONNECT (slow-client guard). Default 10 000. */
  readonly connectTimeoutMs?: number;
}

export interface AedesBrokerStats {
  /** MQTT sessions that completed CONNECT and are open now. */
  readonly clientsConnected: number;
  /** TCP connections open now, CONNECT done or not. */
  readonly socketsOpen: number;
  /** Connections accepted since start. */
  readonly connectionsTotal: number;
  /** Connections closed because a packet exceeded `maxMessageBytes`. */
  readonly oversizeRefused: number;
  /** CONNECTs refused by `authenticate`. */
  readonly authRefused: number;
  /** SUBSCRIBEs to `$share/...` refused (not supported by aedes). */
  readonly sharedSubscriptionsRefused: number;
}

export interface EmbeddedMqttBroker {
  /** `mqtt://<host>:<port>` as clients should use it. */
  readonly url: string;
  /** The bound port (the real one when `port` was 0). */
  readonly port: number;
  /** Closes every client connection, then the listener and aedes; resolves when all are gone. */
  stop(): Promise<void>;
  stats(): AedesBrokerStats;
}

export type MqttBrokerStartErrorReason = 'port-in-use' | 'authentication-required' | 'listen-failed';

/** The embedded broker could not start; the message names the setting to change. */
export class MqttBrokerStartError extends Error {
  constructor(
    readonly reason: MqttBrokerStartErrorReason,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'MqttBrokerStartError';
  }
}

/** True for addresses only this machine can reach. `localhost` counts: it resolves to loopback. */
export function isLoopbackHost(host: string): boolean {
  const h = host
    .trim()
    .toLowerCase()
    .replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h) || /^::ffff:127\./.test(h);
}

const SHARED_PREFIX = '$share/';
/** Clients whose oversize refusal was already logged; bounded so a reconnect storm cannot grow it. */
const MAX_REMEMBERED_OVERSIZE = 10_000;

export async function startAedesBroker(opts: AedesBrokerOptions): Promise<EmbeddedMqttBroker> {
  const log = opts.logger;
  if (!isLoopbackHost(opts.host) && !opts.authenticate) {
    throw new MqttBrokerStartError(
      'authentication-required',
      `The embedded MQTT broker would listen on ${opts.host}, reachable from other machines, without ` +
        `authentication. Set LOOM_MQTT_HOST=127.0.0.1, or configure MQTT credentials so every client ` +
        `must log in.`,
    );
  }
  if (!Number.isInteger(opts.maxMessageBytes) || opts.maxMessageBytes < 64) {
    throw new RangeError(`maxMessageBytes must be an integer ≥ 64, got ${opts.maxMessageBytes}`);
  }

  let oversizeRefused = 0;
  let authRefused = 0;
  let sharedRefused = 0;
  let connectionsTotal = 0;
  const oversizeLogged = new Set<string>();
  const sockets = new Set<Socket>();

  const authenticate = opts.authenticate;
  const aedes = new Aedes({
    connectTimeout: opts.connectTimeoutMs ?? 10_000,
    ...(authenticate
      ? {
          authenticate: (
            client: Client,
            username: string | undefined,
            password: Buffer | undefined,
            done: (error: AuthenticateError | null, success: boolean | null) => void,
          ) => {
            authenticate(username ?? '', password ?? Buffer.alloc(0)).then(
              (ok) => {
                if (ok) return done(null, true);
                authRefused++;
                log.warn(
                  { clientId: client.id, username },
                  'MQTT CONNECT refused: bad user name or password',
                );
                done(authError(4, 'bad user name or password'), false);
              },
              (e: unknown) => {
                authRefused++;
                log.error({ err: e, clientId: client.id }, 'MQTT authentication failed with an error');
                done(authError(3, 'authentication unavailable'), false);
              },
            );
          },
        }
      : {}),
    authorizeSubscribe: (client, sub, done) => {
      if (sub.topic.startsWith(SHARED_PREFIX)) {
        sharedRefused++;
        log.warn(
          { clientId: client.id, topic: sub.topic },
          'shared subscriptions ($share/...) are not supported by the embedded broker (aedes); ' +
            'set LOOM_MQTT_URL to a broker that has them (Mosquitto, EMQX, HiveMQ)',
        );
        return done(null, null);
      }
      done(null, sub);
    },
  });
  aedes.on('clientError', (client, err) => {
    log.debug({ clientId: client.id, err }, 'MQTT client error');
  });
  aedes.on('connectionError', (client, err) => {
    if (/protocol version/.test(err.message)) {
      log.warn(
        { clientId: client.id },
        'MQTT CONNECT refused: the embedded broker (aedes) speaks MQTT 3.1.1 only; connect with protocol version 4',
      );
    } else {
      log.debug({ clientId: client.id, err }, 'MQTT connection error');
    }
  });
  // aedes emits 'error' for failures of its own housekeeping (will sweep); without a listener
  // an EventEmitter 'error' would end the process.
  (aedes as EventEmitter).on('error', (err: Error) => log.error({ err }, 'MQTT broker error'));
  await aedes.listen();

  const server: Server = createServer((socket) => {
    connectionsTotal++;
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.setNoDelay(true);
    // Set once aedes has the connection; an oversize packet can only arrive after that.
    const ref: { client?: Client } = {};
    const guarded = new FrameLimit(socket, opts.maxMessageBytes, (size, type) => {
      oversizeRefused++;
      const who = ref.client?.id || `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
      if (!oversizeLogged.has(who)) {
        if (oversizeLogged.size >= MAX_REMEMBERED_OVERSIZE) oversizeLogged.clear();
        oversizeLogged.add(who);
        log.warn(
          { clientId: ref.client?.id, remoteAddress: socket.remoteAddress, packetType: type, bytes: size },
          `MQTT packet of ${size} bytes exceeds LOOM_MQTT_MAX_MESSAGE_BYTES=${opts.maxMessageBytes}; ` +
            `connection closed (logged once per client)`,
        );
      }
    });
    ref.client = aedes.handle(guarded);
  });

  const port = await new Promise<number>((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException) => {
      server.off('listening', onListening);
      reject(listenError(e, opts.host, opts.port));
    };
    const onListening = () => {
      server.off('error', onError);
      resolve((server.address() as AddressInfo).port);
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(opts.port, opts.host);
  }).catch(async (e: unknown) => {
    await new Promise<void>((r) => aedes.close(() => r()));
    throw e;
  });
  server.on('error', (err) => log.error({ err }, 'MQTT listener error'));

  const urlHost = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  log.info(
    { host: opts.host, port, authentication: Boolean(authenticate), maxMessageBytes: opts.maxMessageBytes },
    'embedded MQTT broker listening',
  );

  let stopping: Promise<void> | undefined;
  return {
    url: `mqtt://${urlHost}:${port}`,
    port,
    stats: () => ({
      clientsConnected: aedes.connectedClients,
      socketsOpen: sockets.size,
      connectionsTotal,
      oversizeRefused,
      authRefused,
      sharedSubscriptionsRefused: sharedRefused,
    }),
    stop: () =>
      (stopping ??= (async () => {
        const serverClosed = new Promise<void>((r) => server.close(() => r()));
        // aedes.close() closes the MQTT sessions it knows; sockets still before CONNECT are not
        // among them, and server.close() waits for every socket, so end those here.
        await new Promise<void>((r) => aedes.close(() => r()));
        for (const s of sockets) s.destroy();
        await serverClosed;
        log.info({ port }, 'embedded MQTT broker stopped');
      })()),
  };
}

function authError(returnCode: 3 | 4, message: string): AuthenticateError {
  return Object.assign(new Error(message), { returnCode });
}

function listenError(e: NodeJS.ErrnoException, host: string, port: number): Error {
  if (e.code === 'EADDRINUSE') {
    return new MqttBrokerStartError(
      'port-in-use',
      `The embedded MQTT broker cannot listen on ${host}:${port}: the port is in use by another process. ` +
        `Set LOOM_MQTT_PORT to a free port, or set LOOM_MQTT_URL to use the broker that holds it.`,
      { cause: e },
    );
  }
  return new MqttBrokerStartError(
    'listen-failed',
    `The embedded MQTT broker cannot listen on ${host}:${port} (${e.code ?? e.message}). ` +
      `Check LOOM_MQTT_HOST and LOOM_MQTT_PORT.`,
    { cause: e },
  );
}

const PACKET_TYPES = [
  'reserved',
  'connect',
  'connack',
  'publish',
  'puback',
  'pubrec',
  'pubrel',
  'pubcomp',
  'subscribe',
  'suback',
  'unsubscribe',
  'unsuback',
  'pingreq',
  'pingresp',
  'disconnect',
  'auth',
];

/**
 * The client's socket as aedes sees it, with a packet size limit in front of the parser. It reads
 * only each packet's fixed header (type byte + Remaining Length, MQTT 3.1.1 §2.2) and counts the
 * body bytes through, so a packet that declares more than `limit` bytes is refused before any of
 * its body is buffered. Bytes of the packets before it are passed on; the connection then closes.
 */
class FrameLimit extends Duplex {
  readonly #socket: Socket;
  readonly #limit: number;
  readonly #onOversize: (bytes: number, type: string) => void;
  /** Body bytes of the current packet still to pass through. */
  #bodyLeft = 0;
  /** Fixed-header bytes of the next packet seen so far (type byte, then up to 4 length bytes). */
  readonly #header: number[] = [];
  #refused = false;

  constructor(socket: Socket, limit: number, onOversize: (bytes: number, type: string) => void) {
    super({ allowHalfOpen: false });
    this.#socket = socket;
    this.#limit = limit;
    this.#onOversize = onOversize;
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('end', () => this.push(null));
    socket.on('error', (e) => this.destroy(e));
    socket.on('close', () => this.destroy());
  }

  #onData(chunk: Buffer): void {
    if (this.#refused) return;
    const cut = this.#scan(chunk);
    if (cut === null) {
      if (!this.push(chunk)) this.#socket.pause();
      return;
    }
    if (cut > 0) this.push(chunk.subarray(0, cut));
    this.#refused = true;
    this.#socket.destroy();
  }

  /** Returns null when the whole chunk may pass, else the offset where a refused packet starts. */
  #scan(chunk: Buffer): number | null {
    let i = 0;
    let packetStart = 0;
    while (i < chunk.length) {
      if (this.#bodyLeft > 0) {
        const take = Math.min(this.#bodyLeft, chunk.length - i);
        this.#bodyLeft -= take;
        i += take;
        continue;
      }
      if (this.#header.length === 0) packetStart = i;
      const byte = chunk[i++]!;
      this.#header.push(byte);
      if (this.#header.length === 1) continue;
      const lengthBytes = this.#header.length - 1;
      if (byte & 0x80) {
        if (lengthBytes < 4) continue;
        // A fifth length byte: not MQTT. Let nothing more through.
        this.#onOversize(Number.POSITIVE_INFINITY, 'malformed');
        return packetStart;
      }
      let remaining = 0;
      for (let k = lengthBytes; k >= 1; k--) remaining = remaining * 128 + (this.#header[k]! & 0x7f);
      const total = 1 + lengthBytes + remaining;
      const type = PACKET_TYPES[this.#header[0]! >> 4] ?? 'unknown';
      this.#header.length = 0;
      if (total > this.#limit) {
        this.#onOversize(total, type);
        // A packet that began in an earlier chunk has had its first bytes passed on already;
        // cutting at 0 still stops the rest of it, and the connection closes.
        return Math.max(0, packetStart);
      }
      this.#bodyLeft = remaining;
    }
    return null;
  }

  override _read(): void {
    this.#socket.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    if (this.#socket.destroyed) return cb(new Error('connection closed'));
    this.#socket.write(chunk, cb);
  }

  override _writev(chunks: { chunk: Buffer }[], cb: (e?: Error | null) => void): void {
    if (this.#socket.destroyed) return cb(new Error('connection closed'));
    this.#socket.cork();
    for (let k = 0; k < chunks.length - 1; k++) this.#socket.write(chunks[k]!.chunk);
    this.#socket.write(chunks[chunks.length - 1]!.chunk, cb);
    this.#socket.uncork();
  }

  override _final(cb: (e?: Error | null) => void): void {
    this.#socket.end(cb);
  }

  override _destroy(err: Error | null, cb: (e: Error | null) => void): void {
    this.#socket.destroy();
    cb(err);
  }
}

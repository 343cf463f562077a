/**
 * The Modbus TCP poller: one loop and one TCP connection per device (host:port/unit), so a slow or
 * dead device only ever delays its own reads. Each loop reads its signals in planned blocks
 * (`planReads`), hands the decoded values to the telemetry sink and reports the device's health.
 *
 * The client side of Modbus TCP (MBAP framing) is written here rather than taken from jsmodbus'
 * ModbusTCPClient: that client answers a response with an unexpected transaction id by rejecting
 * every queued request as "OutOfSync", and so cannot tell a late reply to a timed-out request from
 * a device that numbers its replies wrongly — the two faults this poller must count apart.
 */
import { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { Clock } from '../../domain/shared/clock.ts';
import type { SampleQuality, SampleValue, TagSample } from '../../domain/signal/sample.ts';
import { sourceTagOf, type ModbusRegisterSource } from '../../domain/signal/signal.ts';
import type { MappedSignal } from '../../app/telemetry/sample-store.ts';
import type { ConnectivityReporter, TelemetrySink } from '../../app/telemetry/telemetry-ports.ts';
import {
  decodeRegisters,
  encodeValue,
  isBitTable,
  planReads,
  widthOf,
  type ReadBlock,
} from './modbus-register-map.ts';

export interface ModbusTcpPollerOptions {
  readonly sink: TelemetrySink;
  readonly connectivity: ConnectivityReporter;
  readonly clock: Clock;
  readonly logger: Logger;
  /** How long a connect or a request may take before it counts as a timeout, ms. Default 2000. */
  readonly timeoutMs?: number;
  /** First reconnect delay, ms; doubles on each failure up to `maxReconnectMs`. Default 1000. */
  readonly reconnectMs?: number;
  /** Longest reconnect delay, ms. Default 30 000. */
  readonly maxReconnectMs?: number;
  /** Unused registers a read may span to join two neighbours (see `planReads`). Default 8. */
  readonly maxGap?: number;
}

export type ModbusWriteErrorCode =
  | 'LOOM_MODBUS_UNKNOWN_TAG'
  | 'LOOM_MODBUS_READ_ONLY'
  | 'LOOM_MODBUS_TYPE_MISMATCH'
  | 'LOOM_MODBUS_OUT_OF_RANGE'
  | 'LOOM_MODBUS_DISCONNECTED'
  | 'LOOM_MODBUS_EXCEPTION'
  | 'LOOM_MODBUS_TIMEOUT'
  | 'LOOM_MODBUS_BAD_RESPONSE';

/** A write's outcome: the value read back after writing, or why nothing (or not all) happened. */
export type ModbusWriteResult =
  | { readonly ok: true; readonly readBack: number | boolean }
  | {
      readonly ok: false;
      readonly code: ModbusWriteErrorCode;
      readonly message: string;
      /** The device's exception code (`LOOM_MODBUS_EXCEPTION` only). */
      readonly exceptionCode?: number;
    };

/** A read's outcome: the value the device holds now, or why it could not be read. */
export type ModbusReadResult =
  | {
      readonly ok: true;
      /** Null with quality `bad`: the registers hold no valid number (a float32 NaN or infinity). */
      readonly value: number | boolean | null;
      readonly quality: SampleQuality;
      readonly sourceTs: number;
    }
  | Extract<ModbusWriteResult, { ok: false }>;

const KIND = 'modbus-device' as const;

/** Modbus Application Protocol v1.1b3 §7: exception codes. */
const EXCEPTION_NAMES: Readonly<Record<number, string>> = {
  1: 'illegal function',
  2: 'illegal data address',
  3: 'illegal data value',
  4: 'server device failure',
  5: 'acknowledge',
  6: 'server device busy',
  8: 'memory parity error',
  10: 'gateway path unavailable',
  11: 'gateway target device failed to respond',
};
export const exceptionName = (code: number): string => EXCEPTION_NAMES[code] ?? `exception ${code}`;

/** The connectivity id and grouping key of a register's device. */
export const modbusDeviceId = (m: Pick<ModbusRegisterSource, 'host' | 'port' | 'unitId'>): string =>
  `${m.host}:${m.port}/${m.unitId}`;

const READ_FC: Readonly<Record<ModbusRegisterSource['table'], number>> = {
  coil: 1,
  discrete: 2,
  holding: 3,
  input: 4,
};

type Reply =
  | { readonly kind: 'ok'; readonly pdu: Buffer }
  | { readonly kind: 'exception'; readonly code: number }
  | { readonly kind: 'timeout' }
  | { readonly kind: 'closed'; readonly reason: string }
  | { readonly kind: 'malformed'; readonly reason: string };

type ConnectionEvent = 'badTransaction' | 'lateResponse' | 'malformed';

/** Transaction ids of requests that timed out, kept so their late replies are told apart. */
const LATE_MEMORY = 16;

/**
 * One Modbus TCP connection (MBAP, Modbus Messaging on TCP/IP v1.0b). One request at a time:
 * many devices serve a single outstanding transaction per connection, and a poll loop needs no more.
 */
class MbapConnection {
  readonly #socket: Socket;
  readonly #onEvent: (e: ConnectionEvent, detail: string) => void;
  #tid = 0;
  #pending: { tid: number; unitId: number; fc: number; resolve: (r: Reply) => void } | null = null;
  #buffer: Buffer = Buffer.alloc(0);
  readonly #timedOut: number[] = [];
  #closed: string | null = null;
  #chain: Promise<unknown> = Promise.resolve();

  private constructor(socket: Socket, onEvent: (e: ConnectionEvent, detail: string) => void) {
    this.#socket = socket;
    this.#onEvent = onEvent;
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('close', () => this.#fail('connection closed by the device'));
    socket.on('error', (e) => this.#fail(e.message));
  }

  static open(
    host: string,
    port: number,
    timeoutMs: number,
    signal: AbortSignal,
    onEvent: (e: ConnectionEvent, detail: string) => void,
  ): Promise<MbapConnection | { error: string }> {
    return new Promise((resolve) => {
      if (signal.aborted) return resolve({ error: 'stopped' });
      // The stop signal only matters while connecting (a connection is closed by the poller). It
      // is not given to the socket: node removes a socket's abort listener only when the signal
      // aborts, so every attempt of a device offline for days would leave one, with its socket.
      const socket = new Socket();
      const settle = (outcome: MbapConnection | { error: string }) => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        resolve(outcome);
      };
      const onAbort = () => {
        socket.destroy();
        settle({ error: 'stopped' });
      };
      signal.addEventListener('abort', onAbort, { once: true });
      const timer = setTimeout(() => {
        socket.destroy();
        settle({ error: `connect timed out after ${timeoutMs} ms` });
      }, timeoutMs);
      socket.once('error', (e: NodeJS.ErrnoException) => {
        socket.destroy();
        settle({ error: e.code ?? e.message });
      });
      socket.connect({ host, port }, () => {
        socket.removeAllListeners('error');
        socket.setNoDelay(true);
        socket.setKeepAlive(true, 10_000);
        settle(new MbapConnection(socket, onEvent));
      });
    });
  }

  get closed(): boolean {
    return this.#closed !== null;
  }

  /** Sends one PDU and waits for its reply; never rejects. */
  request(unitId: number, pdu: Buffer, timeoutMs: number): Promise<Reply> {
    const p = this.#chain.then(() => this.#send(unitId, pdu, timeoutMs));
    this.#chain = p;
    return p;
  }

  close(): void {
    this.#fail('closed by Loom');
    this.#socket.destroy();
  }

  #send(unitId: number, pdu: Buffer, timeoutMs: number): Promise<Reply> {
    if (this.#closed !== null) return Promise.resolve({ kind: 'closed', reason: this.#closed });
    this.#tid = (this.#tid + 1) & 0xffff;
    const tid = this.#tid;
    const adu = Buffer.alloc(7 + pdu.length);
    adu.writeUInt16BE(tid, 0);
    adu.writeUInt16BE(0, 2);
    adu.writeUInt16BE(pdu.length + 1, 4);
    adu.writeUInt8(unitId, 6);
    pdu.copy(adu, 7);
    return new Promise<Reply>((resolve) => {
      const timer = setTimeout(() => {
        this.#pending = null;
        this.#timedOut.push(tid);
        if (this.#timedOut.length > LATE_MEMORY) this.#timedOut.shift();
        resolve({ kind: 'timeout' });
      }, timeoutMs);
      this.#pending = {
        tid,
        unitId,
        fc: pdu.readUInt8(0),
        resolve: (r) => {
          clearTimeout(timer);
          this.#pending = null;
          resolve(r);
        },
      };
      this.#socket.write(adu);
    });
  }

  #fail(reason: string): void {
    if (this.#closed !== null) return;
    this.#closed = reason;
    this.#pending?.resolve({ kind: 'closed', reason });
    this.#socket.destroy();
  }

  #onData(chunk: Buffer): void {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    while (this.#buffer.length >= 7 && this.#closed === null) {
      const protocol = this.#buffer.readUInt16BE(2);
      const length = this.#buffer.readUInt16BE(4);
      // MBAP length counts the unit id and the PDU: 2 (unit + function) up to 254 (§4.1).
      if (protocol !== 0 || length < 2 || length > 254) {
        const reason = `bad MBAP header (protocol ${protocol}, length ${length})`;
        this.#onEvent('malformed', reason);
        this.#pending?.resolve({ kind: 'malformed', reason });
        this.#fail(reason);
        return;
      }
      if (this.#buffer.length < 6 + length) return;
      const tid = this.#buffer.readUInt16BE(0);
      const unitId = this.#buffer.readUInt8(6);
      const pdu = this.#buffer.subarray(7, 6 + length);
      this.#buffer = this.#buffer.subarray(6 + length);
      this.#onFrame(tid, unitId, Buffer.from(pdu));
    }
  }

  #onFrame(tid: number, unitId: number, pdu: Buffer): void {
    const pending = this.#pending;
    if (pending === null || tid !== pending.tid || unitId !== pending.unitId) {
      if (this.#timedOut.includes(tid))
        this.#onEvent('lateResponse', `transaction ${tid} answered after its timeout`);
      else {
        this.#onEvent(
          'badTransaction',
          pending === null
            ? `unsolicited reply with transaction ${tid}`
            : `reply with transaction ${tid} unit ${unitId}, expected transaction ${pending.tid} unit ${pending.unitId}`,
        );
      }
      return;
    }
    const fc = pdu.readUInt8(0);
    if (fc === (pending.fc | 0x80) && pdu.length >= 2)
      pending.resolve({ kind: 'exception', code: pdu.readUInt8(1) });
    else if (fc === pending.fc) pending.resolve({ kind: 'ok', pdu });
    else {
      const reason = `reply with function ${fc} to function ${pending.fc}`;
      this.#onEvent('malformed', reason);
      pending.resolve({ kind: 'malformed', reason });
    }
  }
}

function readPdu(table: ModbusRegisterSource['table'], start: number, count: number): Buffer {
  const pdu = Buffer.alloc(5);
  pdu.writeUInt8(READ_FC[table], 0);
  pdu.writeUInt16BE(start, 1);
  pdu.writeUInt16BE(count, 3);
  return pdu;
}

/** The data bytes of a read reply, or why it is unusable. */
function readData(pdu: Buffer, table: ModbusRegisterSource['table'], count: number): Buffer | string {
  const expected = isBitTable(table) ? Math.ceil(count / 8) : count * 2;
  const n = pdu.length >= 2 ? pdu.readUInt8(1) : -1;
  if (n !== expected || pdu.length < 2 + n) return `read of ${count} gave ${n} bytes, expected ${expected}`;
  return pdu.subarray(2, 2 + n);
}

function valueAt(
  data: Buffer,
  source: ModbusRegisterSource,
  at: number,
): { value: SampleValue; quality: SampleQuality } {
  if (isBitTable(source.table)) return { value: ((data[at >> 3]! >> (at & 7)) & 1) === 1, quality: 'good' };
  const words: number[] = [];
  for (let i = 0; i < widthOf(source.type); i++) words.push(data.readUInt16BE((at + i) * 2));
  const v = decodeRegisters(words, source);
  // A float32 NaN or infinity is how many devices say "no valid reading".
  return Number.isFinite(v) ? { value: v, quality: 'good' } : { value: null, quality: 'bad' };
}

interface BlockState {
  readonly block: ReadBlock<MappedSignal>;
  readonly key: string;
  dueAt: number;
  health: 'unknown' | 'good' | 'bad';
}

/** Consecutive timeouts after which the connection is assumed half-open and replaced. */
const TIMEOUTS_BEFORE_RECONNECT = 3;

type DeviceOptions = Required<ModbusTcpPollerOptions>;

class ModbusDevice {
  readonly id: string;
  readonly #host: string;
  readonly #port: number;
  readonly #unitId: number;
  readonly #o: DeviceOptions;
  readonly #abort = new AbortController();
  #blocks: BlockState[] = [];
  #conn: MbapConnection | null = null;
  #connectedOnce = false;
  #backoffMs: number;
  #consecutiveTimeouts = 0;
  readonly #logged = new Set<string>();
  #wake: (() => void) | null = null;
  #done: Promise<void> = Promise.resolve();

  constructor(source: ModbusRegisterSource, o: DeviceOptions) {
    this.id = modbusDeviceId(source);
    this.#host = source.host;
    this.#port = source.port;
    this.#unitId = source.unitId;
    this.#o = o;
    this.#backoffMs = o.reconnectMs;
  }

  get connected(): boolean {
    return this.#conn !== null && !this.#conn.closed;
  }

  setSignals(signals: readonly MappedSignal[]): void {
    const old = new Map(this.#blocks.map((b) => [b.key, b]));
    const now = performance.now();
    this.#blocks = planReads(
      signals as readonly (MappedSignal & { source: { modbus: ModbusRegisterSource } })[],
      {
        maxGap: this.#o.maxGap,
      },
    ).map((block) => {
      const key = `${block.table}:${block.start}:${block.count}:${block.pollMs}:${block.items.map((i) => i.item.tag).join(',')}`;
      const prev = old.get(key);
      return { block, key, dueAt: prev?.dueAt ?? now, health: prev?.health ?? 'unknown' };
    });
    this.#wakeUp();
  }

  start(): void {
    this.#o.connectivity.setState(KIND, this.id, 'connecting');
    this.#done = this.#run();
  }

  async stop(): Promise<void> {
    this.#abort.abort();
    this.#conn?.close();
    this.#wakeUp();
    await this.#done;
  }

  get #stopped(): boolean {
    return this.#abort.signal.aborted;
  }

  async #run(): Promise<void> {
    while (!this.#stopped) {
      if (!this.connected) {
        await this.#connect();
        continue;
      }
      const next = this.#blocks.reduce<BlockState | null>(
        (a, b) => (a === null || b.dueAt < a.dueAt ? b : a),
        null,
      );
      const now = performance.now();
      if (next === null) {
        await this.#sleep(60_000);
        continue;
      }
      if (next.dueAt > now) {
        await this.#sleep(next.dueAt - now);
        continue;
      }
      // Keep the period without bursting to catch up after a slow read.
      next.dueAt =
        next.dueAt + next.block.pollMs < now ? now + next.block.pollMs : next.dueAt + next.block.pollMs;
      await this.#read(next);
    }
    this.#conn?.close();
    this.#conn = null;
  }

  async #connect(): Promise<void> {
    if (this.#conn !== null) this.#lost(this.#conn);
    const { connectivity } = this.#o;
    connectivity.setState(KIND, this.id, 'connecting');
    const conn = await MbapConnection.open(
      this.#host,
      this.#port,
      this.#o.timeoutMs,
      this.#abort.signal,
      (e, d) => this.#onConnectionEvent(e, d),
    );
    if (this.#stopped) {
      if (conn instanceof MbapConnection) conn.close();
      return;
    }
    if (!(conn instanceof MbapConnection)) {
      connectivity.count(KIND, this.id, 'connectFailures');
      connectivity.setState(KIND, this.id, 'offline', conn.error);
      this.#logOnce('connect', { err: conn.error, retryInMs: this.#backoffMs }, 'Modbus device unreachable');
      this.#markBad(this.#blocks);
      await this.#sleep(this.#backoffMs);
      this.#backoffMs = Math.min(this.#backoffMs * 2, this.#o.maxReconnectMs);
      return;
    }
    if (this.#connectedOnce) connectivity.count(KIND, this.id, 'reconnects');
    const wasDown = this.#logged.delete('connect');
    if (this.#logged.delete('disconnected') || wasDown) {
      this.#o.logger.info({ device: this.id }, 'Modbus device connected again');
    }
    this.#connectedOnce = true;
    this.#backoffMs = this.#o.reconnectMs;
    this.#consecutiveTimeouts = 0;
    this.#conn = conn;
    connectivity.setState(KIND, this.id, 'online', 'connected');
    const now = performance.now();
    for (const b of this.#blocks) b.dueAt = Math.min(b.dueAt, now);
  }

  /** A connection that was up is gone: health, samples and log follow once. */
  #lost(conn: MbapConnection): void {
    conn.close();
    this.#conn = null;
    this.#o.connectivity.setState(KIND, this.id, 'offline', 'disconnected');
    this.#logOnce('disconnected', {}, 'Modbus device disconnected');
    this.#markBad(this.#blocks);
  }

  #onConnectionEvent(e: ConnectionEvent, detail: string): void {
    this.#o.connectivity.count(KIND, this.id, e);
    this.#logOnce(e, { detail }, `Modbus device: ${detail}`);
  }

  async #read(state: BlockState): Promise<void> {
    const conn = this.#conn;
    if (conn === null) return;
    const { block } = state;
    const { connectivity, timeoutMs } = this.#o;
    const reply = await conn.request(this.#unitId, readPdu(block.table, block.start, block.count), timeoutMs);
    if (this.#stopped) return;
    connectivity.count(KIND, this.id, 'polls');
    const at = this.#o.clock.now().getTime();
    const where = `${block.table} ${block.start}+${block.count}`;
    switch (reply.kind) {
      case 'ok': {
        const data = readData(reply.pdu, block.table, block.count);
        if (typeof data === 'string') {
          this.#onConnectionEvent('malformed', `${where}: ${data}`);
          this.#markBad([state]);
          return;
        }
        this.#consecutiveTimeouts = 0;
        connectivity.touch(KIND, this.id, at);
        if (this.#logged.delete('timeout')) connectivity.setState(KIND, this.id, 'online', 'answering again');
        this.#logged.delete(`exception:${state.key}`);
        state.health = 'good';
        const samples: TagSample[] = block.items.map(({ item, at: pos }) => {
          const source = (item.source as { modbus: ModbusRegisterSource }).modbus;
          return {
            tag: sourceTagOf(item.source),
            ...valueAt(data, source, pos),
            sourceTs: at,
            serverTs: at,
            historical: false,
          };
        });
        this.#o.sink.accept(samples);
        return;
      }
      case 'exception':
        this.#consecutiveTimeouts = 0;
        connectivity.count(KIND, this.id, 'exceptions');
        connectivity.touch(KIND, this.id, at);
        this.#logOnce(
          `exception:${state.key}`,
          { read: where, exceptionCode: reply.code },
          `Modbus device answered ${where} with exception ${reply.code} (${exceptionName(reply.code)})`,
        );
        this.#markBad([state]);
        return;
      case 'timeout':
        connectivity.count(KIND, this.id, 'timeouts');
        connectivity.setState(KIND, this.id, 'stale', `no answer within ${timeoutMs} ms`);
        this.#logOnce('timeout', { read: where, timeoutMs }, 'Modbus device does not answer');
        this.#markBad([state]);
        if (++this.#consecutiveTimeouts >= TIMEOUTS_BEFORE_RECONNECT) this.#lost(conn);
        return;
      case 'closed':
      case 'malformed':
        this.#lost(conn);
        return;
    }
  }

  #markBad(states: readonly BlockState[]): void {
    const at = this.#o.clock.now().getTime();
    const samples: TagSample[] = [];
    for (const s of states) {
      if (s.health === 'bad') continue;
      s.health = 'bad';
      for (const { item } of s.block.items) {
        samples.push({
          tag: sourceTagOf(item.source),
          value: null,
          quality: 'bad',
          sourceTs: at,
          serverTs: at,
          historical: false,
        });
      }
    }
    if (samples.length > 0) this.#o.sink.accept(samples);
  }

  /** One log line per fault kind until the device recovers from it, never one per poll. */
  #logOnce(kind: string, fields: Record<string, unknown>, msg: string): void {
    if (this.#logged.has(kind)) return;
    this.#logged.add(kind);
    this.#o.logger.warn({ device: this.id, fault: kind.split(':')[0], ...fields }, msg);
  }

  #sleep(ms: number): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = () => {
        this.#wake = null;
        done();
      };
    });
  }

  #wakeUp(): void {
    this.#wake?.();
  }

  #failure(
    r: Exclude<Reply, { kind: 'ok' }>,
    what: string,
    counter: 'writeFailures' | 'readFailures',
  ): Extract<ModbusWriteResult, { ok: false }> {
    const { connectivity, timeoutMs } = this.#o;
    connectivity.count(KIND, this.id, counter);
    switch (r.kind) {
      case 'exception':
        return {
          ok: false,
          code: 'LOOM_MODBUS_EXCEPTION',
          message: `${this.id} answered the ${what} with exception ${r.code} (${exceptionName(r.code)})`,
          exceptionCode: r.code,
        };
      case 'timeout':
        return {
          ok: false,
          code: 'LOOM_MODBUS_TIMEOUT',
          message: `${this.id} did not answer the ${what} within ${timeoutMs} ms`,
        };
      case 'closed':
        return {
          ok: false,
          code: 'LOOM_MODBUS_DISCONNECTED',
          message: `${this.id} disconnected during the ${what}: ${r.reason}`,
        };
      case 'malformed':
        return {
          ok: false,
          code: 'LOOM_MODBUS_BAD_RESPONSE',
          message: `${this.id} answered the ${what} wrongly: ${r.reason}`,
        };
    }
  }

  /** Reads one register (or coil) from the device now, outside the poll schedule (interlocks). */
  async read(source: ModbusRegisterSource): Promise<ModbusReadResult> {
    const conn = this.#conn;
    if (conn === null || conn.closed) {
      return {
        ok: false,
        code: 'LOOM_MODBUS_DISCONNECTED',
        message: `${this.id} is not connected; nothing was read`,
      };
    }
    const width = widthOf(source.type);
    const reply = await conn.request(
      this.#unitId,
      readPdu(source.table, source.address, width),
      this.#o.timeoutMs,
    );
    if (reply.kind !== 'ok') return this.#failure(reply, 'read', 'readFailures');
    const data = readData(reply.pdu, source.table, width);
    if (typeof data === 'string')
      return this.#failure({ kind: 'malformed', reason: data }, 'read', 'readFailures');
    const got = valueAt(data, source, 0);
    const at = this.#o.clock.now().getTime();
    this.#o.sink.accept([
      { tag: sourceTagOf({ modbus: source }), ...got, sourceTs: at, serverTs: at, historical: false },
    ]);
    return { ok: true, value: got.value as number | boolean | null, quality: got.quality, sourceTs: at };
  }

  async write(source: ModbusRegisterSource, value: number | boolean): Promise<ModbusWriteResult> {
    if (source.table === 'input' || source.table === 'discrete') {
      return {
        ok: false,
        code: 'LOOM_MODBUS_READ_ONLY',
        message: `${source.table} ${source.address} is read-only`,
      };
    }
    const enc = encodeValue(value, source);
    if (!enc.ok) {
      return {
        ok: false,
        code: enc.reason === 'wrong-type' ? 'LOOM_MODBUS_TYPE_MISMATCH' : 'LOOM_MODBUS_OUT_OF_RANGE',
        message: enc.message,
      };
    }
    const conn = this.#conn;
    if (conn === null || conn.closed) {
      return {
        ok: false,
        code: 'LOOM_MODBUS_DISCONNECTED',
        message: `${this.id} is not connected; nothing was sent`,
      };
    }
    const { connectivity, timeoutMs } = this.#o;
    connectivity.count(KIND, this.id, 'writes');
    let pdu: Buffer;
    if (source.table === 'coil') {
      pdu = Buffer.from([5, 0, 0, enc.words[0] ? 0xff : 0, 0]);
      pdu.writeUInt16BE(source.address, 1);
    } else if (enc.words.length === 1) {
      pdu = Buffer.alloc(5);
      pdu.writeUInt8(6, 0);
      pdu.writeUInt16BE(source.address, 1);
      pdu.writeUInt16BE(enc.words[0]!, 3);
    } else {
      pdu = Buffer.alloc(6 + enc.words.length * 2);
      pdu.writeUInt8(16, 0);
      pdu.writeUInt16BE(source.address, 1);
      pdu.writeUInt16BE(enc.words.length, 3);
      pdu.writeUInt8(enc.words.length * 2, 5);
      enc.words.forEach((w, i) => pdu.writeUInt16BE(w, 6 + i * 2));
    }
    const failed = (r: Exclude<Reply, { kind: 'ok' }>, what: string) =>
      this.#failure(r, what, 'writeFailures');
    const written = await conn.request(this.#unitId, pdu, timeoutMs);
    if (written.kind !== 'ok') return failed(written, 'write');
    const width = widthOf(source.type);
    const back = await conn.request(this.#unitId, readPdu(source.table, source.address, width), timeoutMs);
    if (back.kind !== 'ok') return failed(back, 'read-back');
    const data = readData(back.pdu, source.table, width);
    if (typeof data === 'string') return failed({ kind: 'malformed', reason: data }, 'read-back');
    const got = valueAt(data, source, 0);
    const at = this.#o.clock.now().getTime();
    this.#o.sink.accept([
      { tag: sourceTagOf({ modbus: source }), ...got, sourceTs: at, serverTs: at, historical: false },
    ]);
    if (got.value === null || typeof got.value === 'string') {
      return failed({ kind: 'malformed', reason: 'read-back is not a valid number' }, 'read-back');
    }
    return { ok: true, readBack: got.value };
  }
}

/**
 * Polls every Modbus-sourced signal. `setSignals` may be called at any time (plant file reloaded):
 * devices that appear start, devices that disappear stop, the others re-plan their reads in place
 * without reconnecting.
 */
export class ModbusTcpPoller {
  readonly #o: DeviceOptions;
  readonly #devices = new Map<string, ModbusDevice>();
  /** Source tag → (device, register) for writes by tag. */
  #byTag = new Map<string, { device: ModbusDevice; source: ModbusRegisterSource }>();
  readonly #stopping = new Set<Promise<void>>();
  #stopped = false;

  constructor(opts: ModbusTcpPollerOptions) {
    this.#o = {
      timeoutMs: 2000,
      reconnectMs: 1000,
      maxReconnectMs: 30_000,
      maxGap: 8,
      ...opts,
    };
  }

  setSignals(signals: readonly MappedSignal[]): void {
    if (this.#stopped) return;
    const byDevice = new Map<string, { source: ModbusRegisterSource; signals: MappedSignal[] }>();
    for (const s of signals) {
      if (!('modbus' in s.source)) continue;
      const id = modbusDeviceId(s.source.modbus);
      const entry = byDevice.get(id);
      if (entry) entry.signals.push(s);
      else byDevice.set(id, { source: s.source.modbus, signals: [s] });
    }
    for (const [id, device] of this.#devices) {
      if (byDevice.has(id)) continue;
      this.#devices.delete(id);
      const p = device.stop().then(() => {
        this.#o.connectivity.setState(KIND, id, 'offline', 'no signal reads from it any more');
        this.#stopping.delete(p);
      });
      this.#stopping.add(p);
    }
    const byTag = new Map<string, { device: ModbusDevice; source: ModbusRegisterSource }>();
    for (const [id, { source, signals: list }] of byDevice) {
      let device = this.#devices.get(id);
      const fresh = device === undefined;
      device ??= new ModbusDevice(source, this.#o);
      this.#devices.set(id, device);
      device.setSignals(list);
      if (fresh) device.start();
      for (const s of list) {
        const m = (s.source as { modbus: ModbusRegisterSource }).modbus;
        byTag.set(sourceTagOf(s.source), { device, source: m });
        byTag.set(s.tag, { device, source: m });
      }
    }
    this.#byTag = byTag;
  }

  /** The polled register a signal (or its tag key) names, or why there is none. */
  #polled(target: string | MappedSignal) {
    const tag = typeof target === 'string' ? target : target.tag;
    const found = this.#byTag.get(tag);
    if (found === undefined || this.#stopped) {
      return {
        ok: false,
        code: 'LOOM_MODBUS_UNKNOWN_TAG',
        message: `no polled Modbus register has tag '${tag}'`,
      } as const;
    }
    return found;
  }

  /**
   * Writes a value to a polled register or coil and reads it back. Sent only while the device is
   * connected: a write is never queued for later, when it might no longer be wanted.
   * `target` is a signal, or its source tag key (`MappedSignal.tag`).
   */
  async write(target: string | MappedSignal, value: number | boolean): Promise<ModbusWriteResult> {
    const found = this.#polled(target);
    if ('ok' in found) return found;
    return found.device.write(found.source, value);
  }

  /**
   * Reads a polled register or coil from the device now (an interlock needs the state as it is,
   * not as last polled). Like `write`, only while the device is connected; never queued.
   * `target` is a signal, or its source tag key (`MappedSignal.tag`).
   */
  async read(target: string | MappedSignal): Promise<ModbusReadResult> {
    const found = this.#polled(target);
    if ('ok' in found) return found;
    return found.device.read(found.source);
  }

  /** Stops every device loop and closes every connection; resolves when all are gone. */
  async stop(): Promise<void> {
    this.#stopped = true;
    const all = [...this.#devices.values()].map((d) => d.stop());
    this.#devices.clear();
    this.#byTag.clear();
    await Promise.all([...all, ...this.#stopping]);
  }
}

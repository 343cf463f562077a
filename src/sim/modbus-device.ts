/**
 * A simulated press as a real Modbus TCP server (jsmodbus ModbusTCPServer on node:net), driven by
 * the press physics of plant-physics.ts. Requests pass a small MBAP gate first, which checks writes
 * and injects faults for tests: an exception code for an address, no answer at all (stall), and
 * replies with a wrong transaction id.
 *
 * Register map (zero-based protocol addresses):
 *
 * | table    | address | type    | order          | meaning                                    |
 * |----------|---------|---------|----------------|--------------------------------------------|
 * | holding  | 0–1     | uint32  | big words      | strokes                                    |
 * | holding  | 2–3     | float32 | big words      | last cycle time, s                         |
 * | holding  | 4       | int16   |                | pressure, bar × 10                         |
 * | holding  | 5       | uint16  |                | state: 0 Idle, 1 Execute, 2 Stopped        |
 * | holding  | 6       | uint16  |                | target strokes/min, writable 0–120         |
 * | holding  | 7       | uint16  |                | PackML state number (StateCurrent), 1–17   |
 * | holding  | 8       | uint16  |                | PackML CntrlCmd, writable 1–9; holds the last command |
 * | holding  | 9       | uint16  |                | recipe peak pressure, bar; writable, clamped to 50–250 |
 * | holding  | 10–11   | uint32  | little words   | strokes                                    |
 * | holding  | 12–13   | float32 | little words   | last cycle time, s                         |
 * | holding  | 20–30   | fixed test pattern (`TEST_PATTERN`)                                       |
 * | holding  | 40–49   | scratch, writable                                                         |
 * | input    | 0–5     | as holding 0–5                                                            |
 * | coil     | 0       | bool    |                | running (Execute)                          |
 * | coil     | 1       | bool    |                | scratch, writable                          |
 * | discrete | 0       | bool    |                | running (Execute)                          |
 *
 * The press runs a PackML state machine (packml.ts), starting in Execute: a command written to
 * holding 8 drives it, the press strokes only in Execute, and holding 7 reports the state. A
 * command the state does not accept is ignored, as a PLC does.
 */
import { EventEmitter } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import Modbus from 'jsmodbus';
import { PackmlStateMachine } from './packml.ts';
import { Press, seededRandom, type PressState } from './plant-physics.ts';

export const PRESS_STATE_CODE: Readonly<Record<PressState, number>> = { Idle: 0, Execute: 1, Stopped: 2 };

/** Holding 20–30: constant words, so a test can check every type and order against known values. */
export const TEST_PATTERN = {
  /** int16 −1234. */
  20: [0xfb2e],
  /** uint16 54321. */
  21: [0xd431],
  /** int32 −123456, big word order. */
  22: [0xfffe, 0x1dc0],
  /** int32 −123456, little word order. */
  24: [0x1dc0, 0xfffe],
  /** uint32 3 000 000 000, big word order, little byte order. */
  26: [0xd0b2, 0x005e],
  /** float32 −2.5, little word order, little byte order. */
  28: [0x0000, 0x20c0],
  /** uint16 raw 500: with scale 0.1 and offset −20 reads 30. */
  30: [500],
} as const satisfies Record<number, readonly number[]>;

const TARGET_SPM_ADDRESS = 6;
const TARGET_SPM_MAX = 120;
const PACKML_STATE_ADDRESS = 7;
const PACKML_COMMAND_ADDRESS = 8;
const PEAK_PRESSURE_ADDRESS = 9;
/** What the press accepts as peak pressure; a write outside is clamped, not refused. */
const PEAK_PRESSURE_RANGE = { min: 50, max: 250 } as const;
const SCRATCH = { from: 40, to: 49 } as const;

type Table = 'coil' | 'discrete' | 'holding' | 'input';

export interface ModbusDeviceOptions {
  /** 0: any free port. */
  readonly port?: number;
  readonly host?: string;
  readonly seed?: number;
  /** Initial target strokes/min. Default 30. */
  readonly strokesPerMinute?: number;
  /** Physics step, ms. Default 50. */
  readonly tickMs?: number;
  /** How long each PackML acting state (Starting, Stopping, …) lasts, ms. Default 200. */
  readonly packmlActingMs?: number;
}

/** Faults a test switches on and off while the device runs. */
export interface ModbusDeviceFaults {
  /** Every request touching `address` of `table` is answered with exception `code`. */
  exceptionAt(table: Table, address: number, code: number): void;
  clearExceptions(): void;
  /** While on, requests are read and never answered. */
  stall(on: boolean): void;
  /** While on, every reply carries its request's transaction id + 1. */
  wrongTransactionId(on: boolean): void;
}

export interface SimulatedModbusDevice {
  readonly port: number;
  readonly press: Press;
  /** The press's PackML state (holding 7), driven by commands written to holding 8. */
  readonly packml: PackmlStateMachine;
  readonly faults: ModbusDeviceFaults;
  /** Connections open right now (a leak check for clients). */
  readonly connections: number;
  stop(): Promise<void>;
}

const TABLE_OF_FC: Readonly<Record<number, Table>> = {
  1: 'coil',
  2: 'discrete',
  3: 'holding',
  4: 'input',
  5: 'coil',
  6: 'holding',
  15: 'coil',
  16: 'holding',
};

/** The (table, first address, count, written words) of a request PDU, or null for others. */
function describe(pdu: Buffer): { table: Table; start: number; count: number; words?: number[] } | null {
  const fc = pdu.readUInt8(0);
  const table = TABLE_OF_FC[fc];
  if (table === undefined || pdu.length < 5) return null;
  const start = pdu.readUInt16BE(1);
  if (fc === 5) return { table, start, count: 1 };
  if (fc === 6) return { table, start, count: 1, words: [pdu.readUInt16BE(3)] };
  const count = pdu.readUInt16BE(3);
  if (fc === 16) {
    const words: number[] = [];
    for (let i = 0; i < count && 6 + i * 2 + 1 < pdu.length; i++) words.push(pdu.readUInt16BE(6 + i * 2));
    return { table, start, count, words };
  }
  return { table, start, count };
}

function exceptionAdu(request: Buffer, code: number): Buffer {
  const adu = Buffer.alloc(9);
  request.copy(adu, 0, 0, 4);
  adu.writeUInt16BE(3, 4);
  adu.writeUInt8(request.readUInt8(6), 6);
  adu.writeUInt8(request.readUInt8(7) | 0x80, 7);
  adu.writeUInt8(code, 8);
  return adu;
}

export async function startModbusDevice(opts: ModbusDeviceOptions = {}): Promise<SimulatedModbusDevice> {
  const press = new Press({
    random: seededRandom(opts.seed ?? 1),
    strokesPerMinute: opts.strokesPerMinute ?? 30,
  });
  // jsmodbus takes the connections from this emitter, so every byte passes the gate below first.
  const gate = new EventEmitter();
  const modbus = new Modbus.server.TCP(gate as unknown as Server);
  const { holding, input, coils, discrete } = modbus;
  for (const [address, words] of Object.entries(TEST_PATTERN)) {
    words.forEach((w, i) => holding.writeUInt16BE(w, (Number(address) + i) * 2));
  }
  holding.writeUInt16BE(press.read('TargetStrokesPerMinute') as number, TARGET_SPM_ADDRESS * 2);
  holding.writeUInt16BE(press.read('Recipe/PeakPressure') as number, PEAK_PRESSURE_ADDRESS * 2);
  const packml = new PackmlStateMachine({ initial: 'Execute', actingMs: opts.packmlActingMs ?? 200 });

  const exceptions = new Map<string, number>();
  let stalled = false;
  let wrongTid = false;
  const sockets = new Set<Socket>();

  const publish = (): void => {
    const running = press.state === 'Execute';
    const f = Buffer.alloc(4);
    holding.writeUInt32BE((press.read('Strokes') as number) >>> 0, 0);
    holding.writeFloatBE(press.read('CycleTime') as number, 4);
    holding.writeInt16BE(Math.round((press.read('Pressure') as number) * 10), 8);
    holding.writeUInt16BE(PRESS_STATE_CODE[press.state], 10);
    holding.writeUInt16BE(packml.stateNumber, PACKML_STATE_ADDRESS * 2);
    f.writeUInt32BE((press.read('Strokes') as number) >>> 0);
    holding.writeUInt16BE(f.readUInt16BE(2), 20);
    holding.writeUInt16BE(f.readUInt16BE(0), 22);
    f.writeFloatBE(press.read('CycleTime') as number);
    holding.writeUInt16BE(f.readUInt16BE(2), 24);
    holding.writeUInt16BE(f.readUInt16BE(0), 26);
    holding.copy(input, 0, 0, 12);
    coils.writeUInt8((coils.readUInt8(0) & ~1) | (running ? 1 : 0), 0);
    discrete.writeUInt8((discrete.readUInt8(0) & ~1) | (running ? 1 : 0), 0);
  };

  /**
   * Checks a write: only the target speed (0–120), the PackML command (1–9), the peak pressure and
   * the scratch registers and coil accept one.
   */
  const refuseWrite = (d: {
    table: Table;
    start: number;
    count: number;
    words?: number[];
  }): number | null => {
    if (d.table === 'coil') return d.start === 1 && d.count === 1 ? null : 2;
    const end = d.start + d.count - 1;
    if (d.start >= SCRATCH.from && end <= SCRATCH.to) return null;
    if (d.start === TARGET_SPM_ADDRESS && d.count === 1) {
      return (d.words?.[0] ?? 0) <= TARGET_SPM_MAX ? null : 3;
    }
    if (d.start === PACKML_COMMAND_ADDRESS && d.count === 1) {
      const c = d.words?.[0] ?? 0;
      return c >= 1 && c <= 9 ? null : 3;
    }
    if (d.start === PEAK_PRESSURE_ADDRESS && d.count === 1) return null;
    return 2;
  };

  const onRequest = (socket: Socket, shim: EventEmitter, adu: Buffer): void => {
    if (stalled) return;
    let forwarded = adu;
    const pdu = adu.subarray(7);
    const d = describe(pdu);
    if (d !== null) {
      for (let a = d.start; a < d.start + d.count; a++) {
        const code = exceptions.get(`${d.table}:${a}`);
        if (code !== undefined) {
          socket.write(reply(exceptionAdu(adu, code)));
          return;
        }
      }
      const fc = pdu.readUInt8(0);
      if (fc === 5 || fc === 6 || fc === 15 || fc === 16) {
        const refused = refuseWrite(d);
        if (refused !== null) {
          socket.write(reply(exceptionAdu(adu, refused)));
          return;
        }
        if (d.table === 'holding' && d.start === PEAK_PRESSURE_ADDRESS && d.words?.[0] !== undefined) {
          // The press takes any peak pressure but runs within its range: the register holds the clamped value.
          const clamped = Math.min(PEAK_PRESSURE_RANGE.max, Math.max(PEAK_PRESSURE_RANGE.min, d.words[0]));
          forwarded = Buffer.from(adu);
          forwarded.writeUInt16BE(clamped, 7 + (fc === 6 ? 3 : 6));
        }
        if (d.table === 'holding' && d.start === PACKML_COMMAND_ADDRESS && d.words?.[0] !== undefined) {
          const command = d.words[0];
          setImmediate(() => {
            packml.commandNumber(command);
            press.setEnabled(packml.state === 'Execute');
            publish();
          });
        }
      }
    }
    shim.emit('data', forwarded);
  };

  const reply = (adu: Buffer): Buffer => {
    if (!wrongTid) return adu;
    const out = Buffer.from(adu);
    out.writeUInt16BE((out.readUInt16BE(0) + 1) & 0xffff, 0);
    return out;
  };

  const server = createServer((socket) => {
    sockets.add(socket);
    const shim = Object.assign(new EventEmitter(), {
      write: (buf: Buffer, cb?: () => void) => socket.write(reply(buf), cb),
    });
    let buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      while (buffer.length >= 7) {
        const length = buffer.readUInt16BE(4);
        if (length < 2 || length > 254) {
          socket.destroy();
          return;
        }
        if (buffer.length < 6 + length) return;
        const adu = buffer.subarray(0, 6 + length);
        buffer = buffer.subarray(6 + length);
        onRequest(socket, shim, adu);
      }
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => sockets.delete(socket));
    gate.emit('connection', shim);
  });

  let last = performance.now();
  publish();
  const tick = setInterval(() => {
    const now = performance.now();
    const dt = now - last;
    press.advance(dt);
    packml.advance(dt);
    last = now;
    const target = holding.readUInt16BE(TARGET_SPM_ADDRESS * 2);
    if (target !== press.read('TargetStrokesPerMinute')) press.write('TargetStrokesPerMinute', target);
    const peak = holding.readUInt16BE(PEAK_PRESSURE_ADDRESS * 2);
    if (peak !== press.read('Recipe/PeakPressure')) press.write('Recipe/PeakPressure', peak);
    press.setEnabled(packml.state === 'Execute');
    publish();
  }, opts.tickMs ?? 50);

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;

  return {
    port,
    press,
    packml,
    get connections() {
      return sockets.size;
    },
    faults: {
      exceptionAt: (table, address, code) => exceptions.set(`${table}:${address}`, code),
      clearExceptions: () => exceptions.clear(),
      stall: (on) => (stalled = on),
      wrongTransactionId: (on) => (wrongTid = on),
    },
    stop: async () => {
      clearInterval(tick);
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

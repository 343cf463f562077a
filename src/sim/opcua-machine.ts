/**
 * A simulated PLC as a real OPC UA server (node-opcua): one oven or press of plant-physics.ts,
 * run by a PackML state machine (packml.ts), with counters, alarm bits, writable setpoints and
 * recipe parameters, and on request a bulk of changing Doubles for benchmarks.
 *
 * Address space. Namespace index 1 is the server's own, URI `urn:loom:sim:<machine id>`; every
 * NodeId below is a string NodeId in it (`ns=1;s=Temperature`). Objects › `<machine id>`
 * (`ns=1;s=<machine id>`) holds everything; a `/` in a NodeId is a folder object on the way
 * (`Recipe/Id` is the variable `Id` under the object `ns=1;s=Recipe`).
 *
 * | NodeId                         | type    | access | meaning                                        |
 * |--------------------------------|---------|--------|------------------------------------------------|
 * | Temperature (oven)             | Double  | read   | °C                                             |
 * | Setpoint (oven)                | Double  | write  | °C, 0–300                                      |
 * | Power (oven)                   | Double  | read   | heater, %                                      |
 * | Door (oven)                    | Boolean | read   | open                                           |
 * | Recipe/Id (oven)               | String  | write  | at most 256 characters                         |
 * | Strokes (press)                | UInt32  | read   | strokes since process start (wraps at 2³²)     |
 * | CycleTime (press)              | Double  | read   | last cycle, s                                  |
 * | State (press)                  | String  | read   | Idle, Execute or Stopped (jammed)              |
 * | Pressure (press)               | Double  | read   | bar                                            |
 * | TargetStrokesPerMinute (press) | Double  | write  | 0–120                                          |
 * | Recipe/PeakPressure (press)    | Double  | write  | bar, 50–250                                    |
 * | PackML/State                   | Int32   | read   | PackML state number (packml.ts)                |
 * | PackML/StateName               | String  | read   | PackML state name                              |
 * | PackML/CntrlCmd                | Int32   | write  | a command number runs it; last one accepted    |
 * | PackML/Reset … PackML/Clear    | method  | call   | on the object PackML, no arguments (see below) |
 * | Counters/Good, Counters/Total  | UInt32  | read   | since process start (see `SimulatedPlc`)       |
 * | Alarms/OverTemperature (oven)  | Boolean | read   | Temperature > Setpoint + 15 °C                 |
 * | Alarms/Jam (press)             | Boolean | read   | the press is jammed                            |
 * | Ticks                          | UInt32  | read   | +1 per 100 ms physics tick, 0 at start         |
 * | Load/Value0001 …               | Double  | read   | bulk items (`items`), all change every         |
 * |                                |         |        | `itemIntervalMs`; 4 digits or more             |
 *
 * The methods are Reset, Start, Stop, Hold, Unhold, Suspend, Unsuspend, Abort and Clear.
 *
 * Writes answer BadTypeMismatch for another DataType than the variable's, BadOutOfRange outside
 * the range, BadNotWritable on a read-only variable; a PackML command the current state does not
 * accept answers BadInvalidState (CntrlCmd keeps its value), a number that is no command
 * BadOutOfRange. A read right after a write returns the written value.
 *
 * Values are pushed into the address space when they change, with the physics tick's time as
 * source timestamp. Every variable has MinimumSamplingInterval 0 and the server advertises no
 * sampling floor, so a monitored item asking for sampling interval 0 is exception-based and sees
 * every change (a test counting Ticks sees gaps only where the network lost them); an item asking
 * for a longer interval is sampled at that interval.
 */
import { timingSafeEqual } from 'node:crypto';
import path from 'node:path';
import { format } from 'node:util';
import {
  AttributeIds,
  DataType,
  MessageSecurityMode,
  NumericRange,
  OPCUACertificateManager,
  OPCUAServer,
  SecurityPolicy,
  StatusCodes,
  Variant,
  VariantArrayType,
  setErrorLogger,
  setWarningLogger,
  type ISessionContext,
  type Namespace,
  type StatusCode,
  type UAObject,
  type UAVariable,
  type WriteValueOptions,
} from 'node-opcua';
import pino, { type Logger } from 'pino';
import {
  PACKML_COMMANDS,
  PackmlStateMachine,
  isPackmlState,
  type PackmlCommand,
  type PackmlOutcome,
  type PackmlState,
  type PackmlStateMachineOptions,
} from './packml.ts';
import {
  LoadGenerator,
  Oven,
  Press,
  seededRandom,
  type MetricValue,
  type WriteOutcome,
} from './plant-physics.ts';

export type SimulatedPlcKind = 'oven' | 'press';

export interface SimulatedPlcOptions {
  readonly kind: SimulatedPlcKind;
  /** Seed of the physics' random numbers. Default 1. */
  readonly seed?: number;
  /** PackML state at start. Default Execute: the machine works from the first tick. */
  readonly initialState?: PackmlState;
  /** Duration of PackML acting states (Starting, Holding, …), ms. Default 500. */
  readonly actingMs?: PackmlStateMachineOptions['actingMs'];
  /** Press: chance that a stroke jams it (plant-physics.ts). Default 0.002. */
  readonly jamProbability?: number;
}

/** Within this distance of the setpoint when the door opens, an oven batch counts as good. */
const OVEN_GOOD_BATCH_C = 10;
/** Above Setpoint + this, the oven raises OverTemperature. */
export const OVER_TEMPERATURE_MARGIN_C = 15;

/**
 * One simulated machine as its PLC sees it: the physics, its PackML state and the counters and
 * alarm bits derived from both. Pure, no I/O and no clock, driven by `advance(dtMs)`.
 *
 * The physics only works in Execute: the oven's heater controls only then (otherwise it cools
 * toward ambient), the press only strokes then.
 *
 * Counters: the press counts every stroke in Total and every stroke but one that jams the press in
 * Good. The oven counts a batch per door cycle (open, then closed) that began in Execute: Total
 * always, Good when the temperature was within 10 °C of the setpoint as the door opened.
 */
export class SimulatedPlc {
  readonly kind: SimulatedPlcKind;
  readonly physics: Oven | Press;
  readonly packml: PackmlStateMachine;
  #good = 0;
  #total = 0;
  #doorWasOpen = false;
  /** Whether the batch whose door is open now is good; undefined: no batch being counted. */
  #batchGood: boolean | undefined;
  #lastStrokes = 0;
  #wasJammed = false;

  constructor(opts: SimulatedPlcOptions) {
    this.kind = opts.kind;
    const random = seededRandom(opts.seed ?? 1);
    this.physics =
      opts.kind === 'oven'
        ? new Oven({ random })
        : new Press({
            random,
            ...(opts.jamProbability !== undefined ? { jamProbability: opts.jamProbability } : {}),
          });
    this.packml = new PackmlStateMachine({
      initial: opts.initialState ?? 'Execute',
      ...(opts.actingMs !== undefined ? { actingMs: opts.actingMs } : {}),
    });
    this.#follow();
  }

  get good(): number {
    return this.#good;
  }

  get total(): number {
    return this.#total;
  }

  get overTemperature(): boolean {
    return (
      this.physics instanceof Oven &&
      this.physics.trueTemperature > (this.physics.read('Setpoint') as number) + OVER_TEMPERATURE_MARGIN_C
    );
  }

  get jammed(): boolean {
    return this.physics instanceof Press && this.physics.state === 'Stopped';
  }

  advance(dtMs: number): void {
    this.packml.advance(dtMs);
    this.#follow();
    this.physics.advance(dtMs);
    this.#count();
  }

  command(command: PackmlCommand): PackmlOutcome {
    const r = this.packml.command(command);
    this.#follow();
    return r;
  }

  commandNumber(n: number): PackmlOutcome {
    const r = this.packml.commandNumber(n);
    this.#follow();
    return r;
  }

  read(metric: string): MetricValue {
    return this.physics.read(metric);
  }

  write(metric: string, value: MetricValue): WriteOutcome {
    return this.physics.write(metric, value);
  }

  #follow(): void {
    this.physics.setEnabled(this.packml.state === 'Execute');
  }

  #count(): void {
    if (this.physics instanceof Oven) {
      const open = this.physics.read('Door') as boolean;
      if (open && !this.#doorWasOpen && this.packml.state === 'Execute') {
        const off = Math.abs(this.physics.trueTemperature - (this.physics.read('Setpoint') as number));
        this.#batchGood = off <= OVEN_GOOD_BATCH_C;
      }
      if (!open && this.#doorWasOpen && this.#batchGood !== undefined) {
        this.#total++;
        if (this.#batchGood) this.#good++;
        this.#batchGood = undefined;
      }
      this.#doorWasOpen = open;
      return;
    }
    const strokes = this.physics.read('Strokes') as number;
    const made = strokes - this.#lastStrokes;
    const jammed = this.jammed;
    const scrap = jammed && !this.#wasJammed && made > 0 ? 1 : 0;
    this.#total += made;
    this.#good += made - scrap;
    this.#lastStrokes = strokes;
    this.#wasJammed = jammed;
  }
}

export type OpcUaSecurityMode = 'None' | 'Sign' | 'SignAndEncrypt';
export type OpcUaSecurityPolicy = 'Basic256Sha256' | 'Aes128_Sha256_RsaOaep' | 'Aes256_Sha256_RsaPss';

export const OPCUA_SECURITY_MODES: readonly OpcUaSecurityMode[] = ['None', 'Sign', 'SignAndEncrypt'];
export const OPCUA_SECURITY_POLICIES: readonly OpcUaSecurityPolicy[] = [
  'Basic256Sha256',
  'Aes128_Sha256_RsaOaep',
  'Aes256_Sha256_RsaPss',
];

const SECURITY_MODE: Readonly<Record<OpcUaSecurityMode, MessageSecurityMode>> = {
  None: MessageSecurityMode.None,
  Sign: MessageSecurityMode.Sign,
  SignAndEncrypt: MessageSecurityMode.SignAndEncrypt,
};
const SECURITY_POLICY: Readonly<Record<OpcUaSecurityPolicy, SecurityPolicy>> = {
  Basic256Sha256: SecurityPolicy.Basic256Sha256,
  Aes128_Sha256_RsaOaep: SecurityPolicy.Aes128_Sha256_RsaOaep,
  Aes256_Sha256_RsaPss: SecurityPolicy.Aes256_Sha256_RsaPss,
};

export interface OpcUaMachineOptions {
  readonly kind: SimulatedPlcKind;
  /** The machine id (`oven-2`): name of its object and part of the namespace URI. */
  readonly machineId: string;
  /** TCP port; 0 (default): a free one. */
  readonly port?: number;
  /** Address to listen on and to put in the endpoint URL. Default 127.0.0.1. */
  readonly host?: string;
  readonly seed?: number;
  /**
   * The server's PKI folder (own/, trusted/, rejected/, issuers/). The self-signed certificate
   * (own/certs/certificate.pem, application URI `urn:loom:sim:<machine id>`) is made there on the
   * first start, which takes a few seconds, and reused afterwards: one folder per machine id.
   */
  readonly pkiDir: string;
  /** Security modes to offer. Default all three; a secured mode comes with every policy below. */
  readonly securityModes?: readonly OpcUaSecurityMode[];
  /** Security policies of the Sign and SignAndEncrypt endpoints. Default all three. */
  readonly securityPolicies?: readonly OpcUaSecurityPolicy[];
  /** Anonymous sessions allowed. Default true. */
  readonly allowAnonymous?: boolean;
  /** The one user name and password accepted, if any. */
  readonly user?: { readonly username: string; readonly password: string };
  /**
   * Accept only client certificates in the PKI's trusted/ folder. Default false: a simulator
   * trusts every client certificate it sees (and files it under trusted/), so a test or the demo
   * connects securely without exchanging certificates first.
   */
  readonly requireTrustedClients?: boolean;
  /** PackML state at start. Default Execute, so the demo shows changing data at once. */
  readonly initialState?: PackmlState;
  /** Duration of PackML acting states, ms. Default 500. */
  readonly actingMs?: PackmlStateMachineOptions['actingMs'];
  /** Number of bulk items `Load/ValueNNNN`. Default 0. */
  readonly items?: number;
  /** How often every bulk item changes, ms. Default 100. */
  readonly itemIntervalMs?: number;
  /** Receives node-opcua's own warnings and errors too (they are process-wide). Default silent. */
  readonly logger?: Logger;
}

export interface OpcUaMachine {
  /** `opc.tcp://<host>:<port>`. */
  readonly endpointUrl: string;
  readonly port: number;
  /** The server certificate, PEM: trust it in a client that checks server certificates. */
  readonly certificateFile: string;
  readonly namespaceUri: string;
  /** The machine behind the server, for tests: open the oven's door, jam the press. */
  readonly plc: SimulatedPlc;
  /** Physics ticks since start (the value of `Ticks`). */
  readonly ticks: number;
  /** Bulk item changes pushed into the address space since start. */
  readonly itemUpdates: number;
  stop(): Promise<void>;
}

/** The physics period, and how often `Ticks` counts up. */
export const TICK_MS = 100;

export const namespaceUriOf = (machineId: string): string => `urn:loom:sim:${machineId}`;

/**
 * node-opcua writes its warnings and errors straight to the console through process-wide hooks;
 * the latest started machine's logger receives them. The Node 20 note about RSA PKCS#1 v1.5
 * (NODE-OPCUA-W27, printed at import) concerns only the deprecated Basic128Rsa15 policy, which the
 * sim does not offer: it goes to debug.
 */
let nodeOpcuaLog: Logger = pino({ level: 'silent' });
const KNOWN_NOISE = /NODE-OPCUA-W27\] node version|--security-revert=CVE-2023-46809/;
setWarningLogger((...args: unknown[]) => {
  const message = format(...args.slice(1));
  if (KNOWN_NOISE.test(message)) nodeOpcuaLog.debug(message);
  else nodeOpcuaLog.warn(message);
});
setErrorLogger((...args: unknown[]) => nodeOpcuaLog.error(format(...args.slice(1))));

const sameSecret = (a: string, b: string): boolean => {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
};

const REFUSAL_STATUS: Readonly<Record<Exclude<WriteOutcome, { ok: true }>['reason'], StatusCode>> = {
  'unknown-metric': StatusCodes.BadNodeIdUnknown,
  'read-only': StatusCodes.BadNotWritable,
  'wrong-type': StatusCodes.BadTypeMismatch,
  'out-of-range': StatusCodes.BadOutOfRange,
};

type PointValue = number | boolean | string;

/** One variable the sim pushes into the address space, and how a write to it is applied. */
interface Point {
  readonly nodeId: string;
  readonly dataType: DataType;
  readonly read: () => PointValue;
  /** Checks and applies a write of the variable's own DataType; absent: read-only. */
  readonly write?: (value: PointValue) => StatusCode;
  /** The value last pushed, so unchanged values are not pushed again. */
  published?: PointValue;
  variable?: UAVariable;
}

function pushValue(p: Point, value: PointValue, now: Date): void {
  p.published = value;
  p.variable!.setValueFromSource(new Variant({ dataType: p.dataType, value }), StatusCodes.Good, now);
}

/**
 * Lets `accept` refuse a write before node-opcua stores it. A bound setter is no place for that:
 * node-opcua keeps a refused value as the variable's value (with the Bad status), and subscribers
 * would see it.
 */
function guardWrites(variable: UAVariable, accept: (value: Variant) => StatusCode): void {
  const write = variable.writeAttribute.bind(variable) as (
    context: Parameters<UAVariable['writeAttribute']>[0],
    writeValue: WriteValueOptions,
    callback: (err: Error | null, statusCode?: StatusCode) => void,
  ) => void;
  const guarded = (
    context: Parameters<UAVariable['writeAttribute']>[0],
    writeValue: WriteValueOptions,
    callback?: (err: Error | null, statusCode?: StatusCode) => void,
  ): Promise<StatusCode> | undefined => {
    const run = (done: (err: Error | null, statusCode?: StatusCode) => void): void => {
      const variant = writeValue.value?.value;
      const isValue =
        writeValue.attributeId === undefined || writeValue.attributeId === Number(AttributeIds.Value);
      const range = writeValue.indexRange;
      const whole =
        range === undefined || range === null || (range instanceof NumericRange && range.isEmpty());
      if (isValue && whole && variant instanceof Variant) {
        const status = accept(variant);
        if (status.isNotGood()) {
          done(null, status);
          return;
        }
      }
      write(context, writeValue, done);
    };
    if (callback) {
      run(callback);
      return undefined;
    }
    return new Promise((resolve, reject) =>
      run((err, s) => (err ? reject(err) : resolve(s ?? StatusCodes.Good))),
    );
  };
  Object.assign(variable, { writeAttribute: guarded });
}

/** Starts the server; resolves once it listens. */
export async function startOpcUaMachine(opts: OpcUaMachineOptions): Promise<OpcUaMachine> {
  const host = opts.host ?? '127.0.0.1';
  const wildcard = host === '0.0.0.0' || host === '::';
  const items = opts.items ?? 0;
  const itemIntervalMs = opts.itemIntervalMs ?? 100;
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(opts.machineId)) {
    throw new RangeError(`machine id '${opts.machineId}': letters, digits, '.', '_' and '-', at most 64`);
  }
  if (!Number.isInteger(items) || items < 0 || items > 1_000_000) {
    throw new RangeError(`items ${items}: a whole number from 0 to 1000000`);
  }
  if (!Number.isInteger(itemIntervalMs) || itemIntervalMs < 10) {
    throw new RangeError(`item interval ${itemIntervalMs} ms: a whole number ≥ 10`);
  }
  const allowAnonymous = opts.allowAnonymous ?? true;
  if (!allowAnonymous && !opts.user)
    throw new RangeError('no anonymous access and no user: nobody could log in');
  const log = (opts.logger ?? pino({ level: 'silent' })).child({ machine: opts.machineId });
  nodeOpcuaLog = log.child({ component: 'node-opcua' });

  const plc = new SimulatedPlc({
    kind: opts.kind,
    seed: opts.seed ?? 1,
    ...(opts.initialState ? { initialState: opts.initialState } : {}),
    ...(opts.actingMs !== undefined ? { actingMs: opts.actingMs } : {}),
  });
  const namespaceUri = namespaceUriOf(opts.machineId);
  const serverCertificateManager = new OPCUACertificateManager({
    rootFolder: opts.pkiDir,
    automaticallyAcceptUnknownCertificate: !(opts.requireTrustedClients ?? false),
  });
  // node-opcua offers X.509 user tokens on every endpoint; with nothing trusted here, none is
  // accepted. The folder must be given, else node-opcua makes one in the user's home.
  const userCertificateManager = new OPCUACertificateManager({
    rootFolder: path.join(opts.pkiDir, 'user-pki'),
    automaticallyAcceptUnknownCertificate: false,
  });
  const user = opts.user;
  const server = new OPCUAServer({
    port: opts.port ?? 0,
    host,
    // Listening on every interface, the endpoints carry the machine's name (node-opcua's default).
    ...(wildcard ? {} : { hostname: host }),
    serverInfo: {
      applicationUri: namespaceUri,
      productUri: 'urn:loom:sim',
      applicationName: { text: `Loom simulated ${opts.kind} ${opts.machineId}`, locale: 'en' },
    },
    buildInfo: { productName: 'Loom PLC simulator', manufacturerName: 'Loom' },
    serverCertificateManager,
    userCertificateManager,
    securityModes: (opts.securityModes ?? OPCUA_SECURITY_MODES).map((m) => SECURITY_MODE[m]),
    securityPolicies: (opts.securityPolicies ?? OPCUA_SECURITY_POLICIES).map((p) => SECURITY_POLICY[p]),
    allowAnonymous,
    userManager: {
      isValidUser: (username: string, password: string) =>
        user !== undefined && sameSecret(username, user.username) && sameSecret(password, user.password),
    },
    // No sampling floor: an item asking for interval 0 receives every change (see the top).
    serverCapabilities: { minSupportedSampleRate: 0 },
  });
  await server.initialize();
  const addressSpace = server.engine.addressSpace!;
  const namespace = addressSpace.getOwnNamespace();
  if (namespace.index !== 1 || namespace.namespaceUri !== namespaceUri) {
    throw new Error(
      `own namespace is ${namespace.index} ${namespace.namespaceUri}, expected 1 ${namespaceUri}`,
    );
  }
  const machine = namespace.addObject({
    organizedBy: addressSpace.rootFolder.objects,
    browseName: opts.machineId,
    nodeId: `s=${opts.machineId}`,
  });

  const tick = { count: 0 };
  let lastCommand = 0;
  const points: Point[] = [];
  const physicsPoints = plc.physics.metrics.map((m): Point => ({
    nodeId: m.name,
    // The press counts strokes as a Sparkplug Int64; a UInt32 (4 billion strokes) serves a PLC.
    dataType: m.name === 'Strokes' ? DataType.UInt32 : DataType[m.datatype],
    read: m.name === 'Strokes' ? () => (plc.read(m.name) as number) >>> 0 : () => plc.read(m.name),
    ...(m.writable
      ? {
          write: (value: PointValue) => {
            const r = plc.write(m.name, value);
            if (r.ok) return StatusCodes.Good;
            // The DataType was checked already: what the machine calls the wrong type here is a
            // value it cannot take (a String over 256 characters, NaN).
            return r.reason === 'wrong-type' ? StatusCodes.BadOutOfRange : REFUSAL_STATUS[r.reason];
          },
        }
      : {}),
  }));
  const runCommand = (r: PackmlOutcome): StatusCode => {
    if (!r.ok) {
      log.info({ state: r.state }, r.message);
      return StatusCodes.BadInvalidState;
    }
    log.info({ from: r.from, to: r.to }, 'PackML state changed');
    publish(new Date());
    return StatusCodes.Good;
  };
  points.push(
    ...physicsPoints,
    { nodeId: 'PackML/State', dataType: DataType.Int32, read: () => plc.packml.stateNumber },
    { nodeId: 'PackML/StateName', dataType: DataType.String, read: () => plc.packml.state },
    {
      nodeId: 'PackML/CntrlCmd',
      dataType: DataType.Int32,
      read: () => lastCommand,
      write: (value) => {
        const n = value as number;
        if (n < 1 || n > PACKML_COMMANDS.length) return StatusCodes.BadOutOfRange;
        const status = runCommand(plc.commandNumber(n));
        if (status.isGood()) lastCommand = n;
        return status;
      },
    },
    { nodeId: 'Counters/Good', dataType: DataType.UInt32, read: () => plc.good >>> 0 },
    { nodeId: 'Counters/Total', dataType: DataType.UInt32, read: () => plc.total >>> 0 },
    plc.kind === 'oven'
      ? { nodeId: 'Alarms/OverTemperature', dataType: DataType.Boolean, read: () => plc.overTemperature }
      : { nodeId: 'Alarms/Jam', dataType: DataType.Boolean, read: () => plc.jammed },
    { nodeId: 'Ticks', dataType: DataType.UInt32, read: () => tick.count >>> 0 },
  );

  const folders = new Map<string, UAObject>([['', machine]]);
  const folderOf = (nodeId: string): UAObject => {
    const at = nodeId.lastIndexOf('/');
    const key = at < 0 ? '' : nodeId.slice(0, at);
    let folder = folders.get(key);
    if (!folder) {
      folder = namespace.addObject({
        componentOf: folderOf(key),
        browseName: key.slice(key.lastIndexOf('/') + 1),
        nodeId: `s=${key}`,
      });
      folders.set(key, folder);
    }
    return folder;
  };
  const now0 = new Date();
  for (const p of points) addVariable(namespace, folderOf(p.nodeId), p, now0);

  const packmlObject = folderOf('PackML/State');
  for (const command of PACKML_COMMANDS) {
    const method = namespace.addMethod(packmlObject, {
      browseName: command,
      nodeId: `s=PackML/${command}`,
      inputArguments: [],
      outputArguments: [],
    });
    // node-opcua tells the promise form from the callback form by the number of parameters.
    method.bindMethod(async (_inputArguments: Variant[], _context: ISessionContext) => ({
      statusCode: runCommand(plc.command(command)),
    }));
  }

  const load = items > 0 ? new LoadGenerator(items, seededRandom((opts.seed ?? 1) + 1)) : undefined;
  const loadPoints: Point[] = [];
  if (load) {
    const width = Math.max(4, String(items).length);
    load.metrics.forEach((m, i) => {
      const p: Point = {
        nodeId: `Load/Value${String(i + 1).padStart(width, '0')}`,
        dataType: DataType.Double,
        read: () => load.read(m.name),
      };
      loadPoints.push(p);
      addVariable(namespace, folderOf(p.nodeId), p, now0);
    });
  }

  function publish(now: Date): void {
    for (const p of points) {
      const v = p.read();
      if (v !== p.published) pushValue(p, v, now);
    }
  }

  let last = performance.now();
  const physicsTimer = setInterval(() => {
    const t = performance.now();
    plc.advance(t - last);
    last = t;
    tick.count++;
    publish(new Date());
  }, TICK_MS);

  let itemUpdates = 0;
  let lastLoad = performance.now();
  const loadTimer = load
    ? setInterval(() => {
        const t = performance.now();
        load.advance(t - lastLoad);
        lastLoad = t;
        const now = new Date();
        for (const p of loadPoints) pushValue(p, p.read(), now);
        itemUpdates += loadPoints.length;
      }, itemIntervalMs)
    : undefined;

  try {
    await server.start();
  } catch (e) {
    clearInterval(physicsTimer);
    clearInterval(loadTimer);
    await server.shutdown(0).catch(() => undefined);
    throw e;
  }
  const port = server.endpoints[0]!.port;
  const endpointUrl = wildcard
    ? server.getEndpointUrl()
    : `opc.tcp://${host.includes(':') ? `[${host}]` : host}:${port}`;
  log.info({ endpointUrl, certificateFile: server.certificateFile, items }, 'OPC UA machine listening');

  return {
    endpointUrl,
    port,
    certificateFile: server.certificateFile,
    namespaceUri,
    plc,
    get ticks() {
      return tick.count;
    },
    get itemUpdates() {
      return itemUpdates;
    },
    stop: async () => {
      clearInterval(physicsTimer);
      clearInterval(loadTimer);
      await server.shutdown(0);
    },
  };
}

function addVariable(namespace: Namespace, parent: UAObject, p: Point, now: Date): void {
  const writable = p.write !== undefined;
  const variable = namespace.addVariable({
    componentOf: parent,
    browseName: p.nodeId.slice(p.nodeId.lastIndexOf('/') + 1),
    nodeId: `s=${p.nodeId}`,
    dataType: p.dataType,
    accessLevel: writable ? 'CurrentRead | CurrentWrite' : 'CurrentRead',
    userAccessLevel: writable ? 'CurrentRead | CurrentWrite' : 'CurrentRead',
    minimumSamplingInterval: 0,
  });
  p.variable = variable;
  pushValue(p, p.read(), now);
  const write = p.write;
  if (write) {
    guardWrites(variable, (variant) => {
      if (variant.dataType !== p.dataType || variant.arrayType !== VariantArrayType.Scalar)
        return StatusCodes.BadTypeMismatch;
      const status = write(variant.value as PointValue);
      // What node-opcua stores next is the written value, which the machine now holds too.
      if (status.isGood()) p.published = p.read();
      return status;
    });
  }
}

/** Command-line settings of one machine, as `loom sim opcua` and opcua-machine-main.ts take them. */
export interface OpcUaMachineArgs {
  readonly kind?: string;
  readonly id?: string;
  readonly port?: string;
  readonly host?: string;
  readonly seed?: string;
  /** Default `<dataDir>/sim-opcua/<id>`. */
  readonly pkiDir?: string;
  readonly initialState?: string;
  readonly items?: string;
  readonly itemIntervalMs?: string;
  /** Comma-separated `OpcUaSecurityMode`s. */
  readonly securityModes?: string;
  /** Comma-separated `OpcUaSecurityPolicy`s. */
  readonly securityPolicies?: string;
  readonly anonymous?: boolean;
  readonly requireTrustedClients?: boolean;
}

export type ParsedOpcUaMachineArgs =
  | { readonly ok: true; readonly options: Omit<OpcUaMachineOptions, 'user' | 'logger'> }
  | { readonly ok: false; readonly message: string };

/** Checks command-line settings; says what is wrong with the first bad one. */
export function parseOpcUaMachineArgs(a: OpcUaMachineArgs, dataDir = './loom-data'): ParsedOpcUaMachineArgs {
  const bad = (message: string): ParsedOpcUaMachineArgs => ({ ok: false, message });
  const whole = (flag: string, v: string | undefined, lo: number, hi: number): number | string => {
    const n = Number(v);
    return v !== undefined && v.trim() !== '' && Number.isInteger(n) && n >= lo && n <= hi
      ? n
      : `${flag} ${v}: a whole number from ${lo} to ${hi}`;
  };
  const list = <T extends string>(flag: string, v: string, allowed: readonly T[]): T[] | string => {
    const xs = v.split(',').map((x) => x.trim());
    const wrong = xs.find((x) => !(allowed as readonly string[]).includes(x));
    return wrong === undefined ? (xs as T[]) : `${flag} ${wrong}: one of ${allowed.join(', ')}`;
  };
  const kind = a.kind ?? 'oven';
  if (kind !== 'oven' && kind !== 'press') return bad(`--kind ${kind}: oven or press`);
  const id = a.id ?? `${kind}-1`;
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(id)) {
    return bad(`--id ${id}: letters, digits, '.', '_' and '-', at most 64`);
  }
  const port = whole('--port', a.port ?? '0', 0, 65535);
  if (typeof port === 'string') return bad(port);
  const seed = whole('--seed', a.seed ?? '1', -(2 ** 31), 2 ** 32 - 1);
  if (typeof seed === 'string') return bad(seed);
  const items = whole('--items', a.items ?? '0', 0, 1_000_000);
  if (typeof items === 'string') return bad(items);
  const itemIntervalMs = whole('--item-interval-ms', a.itemIntervalMs ?? '100', 10, 3_600_000);
  if (typeof itemIntervalMs === 'string') return bad(itemIntervalMs);
  const initialState = a.initialState ?? 'Execute';
  if (!isPackmlState(initialState))
    return bad(`--initial-state ${initialState}: a PackML state name such as Idle`);
  const securityModes =
    a.securityModes === undefined
      ? undefined
      : list('--security-modes', a.securityModes, OPCUA_SECURITY_MODES);
  if (typeof securityModes === 'string') return bad(securityModes);
  const securityPolicies =
    a.securityPolicies === undefined
      ? undefined
      : list('--security-policies', a.securityPolicies, OPCUA_SECURITY_POLICIES);
  if (typeof securityPolicies === 'string') return bad(securityPolicies);
  return {
    ok: true,
    options: {
      kind,
      machineId: id,
      port,
      host: a.host ?? '127.0.0.1',
      seed,
      pkiDir: a.pkiDir ?? path.join(dataDir, 'sim-opcua', id),
      initialState,
      items,
      itemIntervalMs,
      allowAnonymous: a.anonymous ?? true,
      requireTrustedClients: a.requireTrustedClients ?? false,
      ...(securityModes ? { securityModes } : {}),
      ...(securityPolicies ? { securityPolicies } : {}),
    },
  };
}

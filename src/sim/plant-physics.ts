/**
 * Simulated machines for the simulated plant: plain state and physics, no I/O and no clock. The
 * caller advances each machine by the time that passed (`advance(dtMs)`), so a test drives them
 * with a fixed clock and a seed and gets the same numbers every run.
 */

/** Sparkplug B datatype names (Sparkplug 3.0 §6.4.16) of the metrics these machines publish. */
export type MetricDatatype = 'Int32' | 'Int64' | 'Float' | 'Double' | 'Boolean' | 'String';

export type MetricValue = number | boolean | string;

export interface MachineMetric {
  /** Sparkplug metric name, `/` allowed (`Recipe/Id`). */
  readonly name: string;
  readonly datatype: MetricDatatype;
  /** Engineering unit (`°C`, `%`, `bar`, `s`, `1/min`), informative. */
  readonly unit?: string;
  /** Accepts writes (DCMD): setpoints and recipe parameters. */
  readonly writable?: boolean;
  /** Report by exception: a numeric change smaller than this is not reported. 0 or absent: any change. */
  readonly deadband?: number;
  /** Range a write must fall in (numeric writable metrics). */
  readonly min?: number;
  readonly max?: number;
}

export type WriteRefusal = 'unknown-metric' | 'read-only' | 'wrong-type' | 'out-of-range';

export type WriteOutcome =
  | { readonly ok: true; readonly value: MetricValue }
  | { readonly ok: false; readonly reason: WriteRefusal; readonly message: string };

export interface SimulatedMachine {
  /** `oven`, `press`, `load`. */
  readonly kind: string;
  /** Every metric the machine reports, in a stable order. */
  readonly metrics: readonly MachineMetric[];
  /** Moves the machine `dtMs` milliseconds forward. */
  advance(dtMs: number): void;
  /** The current reading of a metric (as a sensor would report it: with noise, rounded). */
  read(name: string): MetricValue;
  /** Applies a write to a writable metric, or says why not. */
  write(name: string, value: MetricValue): WriteOutcome;
}

/** Deterministic pseudo-random numbers (mulberry32): same seed, same sequence. */
export interface Random {
  /** Uniform in [0, 1). */
  next(): number;
  /** Standard normal (mean 0, deviation 1). */
  normal(): number;
}

export function seededRandom(seed: number): Random {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    normal: () => {
      const u = 1 - next();
      const v = next();
      return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
    },
  };
}

const round = (v: number, digits: number): number => {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
};

const clamp = (v: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, v));

/** Checks a write against the metric's declaration; returns the value to apply or the refusal. */
function checkWrite(metrics: readonly MachineMetric[], name: string, value: MetricValue): WriteOutcome {
  const m = metrics.find((x) => x.name === name);
  if (!m) return { ok: false, reason: 'unknown-metric', message: `no metric '${name}'` };
  if (!m.writable) return { ok: false, reason: 'read-only', message: `'${name}' is read-only` };
  switch (m.datatype) {
    case 'Boolean':
      return typeof value === 'boolean'
        ? { ok: true, value }
        : { ok: false, reason: 'wrong-type', message: `'${name}' takes a Boolean` };
    case 'String':
      return typeof value === 'string' && value.length <= 256
        ? { ok: true, value }
        : { ok: false, reason: 'wrong-type', message: `'${name}' takes a String of at most 256 characters` };
    case 'Int32':
    case 'Int64':
    case 'Float':
    case 'Double': {
      if (typeof value !== 'number' || !Number.isFinite(value)) {
        return { ok: false, reason: 'wrong-type', message: `'${name}' takes a finite number` };
      }
      if ((m.datatype === 'Int32' || m.datatype === 'Int64') && !Number.isInteger(value)) {
        return { ok: false, reason: 'wrong-type', message: `'${name}' takes a whole number` };
      }
      if ((m.min !== undefined && value < m.min) || (m.max !== undefined && value > m.max)) {
        return {
          ok: false,
          reason: 'out-of-range',
          message: `'${name}' must be from ${m.min ?? '-∞'} to ${m.max ?? '∞'}${m.unit ? ` ${m.unit}` : ''}`,
        };
      }
      return { ok: true, value };
    }
  }
}

export interface OvenOptions {
  /** °C at start and of the surroundings. Default 22. */
  readonly ambientC?: number;
  /** Initial setpoint, °C. Default 180. */
  readonly setpointC?: number;
  /** The door opens by itself about once per 10 minutes (loading a batch). Default true. */
  readonly autoDoor?: boolean;
  readonly random: Random;
}

/** Exponentially distributed wait with the given mean: the gap between random events. */
const exponential = (random: Random, meanMs: number): number => -Math.log(1 - random.next()) * meanMs;

/**
 * A convection oven. Thermal model: C·dT/dt = heater − loss, i.e.
 * dT/dt = r·P/100 − (T − T_amb)/τ, with r the heating rate at full power and τ the loss time
 * constant (4× shorter while the door is open). The heater is a feedforward + proportional
 * controller, so the temperature settles on the setpoint with first-order inertia, overshoot-free.
 * Within a sub-step of at most 1 s the power is constant and the ODE is solved exactly. Random
 * events are drawn per event, not per step, so one long step equals many short ones.
 */
export class Oven implements SimulatedMachine {
  readonly kind = 'oven';
  static readonly HEAT_RATE_C_PER_S = 2;
  static readonly LOSS_TAU_S = 300;
  static readonly KP_PERCENT_PER_C = 8;
  static readonly DOOR_MEAN_INTERVAL_MS = 600_000;
  readonly metrics: readonly MachineMetric[] = [
    { name: 'Temperature', datatype: 'Double', unit: '°C', deadband: 0.1 },
    { name: 'Setpoint', datatype: 'Double', unit: '°C', writable: true, min: 0, max: 300 },
    { name: 'Power', datatype: 'Double', unit: '%', deadband: 0.5 },
    { name: 'Door', datatype: 'Boolean' },
    { name: 'Recipe/Id', datatype: 'String', writable: true },
  ];
  #temperature: number;
  #setpoint: number;
  #power = 0;
  #doorOpen = false;
  #recipe = '';
  #noise = 0;
  #elapsedMs = 0;
  #enabled = true;
  /** Elapsed time of the next automatic door event (open, or close when open); Infinity: none. */
  #doorEventAt: number;
  readonly #autoDoor: boolean;
  readonly #ambient: number;
  readonly #events: Random;
  readonly #sensor: Random;

  constructor(opts: OvenOptions) {
    this.#ambient = opts.ambientC ?? 22;
    this.#temperature = this.#ambient;
    this.#setpoint = opts.setpointC ?? 180;
    this.#autoDoor = opts.autoDoor ?? true;
    this.#events = opts.random;
    this.#sensor = seededRandom(Math.floor(opts.random.next() * 2 ** 32));
    this.#doorEventAt = this.#autoDoor
      ? exponential(this.#events, Oven.DOOR_MEAN_INTERVAL_MS)
      : Number.POSITIVE_INFINITY;
  }

  /** The modelled temperature without sensor noise. */
  get trueTemperature(): number {
    return this.#temperature;
  }

  /** Whether the heater controls the temperature (see `setEnabled`). */
  get enabled(): boolean {
    return this.#enabled;
  }

  /**
   * Switches the heater's controller on or off, as a PackML Execute state does: while off the
   * power is 0 and the oven cools toward ambient. On by default.
   */
  setEnabled(on: boolean): void {
    this.#enabled = on;
  }

  /** Opens or closes the door (an operator, or a test). An opened door stays open until closed here. */
  setDoor(open: boolean): void {
    this.#doorOpen = open;
    this.#doorEventAt =
      open || !this.#autoDoor
        ? Number.POSITIVE_INFINITY
        : this.#elapsedMs + exponential(this.#events, Oven.DOOR_MEAN_INTERVAL_MS);
  }

  advance(dtMs: number): void {
    let left = Math.max(0, dtMs);
    while (left > 0) {
      const stepMs = Math.min(left, 1000);
      left -= stepMs;
      this.#elapsedMs += stepMs;
      if (this.#elapsedMs >= this.#doorEventAt) this.#doorEvent();
      const tau = Oven.LOSS_TAU_S / (this.#doorOpen ? 4 : 1);
      const feedforward = ((this.#setpoint - this.#ambient) / (Oven.HEAT_RATE_C_PER_S * tau)) * 100;
      this.#power = this.#enabled
        ? clamp(feedforward + Oven.KP_PERCENT_PER_C * (this.#setpoint - this.#temperature), 0, 100)
        : 0;
      const equilibrium = this.#ambient + (Oven.HEAT_RATE_C_PER_S * this.#power * tau) / 100;
      this.#temperature = equilibrium + (this.#temperature - equilibrium) * Math.exp(-stepMs / 1000 / tau);
    }
    this.#noise = this.#sensor.normal() * 0.03;
  }

  /** Open for 10 to 30 s, then closed until the next opening. */
  #doorEvent(): void {
    this.#doorOpen = !this.#doorOpen;
    this.#doorEventAt =
      this.#elapsedMs +
      (this.#doorOpen
        ? 10_000 + this.#events.next() * 20_000
        : exponential(this.#events, Oven.DOOR_MEAN_INTERVAL_MS));
  }

  read(name: string): MetricValue {
    switch (name) {
      case 'Temperature':
        return round(this.#temperature + this.#noise, 2);
      case 'Setpoint':
        return this.#setpoint;
      case 'Power':
        return round(this.#power, 1);
      case 'Door':
        return this.#doorOpen;
      case 'Recipe/Id':
        return this.#recipe;
      default:
        throw new RangeError(`oven has no metric '${name}'`);
    }
  }

  write(name: string, value: MetricValue): WriteOutcome {
    const r = checkWrite(this.metrics, name, value);
    if (!r.ok) return r;
    if (name === 'Setpoint') this.#setpoint = r.value as number;
    if (name === 'Recipe/Id') this.#recipe = r.value as string;
    return r;
  }
}

/** PackML-derived states the press reports (DESIGN.md "Equipment state"). */
export type PressState = 'Idle' | 'Execute' | 'Stopped';

export interface PressOptions {
  /** Initial TargetStrokesPerMinute. Default 30 (a 2 s cycle). */
  readonly strokesPerMinute?: number;
  /** Chance that a stroke jams the press (Stopped for 5 to 20 s, then it resumes). Default 0.002. */
  readonly jamProbability?: number;
  readonly random: Random;
}

/**
 * A hydraulic press. It runs (Execute) while TargetStrokesPerMinute > 0 and is Idle at 0. Each
 * cycle takes 60/spm seconds ± 3 %; each completed cycle adds a stroke and reports its duration
 * as CycleTime. The pressure follows a sin² profile up to the recipe's peak during a cycle and
 * rests near 5 bar otherwise. A rare jam stops the press for a while.
 */
export class Press implements SimulatedMachine {
  readonly kind = 'press';
  readonly metrics: readonly MachineMetric[] = [
    { name: 'Strokes', datatype: 'Int64' },
    { name: 'CycleTime', datatype: 'Double', unit: 's', deadband: 0.01 },
    { name: 'State', datatype: 'String' },
    { name: 'Pressure', datatype: 'Double', unit: 'bar', deadband: 1 },
    { name: 'TargetStrokesPerMinute', datatype: 'Double', unit: '1/min', writable: true, min: 0, max: 120 },
    { name: 'Recipe/PeakPressure', datatype: 'Double', unit: 'bar', writable: true, min: 50, max: 250 },
  ];
  #strokes = 0;
  #cycleTimeS = 0;
  #targetSpm: number;
  #peakBar = 180;
  /** Fraction of the current cycle done, 0..1. */
  #phase = 0;
  #cycleElapsedMs = 0;
  /** This cycle's speed factor (±3 %). */
  #jitter = 1;
  #stoppedLeftMs = 0;
  #pressure = 5;
  #enabled = true;
  readonly #jamProbability: number;
  readonly #random: Random;
  readonly #sensor: Random;

  constructor(opts: PressOptions) {
    this.#targetSpm = opts.strokesPerMinute ?? 30;
    this.#jamProbability = opts.jamProbability ?? 0.002;
    this.#random = opts.random;
    this.#sensor = seededRandom(Math.floor(opts.random.next() * 2 ** 32));
    this.#jitter = this.#nextJitter();
  }

  get state(): PressState {
    if (this.#stoppedLeftMs > 0) return 'Stopped';
    return this.#enabled && this.#targetSpm > 0 ? 'Execute' : 'Idle';
  }

  /** Whether the press may stroke (see `setEnabled`). */
  get enabled(): boolean {
    return this.#enabled;
  }

  /**
   * Lets the press stroke or not, as a PackML Execute state does: while off it is Idle and a
   * cycle in progress waits where it is. On by default. A jam runs out either way.
   */
  setEnabled(on: boolean): void {
    this.#enabled = on;
  }

  /** Jams the press now for `forMs` (a test, or a demo of a stoppage). */
  jam(forMs: number): void {
    this.#stoppedLeftMs = forMs;
  }

  #nextJitter(): number {
    return 1 + (this.#random.next() * 2 - 1) * 0.03;
  }

  advance(dtMs: number): void {
    let left = Math.max(0, dtMs);
    while (left > 0) {
      if (this.#stoppedLeftMs > 0) {
        const d = Math.min(left, this.#stoppedLeftMs);
        this.#stoppedLeftMs -= d;
        left -= d;
        continue;
      }
      if (this.#targetSpm <= 0 || !this.#enabled) break;
      const cycleMs = (60_000 / this.#targetSpm) * this.#jitter;
      const d = Math.min(left, (1 - this.#phase) * cycleMs);
      left -= d;
      this.#cycleElapsedMs += d;
      this.#phase += d / cycleMs;
      if (this.#phase >= 1 - 1e-9) {
        this.#strokes++;
        this.#cycleTimeS = round(this.#cycleElapsedMs / 1000, 3);
        this.#phase = 0;
        this.#cycleElapsedMs = 0;
        this.#jitter = this.#nextJitter();
        if (this.#random.next() < this.#jamProbability)
          this.#stoppedLeftMs = 5_000 + this.#random.next() * 15_000;
      }
    }
    const running = this.state === 'Execute';
    const base = running ? 5 + (this.#peakBar - 5) * Math.sin(Math.PI * this.#phase) ** 2 : 5;
    this.#pressure = Math.max(0, base + this.#sensor.normal() * 0.5);
  }

  read(name: string): MetricValue {
    switch (name) {
      case 'Strokes':
        return this.#strokes;
      case 'CycleTime':
        return this.#cycleTimeS;
      case 'State':
        return this.state;
      case 'Pressure':
        return round(this.#pressure, 1);
      case 'TargetStrokesPerMinute':
        return this.#targetSpm;
      case 'Recipe/PeakPressure':
        return this.#peakBar;
      default:
        throw new RangeError(`press has no metric '${name}'`);
    }
  }

  write(name: string, value: MetricValue): WriteOutcome {
    const r = checkWrite(this.metrics, name, value);
    if (!r.ok) return r;
    if (name === 'TargetStrokesPerMinute') this.#targetSpm = r.value as number;
    if (name === 'Recipe/PeakPressure') this.#peakBar = r.value as number;
    return r;
  }
}

/**
 * The benchmark device: `count` Double metrics (`Value 0001`…), each a random walk that moves on
 * every `advance`, so report-by-exception reports all of them every interval.
 */
export class LoadGenerator implements SimulatedMachine {
  readonly kind = 'load';
  readonly metrics: readonly MachineMetric[];
  readonly #values: Float64Array;
  readonly #index = new Map<string, number>();
  readonly #random: Random;

  constructor(count: number, random: Random) {
    if (!Number.isInteger(count) || count < 1) throw new RangeError(`metric count must be ≥ 1, got ${count}`);
    this.#random = random;
    const width = Math.max(4, String(count).length);
    this.metrics = Array.from({ length: count }, (_, i) => ({
      name: `Value ${String(i + 1).padStart(width, '0')}`,
      datatype: 'Double' as const,
    }));
    this.metrics.forEach((m, i) => this.#index.set(m.name, i));
    this.#values = Float64Array.from({ length: count }, () => random.next() * 100);
  }

  advance(dtMs: number): void {
    if (dtMs <= 0) return;
    for (let i = 0; i < this.#values.length; i++) {
      // A step of exactly 0 has probability 0; nudge anyway so every metric changes every advance.
      const step = this.#random.normal() * 0.1 || 1e-6;
      this.#values[i] = this.#values[i]! + step;
    }
  }

  read(name: string): MetricValue {
    const i = this.#index.get(name);
    if (i === undefined) throw new RangeError(`load generator has no metric '${name}'`);
    return this.#values[i]!;
  }

  write(name: string, value: MetricValue): WriteOutcome {
    return checkWrite(this.metrics, name, value);
  }
}

/**
 * The PackML base state model (ANSI/ISA-TR88.00.02-2015): 17 states, 9 control commands, and a
 * state machine that a simulated machine drives. Pure: no I/O and no clock. Acting states (the
 * "-ing" states) end by themselves after a while, as on a real machine; the caller moves time
 * forward with `advance(dtMs)`, so a test runs it with a fixed clock.
 *
 * The name↔number tables are the PackTags numbering (`Status.StateCurrent`, `Command.CntrlCmd`),
 * the numbers a PLC exchanges; the command gateway uses the same tables.
 */

import {
  PACKML_COMMAND_NUMBERS as GATEWAY_COMMAND_NUMBERS,
  PACKML_STATE_NUMBERS,
  statesAccepting,
  type PackmlCommand as GatewayCommand,
  type PackmlState,
} from '../domain/equipment/packml-states.ts';

// The numbering and the transition table are the domain's (what the command gateway checks):
// one table, so the simulator cannot drift from what Loom believes a PLC accepts.
export { PACKML_STATE_NUMBERS, type PackmlState };
export type PackmlStateNumber = (typeof PACKML_STATE_NUMBERS)[PackmlState];

/** PackML control commands by their OPC UA method names (`Start`), with PackTags `CntrlCmd` numbers. */
export type PackmlCommand = Capitalize<GatewayCommand>;
export const PACKML_COMMAND_NUMBERS = Object.fromEntries(
  Object.entries(GATEWAY_COMMAND_NUMBERS).map(([name, n]) => [name[0]!.toUpperCase() + name.slice(1), n]),
) as { readonly [K in GatewayCommand as Capitalize<K>]: (typeof GATEWAY_COMMAND_NUMBERS)[K] };
export type PackmlCommandNumber = (typeof PACKML_COMMAND_NUMBERS)[PackmlCommand];

const invert = <K extends string, N extends number>(table: Readonly<Record<K, N>>): ReadonlyMap<number, K> =>
  new Map(Object.entries(table).map(([name, n]) => [n as N, name as K]));

/** State number → state name. */
export const PACKML_STATE_NAMES: ReadonlyMap<number, PackmlState> = invert(PACKML_STATE_NUMBERS);
/** Command number → command name. */
export const PACKML_COMMAND_NAMES: ReadonlyMap<number, PackmlCommand> = invert(PACKML_COMMAND_NUMBERS);

export const PACKML_STATES = Object.keys(PACKML_STATE_NUMBERS) as readonly PackmlState[];
export const PACKML_COMMANDS = Object.keys(PACKML_COMMAND_NUMBERS) as readonly PackmlCommand[];

export function isPackmlState(name: string): name is PackmlState {
  return Object.hasOwn(PACKML_STATE_NUMBERS, name);
}

export function isPackmlCommand(name: string): name is PackmlCommand {
  return Object.hasOwn(PACKML_COMMAND_NUMBERS, name);
}

/**
 * The acting states that end on their own (State Complete, "SC"), each with the state it ends in.
 * Execute is an acting state in TR88.00.02 too, but it ends only when the machine says its work is
 * done (`complete()`), never by time.
 */
export const PACKML_STATE_COMPLETE = {
  Clearing: 'Stopped',
  Starting: 'Execute',
  Stopping: 'Stopped',
  Aborting: 'Aborted',
  Holding: 'Held',
  Unholding: 'Execute',
  Suspending: 'Suspended',
  Unsuspending: 'Execute',
  Resetting: 'Idle',
  Completing: 'Complete',
} as const satisfies Partial<Record<PackmlState, PackmlState>>;

export type PackmlTimedState = keyof typeof PACKML_STATE_COMPLETE;

export function isTimedState(state: PackmlState): state is PackmlTimedState {
  return Object.hasOwn(PACKML_STATE_COMPLETE, state);
}

/** The acting state each command leads to (the "-ing" state of the TR88.00.02 diagram). */
const ACTING_STATE: Readonly<Record<PackmlCommand, PackmlState>> = {
  Reset: 'Resetting',
  Start: 'Starting',
  Stop: 'Stopping',
  Hold: 'Holding',
  Unhold: 'Unholding',
  Suspend: 'Suspending',
  Unsuspend: 'Unsuspending',
  Abort: 'Aborting',
  Clear: 'Clearing',
};

/**
 * The state a command leads to from `state`, or undefined when the base state model has no such
 * transition (the domain's table: src/domain/equipment/packml-states.ts). The optional 2015
 * extension (Hold from Suspended, Suspending and Unsuspending) is not modelled.
 */
export function packmlTransition(state: PackmlState, command: PackmlCommand): PackmlState | undefined {
  return statesAccepting(command.toLowerCase() as GatewayCommand).includes(state)
    ? ACTING_STATE[command]
    : undefined;
}

/** The commands the base state model accepts in `state`, in command-number order. */
export function allowedPackmlCommands(state: PackmlState): readonly PackmlCommand[] {
  return PACKML_COMMANDS.filter((c) => packmlTransition(state, c) !== undefined);
}

export type PackmlOutcome =
  | { readonly ok: true; readonly from: PackmlState; readonly to: PackmlState }
  | { readonly ok: false; readonly state: PackmlState; readonly message: string };

export interface PackmlStateMachineOptions {
  /** State at construction. Default Idle. */
  readonly initial?: PackmlState;
  /**
   * How long each timed acting state lasts before it completes, ms: one value for all, or per
   * state (states left out take 500). Default 500.
   */
  readonly actingMs?: number | Partial<Readonly<Record<PackmlTimedState, number>>>;
}

const DEFAULT_ACTING_MS = 500;

/**
 * One unit/machine's PackML state. Commands act at once (the machine enters the acting state);
 * `advance` completes acting states when their time is up, possibly several in one call.
 */
export class PackmlStateMachine {
  #state: PackmlState;
  /** Time left in the current timed acting state, ms. */
  #leftMs = 0;
  readonly #actingMs: (s: PackmlTimedState) => number;

  constructor(opts: PackmlStateMachineOptions = {}) {
    const acting = opts.actingMs ?? DEFAULT_ACTING_MS;
    this.#actingMs = typeof acting === 'number' ? () => acting : (s) => acting[s] ?? DEFAULT_ACTING_MS;
    for (const ms of typeof acting === 'number' ? [acting] : Object.values(acting)) {
      if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`acting time must be ≥ 0 ms, got ${ms}`);
    }
    this.#state = opts.initial ?? 'Idle';
    this.#enter(this.#state);
  }

  get state(): PackmlState {
    return this.#state;
  }

  get stateNumber(): PackmlStateNumber {
    return PACKML_STATE_NUMBERS[this.#state];
  }

  /** Applies a control command, or says why it does not apply in the current state. */
  command(command: PackmlCommand): PackmlOutcome {
    const from = this.#state;
    const to = packmlTransition(from, command);
    if (to === undefined) {
      return { ok: false, state: from, message: `${command} is not allowed in ${from}` };
    }
    this.#enter(to);
    return { ok: true, from, to };
  }

  /** Applies a command by its CntrlCmd number. */
  commandNumber(n: number): PackmlOutcome {
    const command = PACKML_COMMAND_NAMES.get(n);
    if (command === undefined) {
      return { ok: false, state: this.#state, message: `${n} is not a PackML command number (1-9)` };
    }
    return this.command(command);
  }

  /** The machine's work is done (Execute's State Complete): Execute → Completing. */
  complete(): PackmlOutcome {
    const from = this.#state;
    if (from !== 'Execute') return { ok: false, state: from, message: `Complete is not possible in ${from}` };
    this.#enter('Completing');
    return { ok: true, from, to: 'Completing' };
  }

  /** Moves `dtMs` forward, completing acting states whose time is up. */
  advance(dtMs: number): void {
    let left = Math.max(0, dtMs);
    while (isTimedState(this.#state) && left >= this.#leftMs) {
      left -= this.#leftMs;
      this.#enter(PACKML_STATE_COMPLETE[this.#state]);
    }
    if (isTimedState(this.#state)) this.#leftMs -= left;
  }

  #enter(state: PackmlState): void {
    this.#state = state;
    this.#leftMs = isTimedState(state) ? this.#actingMs(state) : 0;
  }
}

import { fail, ok, type Result } from '../shared/result.ts';

/**
 * The PackML state model (ANSI/ISA-TR88.00.02-2015) as the command gateway needs it: the state
 * numbers a PLC reports (PackTag `Status.StateCurrent`), the control commands it takes
 * (`Command.CntrlCmd`) and the states each command is accepted in. The simulated PLCs
 * (src/sim/packml.ts) use these tables too; the domain depends on nothing outside it.
 */
export const PACKML_STATE_NUMBERS = {
  Clearing: 1,
  Stopped: 2,
  Starting: 3,
  Idle: 4,
  Suspended: 5,
  Execute: 6,
  Stopping: 7,
  Aborting: 8,
  Aborted: 9,
  Holding: 10,
  Held: 11,
  Unholding: 12,
  Suspending: 13,
  Unsuspending: 14,
  Resetting: 15,
  Completing: 16,
  Complete: 17,
} as const;
export type PackmlState = keyof typeof PACKML_STATE_NUMBERS;

const STATE_BY_NUMBER: ReadonlyMap<number, PackmlState> = new Map(
  Object.entries(PACKML_STATE_NUMBERS).map(([name, no]) => [no, name as PackmlState]),
);
const STATE_BY_NAME: ReadonlyMap<string, PackmlState> = new Map(
  Object.keys(PACKML_STATE_NUMBERS).map((name) => [name.toLowerCase(), name as PackmlState]),
);

/** `Command.CntrlCmd` values (TR88.00.02 Table 6); 0 is "undefined" and never sent. */
export const PACKML_COMMAND_NUMBERS = {
  reset: 1,
  start: 2,
  stop: 3,
  hold: 4,
  unhold: 5,
  suspend: 6,
  unsuspend: 7,
  abort: 8,
  clear: 9,
} as const;
export type PackmlCommand = keyof typeof PACKML_COMMAND_NUMBERS;

const ALL_STATES = Object.keys(PACKML_STATE_NUMBERS) as PackmlState[];

/**
 * The states each command is accepted in, and the acting state it leads to (the TR88.00.02 state
 * diagram). Stop is accepted everywhere except in the stopping/aborting/clearing branch; Abort
 * everywhere except while aborting or aborted.
 */
const TRANSITIONS: Readonly<Record<PackmlCommand, { from: readonly PackmlState[]; to: PackmlState }>> = {
  reset: { from: ['Complete', 'Stopped'], to: 'Resetting' },
  start: { from: ['Idle'], to: 'Starting' },
  stop: {
    from: ALL_STATES.filter((s) => !['Stopped', 'Stopping', 'Aborting', 'Aborted', 'Clearing'].includes(s)),
    to: 'Stopping',
  },
  hold: { from: ['Execute'], to: 'Holding' },
  unhold: { from: ['Held'], to: 'Unholding' },
  suspend: { from: ['Execute'], to: 'Suspending' },
  unsuspend: { from: ['Suspended'], to: 'Unsuspending' },
  abort: { from: ALL_STATES.filter((s) => s !== 'Aborting' && s !== 'Aborted'), to: 'Aborting' },
  clear: { from: ['Aborted'], to: 'Clearing' },
};

/** The states in which `command` is accepted. */
export const statesAccepting = (command: PackmlCommand): readonly PackmlState[] => TRANSITIONS[command].from;

/**
 * A PackML state from what a state signal carries: a state name (any case) or its number 1–17.
 * Null for anything else, including 0 ("undefined") and a missing value.
 */
export function parsePackmlState(value: unknown): PackmlState | null {
  if (typeof value === 'number') return Number.isInteger(value) ? (STATE_BY_NUMBER.get(value) ?? null) : null;
  if (typeof value === 'string') {
    const t = value.trim();
    if (/^\d{1,2}$/.test(t)) return STATE_BY_NUMBER.get(Number(t)) ?? null;
    return STATE_BY_NAME.get(t.toLowerCase()) ?? null;
  }
  return null;
}

/** Where `command` leads from `state`, or a refusal that names the state and where it is accepted. */
export function packmlTransition(
  state: PackmlState,
  command: PackmlCommand,
  equipment: string,
): Result<PackmlState> {
  const t = TRANSITIONS[command];
  if (t.from.includes(state)) return ok(t.to);
  return fail(
    'LOOM_COMMAND_TRANSITION_REFUSED',
    `${equipment} is in PackML state ${state}; ${command} is accepted only in ${listStates(t.from)}.`,
    { details: { currentState: state, acceptedIn: t.from } },
  );
}

/** "Idle", "Idle or Stopped", "Idle, Held or Stopped". */
export function listStates(states: readonly string[]): string {
  if (states.length <= 1) return states.join('');
  return `${states.slice(0, -1).join(', ')} or ${states.at(-1)}`;
}

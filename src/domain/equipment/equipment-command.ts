import { z } from 'zod';
import type { Role } from '../auth/roles.ts';
import { atPath, describeValue, parseAt } from '../shared/field-issues.ts';
import { Identifier, unlessMissing } from '../shared/fields.ts';
import { fail, ok, type FieldIssue, type Result } from '../shared/result.ts';
import type { Signal } from '../signal/signal.ts';
import { PACKML_COMMAND_NUMBERS, listStates, type PackmlCommand, type PackmlState } from './packml-states.ts';

/**
 * A command to a machine through the command gateway (issue #6, DESIGN.md flow 5): a setpoint, a
 * recipe download (several parameters written together), or a PackML state command.
 */
export const PACKML_COMMAND_KINDS = [
  'start',
  'stop',
  'hold',
  'unhold',
  'reset',
  'abort',
  'clear',
] as const satisfies readonly PackmlCommand[];
export type PackmlCommandKind = (typeof PACKML_COMMAND_KINDS)[number];

export const COMMAND_KINDS = ['setpoint', 'recipe', ...PACKML_COMMAND_KINDS] as const;
export type CommandKind = (typeof COMMAND_KINDS)[number];

export const isPackmlKind = (kind: CommandKind): kind is PackmlCommandKind =>
  (PACKML_COMMAND_KINDS as readonly string[]).includes(kind);

/**
 * Who may send what. Setpoints and recipes change what the machine makes and how: engineers,
 * supervisors and admins. Running the machine through its state model is the floor's job as well.
 */
const PROCESS_ROLES: readonly Role[] = ['engineer', 'supervisor', 'admin'];
const PACKML_ROLES: readonly Role[] = ['operator', 'supervisor', 'engineer', 'admin'];
export const rolesFor = (kind: CommandKind): readonly Role[] =>
  isPackmlKind(kind) ? PACKML_ROLES : PROCESS_ROLES;
/** Every role that may send some command. */
export const COMMAND_ROLES: readonly Role[] = [...new Set([...PROCESS_ROLES, ...PACKML_ROLES])];

/** The PackML states in which a recipe may be downloaded: the machine is not making anything. */
export const RECIPE_PERMITTED_STATES: readonly PackmlState[] = ['Idle', 'Stopped'];

/** A value written to a signal: its data type decides which of the three. */
export type CommandValue = number | boolean | string;

const Value = z.union([z.number(), z.boolean(), z.string().max(1000)], {
  error: unlessMissing('must be a number, true or false, or text (at most 1000 characters)'),
});
const Reason = z
  .string({
    error: (i) =>
      i.input === undefined
        ? 'is required: say why the command is sent (the audit trail keeps it)'
        : 'must be text saying why the command is sent',
  })
  .trim()
  .min(1, 'must not be empty: say why the command is sent (the audit trail keeps it)')
  .max(1000);
const Signature = z.strictObject(
  {
    password: z.string().min(1).max(1024),
    meaning: z.string().trim().min(1).max(200),
  },
  {
    error: (i) =>
      i.input === undefined
        ? 'is required: a recipe download is a recipe change; re-enter your password and state what you sign (meaning)'
        : undefined,
  },
);
const Parameter = z.strictObject({ signal: Identifier, value: Value });

const SetpointCommand = z.strictObject({
  kind: z.literal('setpoint'),
  signal: Identifier,
  value: Value,
  reason: Reason,
});
const RecipeCommand = z.strictObject({
  kind: z.literal('recipe'),
  /** The recipe's id or name, as the batch record shows it. */
  recipe: z.string().trim().min(1).max(200),
  parameters: z.array(Parameter).min(1).max(100),
  /** The operation (`/api/operations/:id`) the recipe is for, so its batch record shows it. */
  operation: z.number().int().min(1).optional(),
  reason: Reason,
  signature: Signature,
});
const StateCommand = z.strictObject({ kind: z.enum(PACKML_COMMAND_KINDS), reason: Reason });

export type SetpointCommand = z.output<typeof SetpointCommand>;
export type RecipeCommand = z.output<typeof RecipeCommand>;
export type StateCommand = z.output<typeof StateCommand>;
export type EquipmentCommand = SetpointCommand | RecipeCommand | StateCommand;

const invalid = (issues: readonly FieldIssue[]) =>
  fail(
    'LOOM_COMMAND_INVALID',
    `The command cannot be sent as it is: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`,
    { issues },
  );

/** The kind of a command body, before anything else is checked (the kind decides who may send it). */
export function commandKindOf(input: unknown): Result<CommandKind> {
  const kind = (input as { kind?: unknown } | null)?.kind;
  if ((COMMAND_KINDS as readonly unknown[]).includes(kind)) return ok(kind as CommandKind);
  return invalid([
    {
      path: 'kind',
      message: `kind ${kind === undefined ? 'is required' : `must be one of ${COMMAND_KINDS.join(', ')}; got ${describeValue(kind)}`}`,
    },
  ]);
}

/** The command body, checked for shape: every missing or malformed field is one issue. */
export function parseCommand(input: unknown): Result<EquipmentCommand> {
  const kind = commandKindOf(input);
  if (!kind.ok) return kind;
  const schema =
    kind.value === 'setpoint' ? SetpointCommand : kind.value === 'recipe' ? RecipeCommand : StateCommand;
  const parsed = parseAt(schema, input, '', 'command');
  return parsed.ok ? ok(parsed.value) : invalid(parsed.issues);
}

/** One value to write, and where in the command it was asked for (`parameters[2]`). */
export interface PlannedWrite {
  readonly path: string;
  readonly signal: Signal;
  readonly value: CommandValue;
}

/** What the gateway checks on the machine right before writing. */
export type StateCheck =
  | { readonly kind: 'interlock'; readonly permitted: readonly PackmlState[] }
  | { readonly kind: 'transition'; readonly command: PackmlCommand };

export interface CommandPlan {
  readonly writes: readonly PlannedWrite[];
  /** The equipment's PackML state signal, read fresh before writing; null when nothing is checked. */
  readonly stateSignal: Signal | null;
  readonly check: StateCheck | null;
}

/**
 * Checks a command against the equipment's signals and says what to write: each signal belongs to
 * the equipment, is writable, takes a value of its type within its limits, and appears once. A
 * PackML command needs the equipment's PackML command and state signals; a recipe its state signal
 * (no state, no interlock, no download).
 */
export function planCommand(
  command: EquipmentCommand,
  equipment: string,
  signals: readonly Signal[],
): Result<CommandPlan> {
  const own = signals.filter((s) => s.equipment === equipment);
  const stateSignal = own.find((s) => s.packml === 'state') ?? null;
  switch (command.kind) {
    case 'start':
    case 'stop':
    case 'hold':
    case 'unhold':
    case 'reset':
    case 'abort':
    case 'clear':
      return planStateCommand(command.kind, equipment, own, stateSignal);
    case 'setpoint': {
      const issues = checkWrite(own, equipment, command.signal, command.value, '');
      if (issues.length > 0) return invalid(issues);
      const signal = own.find((s) => s.id === command.signal)!;
      return ok({ writes: [{ path: '', signal, value: command.value }], stateSignal: null, check: null });
    }
    case 'recipe': {
      const issues: FieldIssue[] = [];
      const first = new Map<string, number>();
      command.parameters.forEach((p, i) => {
        const at = atPath('parameters', i);
        const seen = first.get(p.signal);
        if (seen !== undefined) {
          issues.push({
            path: atPath(at, 'signal'),
            message: `signal '${p.signal}' repeats parameters[${seen}]; a recipe writes each signal once — remove one of them`,
          });
          return;
        }
        first.set(p.signal, i);
        issues.push(...checkWrite(own, equipment, p.signal, p.value, at));
      });
      if (issues.length > 0) return invalid(issues);
      if (stateSignal === null) {
        return fail(
          'LOOM_COMMAND_NO_PACKML_SIGNAL',
          `${equipment} has no PackML state signal, so its state cannot be checked before a recipe download (no state, no interlock, no download). Declare the signal that carries its PackML state with packml: state.`,
          { details: { equipment, missing: 'state' } },
        );
      }
      return ok({
        writes: command.parameters.map((p, i) => ({
          path: atPath('parameters', i),
          signal: own.find((s) => s.id === p.signal)!,
          value: p.value,
        })),
        stateSignal,
        check: { kind: 'interlock', permitted: RECIPE_PERMITTED_STATES },
      });
    }
  }
}

function planStateCommand(
  kind: PackmlCommandKind,
  equipment: string,
  own: readonly Signal[],
  stateSignal: Signal | null,
): Result<CommandPlan> {
  const commandSignal = own.find((s) => s.packml === 'command');
  if (commandSignal === undefined) {
    return fail(
      'LOOM_COMMAND_NO_PACKML_SIGNAL',
      `${equipment} has no PackML command signal to write ${kind} to. Declare the signal that takes its CntrlCmd with packml: command and writable: true.`,
      { details: { equipment, missing: 'command' } },
    );
  }
  if (commandSignal.dataType !== 'number') {
    return fail(
      'LOOM_COMMAND_NO_PACKML_SIGNAL',
      `The PackML command signal '${commandSignal.id}' of ${equipment} is a ${commandSignal.dataType} signal; CntrlCmd values are numbers, so declare it with dataType: number.`,
      { details: { equipment, missing: 'command' } },
    );
  }
  if (stateSignal === null) {
    return fail(
      'LOOM_COMMAND_NO_PACKML_SIGNAL',
      `${equipment} has no PackML state signal, so ${kind} cannot be checked against the PackML state model. Declare the signal that carries its PackML state with packml: state.`,
      { details: { equipment, missing: 'state' } },
    );
  }
  return ok({
    writes: [{ path: 'kind', signal: commandSignal, value: PACKML_COMMAND_NUMBERS[kind] }],
    stateSignal,
    check: { kind: 'transition', command: kind },
  });
}

function checkWrite(
  own: readonly Signal[],
  equipment: string,
  id: string,
  value: CommandValue,
  at: string,
): FieldIssue[] {
  const signalAt = atPath(at, 'signal');
  const valueAt = atPath(at, 'value');
  const signal = own.find((s) => s.id === id);
  if (signal === undefined) {
    const writable = own.filter((s) => s.writable && s.packml === undefined).map((s) => s.id);
    return [
      {
        path: signalAt,
        message: `signal '${id}' is not a signal of ${equipment}; ${writable.length > 0 ? `its writable signals are ${writable.join(', ')}` : `${equipment} has no writable signals (declare one with writable: true)`}`,
      },
    ];
  }
  if (signal.packml === 'command') {
    return [
      {
        path: signalAt,
        message: `signal '${id}' is the PackML command signal of ${equipment}; send kind start, stop, hold, unhold, reset, abort or clear instead, so the state model is checked`,
      },
    ];
  }
  if (!signal.writable) {
    return [
      {
        path: signalAt,
        message: `signal '${id}' is read-only (writable: false in the plant model); only signals declared writable: true take setpoints and recipe parameters`,
      },
    ];
  }
  if (typeof value !== signal.dataType) {
    const word = { number: 'a number', boolean: 'true or false', string: 'text' }[signal.dataType];
    return [
      {
        path: valueAt,
        message: `value must be ${word}: '${id}' is a ${signal.dataType} signal; got ${describeValue(value)}`,
      },
    ];
  }
  const { low, high } = signal.limits ?? {};
  if (
    typeof value === 'number' &&
    ((low !== undefined && value < low) || (high !== undefined && value > high))
  ) {
    const range =
      low !== undefined && high !== undefined
        ? `from ${low} to ${high}`
        : low !== undefined
          ? `at least ${low}`
          : `at most ${high}`;
    return [
      {
        path: valueAt,
        message: `value must be ${range}${signal.unit ? ` ${signal.unit}` : ''} (the limits of '${id}'); got ${value}`,
      },
    ];
  }
  return [];
}

/**
 * How far a value read back after writing may be from the value written and still count as
 * equal: float32 keeps a 24-bit significand, so a written value comes back within half a unit in
 * the last place (2^-24 relative); allow one unit (2^-23). Values of a register with a scale are
 * whole steps (checked before writing) and come back within double rounding, far inside it.
 */
export const FLOAT32_RELATIVE_TOLERANCE = 2 ** -23;

export interface ReadBackComparison {
  readonly matches: boolean;
  /** readBack − requested, for numbers; null otherwise or when nothing was read back. */
  readonly difference: number | null;
}

/** Compares a value read back after writing with the value requested. */
export function compareReadBack(requested: CommandValue, readBack: CommandValue | null): ReadBackComparison {
  if (typeof requested === 'number' && typeof readBack === 'number') {
    const difference = readBack - requested;
    const tolerance = Math.max(Math.abs(requested), Math.abs(readBack)) * FLOAT32_RELATIVE_TOLERANCE;
    return { matches: Math.abs(difference) <= tolerance, difference };
  }
  return { matches: readBack !== null && readBack === requested, difference: null };
}

/** What happened to one value of a command. */
export type ParameterStatus =
  /** Written, and read back equal to the value requested. */
  | 'confirmed'
  /** Written, but the machine runs another value (it clamped or rounded it). */
  | 'variance'
  /** The write (or its read-back) failed: it may or may not have reached the machine. */
  | 'failed'
  /** Not sent: an earlier write failed, or the command was refused. */
  | 'not-sent';

export type CommandOutcome = 'requested' | 'confirmed' | 'variance' | 'failed' | 'refused';

/** The outcome of a command whose writes all ran (or stopped at a failure). */
export function outcomeOf(statuses: readonly ParameterStatus[]): 'confirmed' | 'variance' | 'failed' {
  if (statuses.some((s) => s === 'failed' || s === 'not-sent')) return 'failed';
  return statuses.some((s) => s === 'variance') ? 'variance' : 'confirmed';
}

/** The refusal of a recipe download in a state that does not permit it. */
export function interlockRefusal(equipment: string, state: PackmlState, permitted: readonly PackmlState[]) {
  return fail(
    'LOOM_COMMAND_INTERLOCK',
    `${equipment} is in PackML state ${state}; a recipe download needs it ${listStates(permitted)}. Bring it to ${listStates(permitted)} first.`,
    { details: { currentState: state, permittedStates: permitted } },
  );
}

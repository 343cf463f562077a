import type { CommandKind, CommandOutcome } from '../../domain/equipment/equipment-command.ts';
import type { CommandError, CommandRecord, ParameterResult, StateReading } from './command-ports.ts';

/** A command as the API shows it: times as ISO strings, the signature without its signer id. */
export interface CommandView {
  readonly id: string;
  readonly equipment: string;
  readonly kind: CommandKind;
  /** What was asked for: `{signal, value}`, `{recipe, parameters, operation?}`, or `{}` for PackML. */
  readonly request: Readonly<Record<string, unknown>>;
  readonly reason: string;
  readonly requestedBy: string;
  readonly signature: {
    readonly signerName: string;
    readonly meaning: string;
    readonly signedAt: string;
    readonly recordHash: string;
  } | null;
  /** The operation (id) a recipe was downloaded for. */
  readonly operation: number | null;
  readonly requestedAt: string;
  readonly finishedAt: string | null;
  readonly outcome: CommandOutcome;
  /** The PackML state read before writing (recipes and PackML commands). */
  readonly state: StateReading | null;
  /** One entry per value written: requested, before, read back, difference, status. */
  readonly results: readonly ParameterResult[];
  readonly error: CommandError | null;
}

export const commandView = (c: CommandRecord): CommandView => ({
  id: c.id,
  equipment: c.equipment,
  kind: c.kind,
  request: c.request,
  reason: c.reason,
  requestedBy: c.requestedBy.username,
  signature: c.signature
    ? {
        signerName: c.signature.signerName,
        meaning: c.signature.meaning,
        signedAt: c.signature.signedAt,
        recordHash: c.signature.recordHash,
      }
    : null,
  operation: c.operationPk,
  requestedAt: c.requestedAt.toISOString(),
  finishedAt: c.finishedAt?.toISOString() ?? null,
  outcome: c.outcome,
  state: c.state,
  results: c.results,
  error: c.error,
});

import type {
  CommandKind,
  CommandOutcome,
  CommandValue,
  ParameterStatus,
} from '../../domain/equipment/equipment-command.ts';
import type { PackmlState } from '../../domain/equipment/packml-states.ts';
import type { SampleQuality } from '../../domain/signal/sample.ts';
import type { Signal } from '../../domain/signal/signal.ts';
import type { ElectronicSignature, Tx } from '../ports.ts';

/** Why a connector could not read or write. */
export interface ConnectorError {
  /** The connector's own code (`LOOM_MODBUS_TIMEOUT`, `LOOM_SPARKPLUG_DEVICE_OFFLINE`, …). */
  readonly code: string;
  readonly message: string;
  /**
   * `disconnected`: the peer is not connected, the request was not sent (or the link dropped
   * under it). `unconfirmed`: it was sent but no answer came, so whether it took effect is
   * unknown. `failed`: the peer refused it, or it could not be sent as asked.
   */
  readonly kind: 'disconnected' | 'unconfirmed' | 'failed';
}

/** A value read from a machine. */
export interface ReadValue {
  readonly value: CommandValue | null;
  readonly quality: SampleQuality;
  /** Source timestamp, UTC epoch ms, when known. */
  readonly at: number | null;
  /**
   * `device`: read from the device at this moment. `live`: the latest value Loom received, for
   * sources that offer no read (Sparkplug: a value arrives only when the edge reports it).
   */
  readonly via: 'device' | 'live';
}

export type ConnectorRead =
  { readonly ok: true; readonly value: ReadValue } | { readonly ok: false; readonly error: ConnectorError };

export type ConnectorWrite =
  | { readonly ok: true; readonly readBack: CommandValue | null; readonly via: 'device' | 'live' }
  | { readonly ok: false; readonly error: ConnectorError };

/** One value to write to one signal. */
export interface SignalWrite {
  readonly signal: Signal;
  readonly value: CommandValue;
}

/**
 * What the command gateway needs from a connector (Modbus, OPC UA, Sparkplug): a read of the
 * device as it is now, and writes that are confirmed by reading the value back.
 */
export interface EquipmentConnector {
  /**
   * Why `value` cannot be written to `signal` through this connector (it does not fit the
   * register's type or scale), checked before anything is sent; null when it can.
   */
  check(signal: Signal, value: CommandValue): string | null;
  read(signal: Signal): Promise<ConnectorRead>;
  /**
   * Writes the values in order and reads each back. Values of one device may travel in one
   * message (a Sparkplug DCMD). One result per value, in order, up to and including the first
   * failure: values after it are not sent. Never queues a write for later.
   */
  write(writes: readonly SignalWrite[]): Promise<ConnectorWrite[]>;
}

/** Routes each signal to the connector of its source. */
export interface CommandConnectors {
  /** The connector that reaches the signal's source, or why none does. */
  for(signal: Signal): EquipmentConnector | { readonly unavailable: string };
}

/** What became of one value of a command: requested, found before, read back after. */
export interface ParameterResult {
  readonly signal: string;
  readonly requested: CommandValue;
  /** The value before writing, where it could be read (null: not read, or no value). */
  readonly before: CommandValue | null;
  readonly readBack: CommandValue | null;
  /** readBack − requested, for numbers read back. */
  readonly difference: number | null;
  readonly status: ParameterStatus;
  /** How the read-back was had: a device read, or the value the source reported (Sparkplug DDATA). */
  readonly readBackVia: 'device' | 'live' | null;
  readonly error: { readonly code: string; readonly message: string } | null;
}

/** The PackML state as read right before writing. */
export interface StateReading {
  readonly signal: string;
  readonly value: CommandValue | null;
  /** Null when the value is no PackML state. */
  readonly state: PackmlState | null;
  readonly via: 'device' | 'live';
  /** Source timestamp, ISO 8601, when known. */
  readonly at: string | null;
}

export interface CommandError {
  readonly code: string;
  readonly message: string;
  readonly details: Readonly<Record<string, unknown>> | null;
}

/** A command as stored (`equipment_commands`): the intent, and its outcome once known. */
export interface CommandRecord {
  readonly id: string;
  /** Insertion order, for paging. */
  readonly no: number;
  readonly equipment: string;
  readonly kind: CommandKind;
  /** The body without kind, reason and signature: what was asked for. */
  readonly request: Readonly<Record<string, unknown>>;
  readonly reason: string;
  readonly requestedBy: { readonly userId: number | null; readonly username: string };
  readonly signature: ElectronicSignature | null;
  readonly operationPk: number | null;
  readonly requestedAt: Date;
  readonly finishedAt: Date | null;
  readonly outcome: CommandOutcome;
  readonly state: StateReading | null;
  readonly results: readonly ParameterResult[];
  readonly error: CommandError | null;
  readonly idempotency: { readonly scope: string; readonly key: string; readonly requestHash: string } | null;
  readonly requestId: string | null;
}

export type NewCommand = Pick<
  CommandRecord,
  | 'equipment'
  | 'kind'
  | 'request'
  | 'reason'
  | 'requestedBy'
  | 'signature'
  | 'operationPk'
  | 'requestedAt'
  | 'idempotency'
  | 'requestId'
>;

export type FinishedCommand = Pick<CommandRecord, 'finishedAt' | 'state' | 'results' | 'error'> & {
  readonly outcome: Exclude<CommandOutcome, 'requested'>;
};

export interface CommandStore {
  equipment(id: string): Promise<{ readonly id: string; readonly name: string } | null>;
  /** The equipment's signals, as the plant model defines them. */
  signalsOf(equipment: string): Promise<Signal[]>;
  operation(
    pk: number,
  ): Promise<{ readonly pk: number; readonly orderId: string; readonly operationId: string } | null>;
  byIdempotencyKey(scope: string, key: string): Promise<CommandRecord | null>;
  /** Records the intent (outcome `requested`); null when its idempotency key is already taken. */
  insert(tx: Tx, command: NewCommand): Promise<CommandRecord | null>;
  /** Records the outcome of a `requested` command (a finished command never changes). */
  finish(tx: Tx, id: string, outcome: FinishedCommand): Promise<CommandRecord>;
  get(id: string): Promise<CommandRecord | null>;
  /** Newest first; `before` is the `no` of the last command of the previous page. */
  list(
    equipment: string,
    page: { readonly limit: number; readonly before?: number },
  ): Promise<CommandRecord[]>;
}

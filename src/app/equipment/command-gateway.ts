import { hasAnyRole, type Actor } from '../../domain/auth/roles.ts';
import {
  commandKindOf,
  compareReadBack,
  interlockRefusal,
  outcomeOf,
  parseCommand,
  planCommand,
  rolesFor,
  type CommandPlan,
  type EquipmentCommand,
} from '../../domain/equipment/equipment-command.ts';
import { packmlTransition, parsePackmlState } from '../../domain/equipment/packml-states.ts';
import type { Clock } from '../../domain/shared/clock.ts';
import { describeValue } from '../../domain/shared/field-issues.ts';
import { fail, ok, type DomainError, type FieldIssue, type Result } from '../../domain/shared/result.ts';
import type { Principal } from '../auth/auth-service.ts';
import type { AuditTrail, ElectronicSignature, UnitOfWork } from '../ports.ts';
import type { IdempotencyRequest } from '../shared/idempotent.ts';
import type {
  CommandConnectors,
  CommandError,
  CommandRecord,
  CommandStore,
  ConnectorError,
  ConnectorWrite,
  EquipmentConnector,
  FinishedCommand,
  ParameterResult,
  StateReading,
} from './command-ports.ts';
import { commandView, type CommandView } from './command-views.ts';

export interface CommandGatewayDeps {
  readonly uow: UnitOfWork;
  readonly store: CommandStore;
  readonly audit: AuditTrail;
  readonly clock: Clock;
  readonly connectors: CommandConnectors;
  /** Electronic signature (AuthService.sign): re-entered password and meaning, bound to a record. */
  readonly sign: (
    principal: Principal,
    input: { password: string; meaning: string },
    record: unknown,
  ) => Promise<Result<ElectronicSignature>>;
  readonly log: { error(details: object, message: string): void };
}

export interface CommandContext {
  readonly requestId: string | null;
  readonly idempotency: IdempotencyRequest | null;
}

/**
 * What a command request came to. `ok`: the command ran and every value was written (its outcome
 * is `confirmed` or `variance`). Otherwise `error` says why; when a command was recorded (failed,
 * refused) `error.details.command` is the stored command.
 */
export type CommandResponse =
  | { readonly ok: true; readonly command: CommandView; readonly replayed: boolean }
  | { readonly ok: false; readonly error: DomainError; readonly replayed: boolean };

const actorOf = (p: Principal): Actor => ({ userId: p.userId, username: p.username, roles: p.roles });

/** The body without kind, reason and signature (the password never leaves the request). */
function requestOf(c: EquipmentCommand): Record<string, unknown> {
  if (c.kind === 'setpoint') return { signal: c.signal, value: c.value };
  if (c.kind === 'recipe') {
    return {
      recipe: c.recipe,
      parameters: c.parameters,
      ...(c.operation !== undefined ? { operation: c.operation } : {}),
    };
  }
  return {};
}

type Execution = Omit<FinishedCommand, 'finishedAt'>;

/**
 * The governed command gateway (issue #6, DESIGN.md flow 5): role, validation, electronic
 * signature for recipes, interlock on the PackML state read from the device, writes routed to the
 * signal's connector and confirmed by read-back, and a record of intent and outcome.
 *
 * The write to the machine cannot be part of a database transaction, so a command is two
 * transactions around it: the intent (outcome `requested`, its audit entry, the Idempotency-Key)
 * commits before anything is sent, the outcome and its audit entry after. A crash in between
 * leaves a visible `requested` command — never a write nobody recorded (docs/adr/0009).
 */
export class CommandGateway {
  readonly #d: CommandGatewayDeps;
  /** One command at a time per equipment in this process: the state read must still hold at the write. */
  readonly #running = new Map<string, Promise<unknown>>();

  constructor(deps: CommandGatewayDeps) {
    this.#d = deps;
  }

  async send(
    actor: Principal,
    equipmentId: string,
    body: unknown,
    ctx: CommandContext,
  ): Promise<CommandResponse> {
    const refuse = (error: DomainError): CommandResponse => ({ ok: false, error, replayed: false });
    const kind = commandKindOf(body);
    if (!kind.ok) return refuse(kind.error);
    const roles = rolesFor(kind.value);
    if (!hasAnyRole(actor, roles)) {
      return refuse({
        code: 'LOOM_AUTH_FORBIDDEN',
        message: `A ${kind.value} command needs one of the roles ${roles.join(', ')}; you have ${actor.roles.join(', ') || 'none'}.`,
      });
    }
    const { store } = this.#d;
    if (ctx.idempotency) {
      const earlier = await store.byIdempotencyKey(ctx.idempotency.scope, ctx.idempotency.key);
      if (earlier) return this.#replay(earlier, ctx.idempotency);
    }
    const parsed = parseCommand(body);
    if (!parsed.ok) return refuse(parsed.error);
    const command = parsed.value;
    const equipment = await store.equipment(equipmentId);
    if (!equipment) {
      return refuse({
        code: 'LOOM_COMMAND_EQUIPMENT_NOT_FOUND',
        message: `No equipment '${equipmentId}'.`,
        details: { equipment: equipmentId },
      });
    }
    const plan = planCommand(command, equipment.id, await store.signalsOf(equipment.id));
    if (!plan.ok) return refuse(plan.error);
    const routed = this.#route(plan.value);
    if (!routed.ok) return refuse(routed.error);

    let signature: ElectronicSignature | null = null;
    let operation: { pk: number; orderId: string; operationId: string } | null = null;
    if (command.kind === 'recipe') {
      if (command.operation !== undefined) {
        operation = await store.operation(command.operation);
        if (!operation) {
          return refuse({
            code: 'LOOM_COMMAND_INVALID',
            message: `The command cannot be sent as it is: operation: no operation ${command.operation}.`,
            issues: [
              {
                path: 'operation',
                message: `operation ${command.operation} does not exist; give the id of an operation (GET /api/orders/:id) or leave it out`,
              },
            ],
          });
        }
      }
      const signed = await this.#d.sign(actor, command.signature, {
        action: 'equipment-command.recipe',
        equipment: equipment.id,
        recipe: command.recipe,
        parameters: command.parameters,
        operation: operation ? { order: operation.orderId, operation: operation.operationId } : null,
        reason: command.reason,
      });
      if (!signed.ok) return refuse(signed.error);
      signature = signed.value;
    }

    // The intent commits before the machine is touched: the write cannot join a transaction, so a
    // crash from here on leaves this row `requested` rather than a write nobody recorded (ADR 0009).
    const intent = await this.#d.uow.run(async (tx) => {
      const record = await store.insert(tx, {
        equipment: equipment.id,
        kind: command.kind,
        request: requestOf(command),
        reason: command.reason,
        requestedBy: { userId: actor.userId, username: actor.username },
        signature,
        operationPk: operation?.pk ?? null,
        requestedAt: this.#d.clock.now(),
        idempotency: ctx.idempotency,
        requestId: ctx.requestId,
      });
      if (record) {
        await this.#d.audit.append(tx, {
          actor: actorOf(actor),
          action: 'equipment-command.requested',
          entityType: 'equipment-command',
          entityId: record.id,
          reason: command.reason,
          newValue: {
            commandId: record.id,
            equipment: record.equipment,
            kind: record.kind,
            request: record.request,
          },
          signature,
          requestId: ctx.requestId,
        });
      }
      return record;
    });
    if (!intent) {
      // A retry with the same key committed its intent first.
      const earlier = await store.byIdempotencyKey(ctx.idempotency!.scope, ctx.idempotency!.key);
      if (earlier) return this.#replay(earlier, ctx.idempotency!);
      throw new Error('equipment command: idempotency key taken, but no command holds it');
    }

    const finished = await this.#serially(equipment.id, async () => {
      let execution: Execution;
      try {
        execution = await this.#execute(equipment.id, command, plan.value, routed.value);
      } catch (e) {
        this.#d.log.error({ err: e, commandId: intent.id }, 'equipment command failed unexpectedly');
        execution = {
          outcome: 'failed',
          state: null,
          // Where it broke is unknown, so every value is as unknown as a failed write.
          results: plan.value.writes.map((w) => ({
            ...notSent(w.signal.id, w.value),
            status: 'failed',
            error: { code: 'LOOM_COMMAND_WRITE_FAILED', message: 'unknown: the command failed inside Loom' },
          })),
          error: {
            code: 'LOOM_COMMAND_WRITE_FAILED',
            message: `The command failed inside Loom (${(e as Error).message}); check the machine: a value may have been written.`,
            details: null,
          },
        };
      }
      return this.#record(intent, command, operation, execution, actor, ctx);
    });
    return this.#respond(finished, false);
  }

  async get(id: string): Promise<Result<CommandView>> {
    const record = await this.#d.store.get(id);
    return record ? ok(commandView(record)) : commandNotFound(id);
  }

  /** Newest first, `limit` at a time; `nextBefore` fetches the next page (null: no more). */
  async list(
    equipmentId: string,
    page: { limit: number; before?: number },
  ): Promise<Result<{ commands: CommandView[]; nextBefore: number | null }>> {
    const equipment = await this.#d.store.equipment(equipmentId);
    if (!equipment) {
      return fail('LOOM_COMMAND_EQUIPMENT_NOT_FOUND', `No equipment '${equipmentId}'.`, {
        details: { equipment: equipmentId },
      });
    }
    const rows = await this.#d.store.list(equipment.id, { ...page, limit: page.limit + 1 });
    const shown = rows.slice(0, page.limit);
    return ok({
      commands: shown.map(commandView),
      nextBefore: rows.length > page.limit ? (shown.at(-1)?.no ?? null) : null,
    });
  }

  #route(plan: CommandPlan): Result<Map<string, EquipmentConnector>> {
    const bySignal = new Map<string, EquipmentConnector>();
    const issues: FieldIssue[] = [];
    for (const s of [...(plan.stateSignal ? [plan.stateSignal] : []), ...plan.writes.map((w) => w.signal)]) {
      const c = this.#d.connectors.for(s);
      if ('unavailable' in c) {
        return fail('LOOM_COMMAND_NO_CONNECTOR', `Cannot reach signal '${s.id}': ${c.unavailable}.`, {
          details: { signal: s.id },
        });
      }
      bySignal.set(s.id, c);
    }
    for (const w of plan.writes) {
      const why = bySignal.get(w.signal.id)!.check(w.signal, w.value);
      if (why !== null) {
        issues.push({
          path: w.path === 'kind' ? 'kind' : `${w.path === '' ? '' : `${w.path}.`}value`,
          message: `value ${describeValue(w.value)} cannot be written to '${w.signal.id}': ${why}`,
        });
      }
    }
    if (issues.length > 0) {
      return fail(
        'LOOM_COMMAND_INVALID',
        `The command cannot be sent as it is: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`,
        { issues },
      );
    }
    return ok(bySignal);
  }

  /** Reads the state, checks it, reads the old values, writes; touches nothing in the database. */
  async #execute(
    equipment: string,
    command: EquipmentCommand,
    plan: CommandPlan,
    connectors: ReadonlyMap<string, EquipmentConnector>,
  ): Promise<Execution> {
    const results: ParameterResult[] = plan.writes.map((w) => notSent(w.signal.id, w.value));
    let state: StateReading | null = null;
    if (plan.stateSignal !== null && plan.check !== null) {
      const signal = plan.stateSignal;
      const read = await connectors.get(signal.id)!.read(signal);
      if (!read.ok) {
        return {
          outcome: 'failed',
          state,
          results,
          error: connectorFailure(equipment, read.error, signal.id, 'read', results),
        };
      }
      const v = read.value;
      const parsedState = parsePackmlState(v.quality === 'bad' ? null : v.value);
      state = {
        signal: signal.id,
        value: v.value,
        state: parsedState,
        via: v.via,
        at: v.at === null ? null : new Date(v.at).toISOString(),
      };
      const source =
        v.via === 'live'
          ? ` (the latest value Loom received from '${signal.id}'${state.at ? ` at ${state.at}` : ''}: its source offers no read)`
          : '';
      // The state's source goes right after the state in the message: "… is in PackML state Execute (…);".
      const refusal = (e: DomainError, named = true): Execution => ({
        outcome: 'refused',
        state,
        results,
        error: {
          code: e.code,
          message: named && source ? e.message.replace(/;/, `${source};`) : e.message,
          details: { ...(e.details ?? {}), stateSignal: signal.id, stateValue: v.value, stateSource: v.via },
        },
      });
      if (parsedState === null) {
        return refusal(
          {
            code: 'LOOM_COMMAND_STATE_UNKNOWN',
            message: `${equipment}'s PackML state signal '${signal.id}' reads ${v.quality === 'bad' ? 'no valid value' : describeValue(v.value)}, which is no PackML state (a name such as Idle, or a number 1–17); the ${command.kind} is refused until the state is known.`,
            details: { currentState: null },
          },
          false,
        );
      }
      if (plan.check.kind === 'interlock' && !plan.check.permitted.includes(parsedState)) {
        const r = interlockRefusal(equipment, parsedState, plan.check.permitted);
        if (!r.ok) return refusal(r.error);
      }
      if (plan.check.kind === 'transition') {
        const r = packmlTransition(parsedState, plan.check.command, equipment);
        if (!r.ok) return refusal(r.error);
      }
    }

    for (const [i, w] of plan.writes.entries()) {
      const before = await connectors.get(w.signal.id)!.read(w.signal);
      if (before.ok) results[i] = { ...results[i]!, before: before.value.value };
      else if (before.error.kind === 'disconnected') {
        return {
          outcome: 'failed',
          state,
          results,
          error: connectorFailure(equipment, before.error, w.signal.id, 'read', results),
        };
      }
    }

    // Consecutive values of one connector go together (a Sparkplug DCMD carries all of a device's).
    let at = 0;
    while (at < plan.writes.length) {
      const connector = connectors.get(plan.writes[at]!.signal.id)!;
      let end = at + 1;
      while (end < plan.writes.length && connectors.get(plan.writes[end]!.signal.id) === connector) end++;
      const batch = plan.writes.slice(at, end);
      const written: ConnectorWrite[] = await connector.write(batch);
      let failure: { signal: string; error: ConnectorError } | null = null;
      for (const [j, w] of batch.entries()) {
        const r = written[j];
        const i = at + j;
        if (r === undefined) continue;
        if (!r.ok) {
          results[i] = {
            ...results[i]!,
            status: 'failed',
            error: { code: r.error.code, message: r.error.message },
          };
          failure ??= { signal: w.signal.id, error: r.error };
          continue;
        }
        const cmp = compareReadBack(w.value, r.readBack);
        results[i] = {
          ...results[i]!,
          readBack: r.readBack,
          difference: cmp.difference,
          readBackVia: r.via,
          status: cmp.matches ? 'confirmed' : 'variance',
        };
      }
      if (failure !== null) {
        return {
          outcome: 'failed',
          state,
          results,
          error: connectorFailure(equipment, failure.error, failure.signal, 'write', results),
        };
      }
      at = end;
    }
    return { outcome: outcomeOf(results.map((r) => r.status)), state, results, error: null };
  }

  /** The outcome, its audit entry and (for a recipe of an operation) the operation's, in one transaction. */
  async #record(
    intent: CommandRecord,
    command: EquipmentCommand,
    operation: { pk: number } | null,
    execution: Execution,
    actor: Principal,
    ctx: CommandContext,
  ): Promise<CommandRecord> {
    const { uow, store, audit, clock } = this.#d;
    return uow.run(async (tx) => {
      const done = await store.finish(tx, intent.id, { ...execution, finishedAt: clock.now() });
      const values = done.results.map((r) => ({
        signal: r.signal,
        requested: r.requested,
        readBack: r.readBack,
        difference: r.difference,
        status: r.status,
      }));
      await audit.append(tx, {
        actor: actorOf(actor),
        action: `equipment-command.${done.outcome}`,
        entityType: 'equipment-command',
        entityId: done.id,
        reason: done.reason,
        oldValue: {
          state: done.state,
          values: done.results.map((r) => ({ signal: r.signal, value: r.before })),
        },
        newValue: {
          commandId: done.id,
          equipment: done.equipment,
          kind: done.kind,
          outcome: done.outcome,
          values,
          error: done.error,
        },
        requestId: ctx.requestId,
      });
      if (operation && command.kind === 'recipe') {
        await audit.append(tx, {
          actor: actorOf(actor),
          action: 'operation.recipe-downloaded',
          entityType: 'order-operation',
          entityId: String(operation.pk),
          reason: done.reason,
          newValue: {
            commandId: done.id,
            equipment: done.equipment,
            recipe: command.recipe,
            outcome: done.outcome,
            values,
          },
          signature: done.signature,
          requestId: ctx.requestId,
        });
      }
      return done;
    });
  }

  #respond(record: CommandRecord, replayed: boolean): CommandResponse {
    const command = commandView(record);
    if (record.outcome === 'confirmed' || record.outcome === 'variance')
      return { ok: true, command, replayed };
    const e = record.error ?? {
      code: 'LOOM_COMMAND_WRITE_FAILED',
      message: `Command ${record.id} ${record.outcome}.`,
      details: null,
    };
    return {
      ok: false,
      replayed,
      error: {
        code: e.code,
        message: e.message,
        details: { ...(e.details ?? {}), commandId: record.id, outcome: record.outcome, command },
      },
    };
  }

  #replay(earlier: CommandRecord, request: IdempotencyRequest): CommandResponse {
    if (earlier.idempotency?.requestHash !== request.requestHash) {
      return {
        ok: false,
        replayed: false,
        error: {
          code: 'LOOM_IDEMPOTENCY_KEY_REUSED',
          message: `Idempotency-Key '${request.key}' was already used for a different request (command ${earlier.id}); use a new key for a new request.`,
        },
      };
    }
    if (earlier.outcome === 'requested') {
      return {
        ok: false,
        replayed: false,
        error: {
          code: 'LOOM_COMMAND_IN_PROGRESS',
          message: `Command ${earlier.id} with this Idempotency-Key is still running (requested ${earlier.requestedAt.toISOString()}); retry in a moment. If it stays requested, Loom stopped while it ran: check the machine before sending a new command with a new key.`,
          details: { commandId: earlier.id, outcome: earlier.outcome },
        },
      };
    }
    return this.#respond(earlier, true);
  }

  async #serially<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.#running.get(key) ?? Promise.resolve();
    const run = previous.then(fn, fn);
    const tail = run.catch(() => undefined);
    this.#running.set(key, tail);
    try {
      return await run;
    } finally {
      if (this.#running.get(key) === tail) this.#running.delete(key);
    }
  }
}

function notSent(signal: string, requested: ParameterResult['requested']): ParameterResult {
  return {
    signal,
    requested,
    before: null,
    readBack: null,
    difference: null,
    status: 'not-sent',
    readBackVia: null,
    error: null,
  };
}

const COMMAND_CODE: Readonly<Record<ConnectorError['kind'], string>> = {
  disconnected: 'LOOM_COMMAND_DISCONNECTED',
  unconfirmed: 'LOOM_COMMAND_NOT_CONFIRMED',
  failed: 'LOOM_COMMAND_WRITE_FAILED',
};

/** A failed command's error: what failed, in the connector's words, and what had been written. */
function connectorFailure(
  equipment: string,
  error: ConnectorError,
  signal: string,
  step: 'read' | 'write',
  results: readonly ParameterResult[],
): CommandError {
  const written = results
    .filter((r) => r.status === 'confirmed' || r.status === 'variance')
    .map((r) => r.signal);
  const notSentSignals = results.filter((r) => r.status === 'not-sent').map((r) => r.signal);
  const what =
    error.kind === 'disconnected'
      ? `${equipment} is not reachable (${step === 'read' ? 'reading' : 'writing'} '${signal}')`
      : error.kind === 'unconfirmed'
        ? `${step === 'read' ? 'Reading' : 'Writing'} '${signal}' of ${equipment} is not confirmed`
        : `${step === 'read' ? 'Reading' : 'Writing'} '${signal}' of ${equipment} failed`;
  const tail =
    written.length > 0
      ? ` Already written: ${written.join(', ')}.${notSentSignals.length > 0 ? ` Not sent: ${notSentSignals.join(', ')}.` : ''}`
      : ` Nothing ${error.kind === 'unconfirmed' && step === 'write' ? 'else ' : ''}was written.`;
  return {
    code: COMMAND_CODE[error.kind],
    message: `${what}: ${error.message} (${error.code}).${tail}`,
    details: { connectorCode: error.code, signal, written, notSent: notSentSignals },
  };
}

export function commandNotFound(id: string) {
  return fail('LOOM_COMMAND_NOT_FOUND', `No equipment command ${id}.`, { details: { commandId: id } });
}

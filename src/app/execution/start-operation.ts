import type { Actor } from '../../domain/auth/roles.ts';
import { fail, ok, type Result } from '../../domain/shared/result.ts';
import { transitionOperation } from '../../domain/work-order/operation-state.ts';
import { transitionOrder } from '../../domain/work-order/order-state.ts';
import { bomMaterials } from '../../domain/production/product.ts';
import { checkStart, type StartRefusal } from '../../domain/work-order/start-checks.ts';
import type { ElectronicSignature, Tx } from '../ports.ts';
import type { CommandContext, ExecutionDeps } from './execution-deps.ts';
import { operationView, type OperationView } from './views.ts';

export interface StartOperationInput {
  readonly workUnit: string;
  /** Lots the operator is about to consume: they must be Released. */
  readonly lots?: readonly string[];
  /** A qualified trainer co-signing for a trainee at the terminal. */
  readonly trainer?: { readonly username: string; readonly password: string } | null;
  /** A supervisor's signed override of failed checks, given at the terminal with their credentials. */
  readonly override?: {
    readonly username: string;
    readonly password: string;
    readonly reason: string;
  } | null;
}

export interface StartedOperation {
  readonly operation: OperationView;
  readonly overridden: readonly StartRefusal[];
}

/**
 * Starts an operation on a work unit (issue #3 item 3). Locks the order, then the operation, so
 * two terminals cannot both start it. Refuses, listing every reason, unless a supervisor overrides
 * with an electronic signature and a reason, which the audit entry records with what was overridden.
 */
export async function startOperation(
  deps: ExecutionDeps,
  tx: Tx,
  actor: Actor,
  operationPk: number,
  input: StartOperationInput,
  ctx: CommandContext,
): Promise<Result<StartedOperation>> {
  const { store, audit, outbox, clock, auth } = deps;
  const peek = await store.operation(tx, operationPk);
  if (!peek) return notFound(operationPk);
  const order = await store.order(tx, peek.orderId, true);
  const op = await store.operation(tx, operationPk, true);
  if (!order || !op) return notFound(operationPk);

  const next = transitionOperation(op.state, 'start');
  if (!next.ok) return next;
  if (order.state !== 'Released' && order.state !== 'InProgress') {
    return fail(
      'LOOM_ORDER_ILLEGAL_TRANSITION',
      `Order ${order.id} is ${order.state}; its operations cannot start.`,
      {
        details: { currentState: order.state },
      },
    );
  }

  const unit = await store.equipment(tx, input.workUnit);
  if (!unit || unit.level !== 'WorkUnit' || unit.parentId !== op.workCenterId) {
    return fail(
      'LOOM_START_WRONG_WORK_UNIT',
      `'${input.workUnit}' is not a work unit of work center ${op.workCenterId}.`,
      {
        issues: [{ path: 'workUnit', message: `must be a work unit under ${op.workCenterId}` }],
      },
    );
  }
  if (op.allowedWorkUnits.length > 0 && !op.allowedWorkUnits.includes(unit.id)) {
    return fail(
      'LOOM_START_WRONG_WORK_UNIT',
      `Operation ${op.operationId} may run only on ${op.allowedWorkUnits.join(', ')}.`,
      {
        issues: [{ path: 'workUnit', message: `must be one of ${op.allowedWorkUnits.join(', ')}` }],
      },
    );
  }

  const person = await store.personByUsername(tx, actor.username);
  if (!person) {
    return fail(
      'LOOM_START_NO_PERSON',
      `User '${actor.username}' is not linked to a person in the plant model (personnel[].username), so qualifications cannot be checked.`,
    );
  }
  const now = clock.now();
  let trainerSignature: ElectronicSignature | null = null;
  let trainer = null;
  if (input.trainer) {
    const sig = await auth.coSign(
      {
        username: input.trainer.username,
        password: input.trainer.password,
        meaning: `Trainer for ${person.id} on ${op.orderId}/${op.operationId}`,
      },
      { operation: op.pk, trainee: person.id },
    );
    if (!sig.ok) return sig;
    trainerSignature = sig.value;
    trainer = await store.personByUsername(tx, input.trainer.username);
    if (!trainer) {
      return fail(
        'LOOM_START_NO_PERSON',
        `Trainer '${input.trainer.username}' is not linked to a person in the plant model.`,
      );
    }
  }

  const ops = await store.operations(tx, op.orderId);
  const previous = ops.filter((o) => !o.isRework && o.sequence < op.sequence).at(-1) ?? null;
  const lots = input.lots ?? [];
  const found = lots.length
    ? await store.lotStatuses(tx, lots)
    : new Map<string, { status: string; materialId: string }>();
  const state = await store.equipmentState(tx, unit.id);
  const refusals = checkStart({
    today: deps.today(now),
    requiredQualifications: op.requiredQualifications,
    operator: { personId: person.id, qualifications: person.qualifications },
    trainer: trainer ? { personId: trainer.id, qualifications: trainer.qualifications } : null,
    workUnit: { id: unit.id, state: state.state, stateReason: state.reason },
    predecessor:
      previous && !op.isRework
        ? {
            operationId: previous.operationId,
            goodQuantity: previous.goodQuantity,
            needed: op.plannedQuantity,
          }
        : null,
    lots: lots.map((id) => ({
      id,
      status: found.get(id)?.status ?? 'unknown (no such lot)',
      material: found.get(id)?.materialId ?? null,
    })),
    bomMaterials: bomMaterials(op.bom),
  });
  let overrideSignature: ElectronicSignature | null = null;
  if (refusals.length > 0) {
    if (!input.override) {
      return fail(
        'LOOM_START_REFUSED',
        `Cannot start ${op.orderId}/${op.operationId}: ${refusals.map((r) => r.message).join(' ')}`,
        {
          details: { refusals },
        },
      );
    }
    const sig = await auth.coSign(
      {
        username: input.override.username,
        password: input.override.password,
        meaning: `Override start checks: ${input.override.reason}`,
      },
      { operation: op.pk, refusals },
    );
    if (!sig.ok) return sig;
    const signer = await auth.getUser(sig.value.signerId);
    if (!signer.ok || !signer.value.roles.includes('supervisor')) {
      return fail(
        'LOOM_AUTH_FORBIDDEN',
        `Only a supervisor can override start checks; '${input.override.username}' is not one.`,
      );
    }
    overrideSignature = sig.value;
  }

  const started = await store.updateOperation(tx, op.pk, {
    state: next.value,
    workUnitId: unit.id,
    startedAt: op.startedAt ?? now,
    startedBy: actor.username,
    personId: person.id,
  });
  if (order.state === 'Released') {
    const o = transitionOrder(order.state, 'start');
    if (o.ok) await store.updateOrder(tx, order.id, { state: o.value, startedAt: now });
  }
  await store.addActivity(tx, {
    operationPk: op.pk,
    kind: overrideSignature ? 'start-override' : 'start',
    actor: actor.username,
    personId: person.id,
    workUnitId: unit.id,
    detail: { lots, trainer: trainer?.id ?? null, overridden: overrideSignature ? refusals : [] },
    at: now,
  });
  if (trainerSignature) {
    await audit.append(tx, {
      actor,
      action: 'operation.trainer-cosigned',
      entityType: 'order-operation',
      entityId: String(op.pk),
      signature: trainerSignature,
      newValue: { trainee: person.id, trainer: trainer?.id },
      requestId: ctx.requestId,
    });
  }
  await audit.append(tx, {
    actor,
    action: overrideSignature ? 'operation.started-with-override' : 'operation.started',
    entityType: 'order-operation',
    entityId: String(op.pk),
    reason: input.override?.reason ?? null,
    oldValue: { state: op.state, workUnit: op.workUnitId },
    newValue: {
      state: started.state,
      workUnit: unit.id,
      person: person.id,
      ...(overrideSignature ? { overridden: refusals } : {}),
    },
    signature: overrideSignature,
    requestId: ctx.requestId,
  });
  await outbox.add(tx, {
    aggregateType: 'production-order',
    aggregateId: op.orderId,
    eventType: 'OperationStarted',
    payload: {
      order: op.orderId,
      operation: op.operationId,
      workUnit: unit.id,
      person: person.id,
      at: now.toISOString(),
    },
  });
  return ok({ operation: operationView(started), overridden: overrideSignature ? refusals : [] });
}

export function notFound(pk: number) {
  return fail('LOOM_OPERATION_NOT_FOUND', `No operation with id ${pk}.`);
}

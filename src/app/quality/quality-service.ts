import {
  dispositionNeedsSignature,
  evaluateResult,
  type Disposition,
  type NcrState,
} from '../../domain/quality/quality.ts';
import type { Clock } from '../../domain/shared/clock.ts';
import {
  add,
  formatQuantity,
  fromWhole,
  parsePositiveQuantity,
  sub,
  ZERO,
  type Quantity,
} from '../../domain/shared/quantity.ts';
import { fail, ok, type FieldIssue, type Result } from '../../domain/shared/result.ts';
import type { Principal } from '../auth/auth-service.ts';
import type { AuditTrail, ElectronicSignature, IdempotencyStore, Outbox, Tx, UnitOfWork } from '../ports.ts';
import { runIdempotent, type IdempotencyRequest, type IdempotentOutcome } from '../shared/idempotent.ts';
import type {
  NcrRecord,
  OperationCharacteristic,
  QualityOperation,
  QualityResultRecord,
  QualityStore,
} from './quality-ports.ts';
import { ncrView, type NcrView } from './quality-views.ts';

export type Sign = (
  principal: Principal,
  input: { password: string; meaning: string },
  record: unknown,
) => Promise<Result<ElectronicSignature>>;

export interface QualityServiceDeps {
  readonly uow: UnitOfWork;
  readonly store: QualityStore;
  readonly audit: AuditTrail;
  readonly outbox: Outbox;
  readonly idempotency: IdempotencyStore;
  readonly clock: Clock;
  /** AuthService.sign: re-entered password + meaning → a signature bound to the record. */
  readonly sign: Sign;
}

export interface RequestContext {
  readonly requestId: string | null;
  readonly idempotency: IdempotencyRequest | null;
}

export interface ResultInput {
  readonly characteristic: string;
  readonly value: unknown;
  readonly lotId?: string | undefined;
  /** The nonconforming quantity an NCR is raised for when the result fails; 1 by default. */
  readonly quantity?: number | string | undefined;
}

export interface ResultView extends Omit<QualityResultRecord, 'ncr'> {
  readonly ncr: NcrView | null;
}

export interface ManualNcrInput {
  readonly operation: number;
  readonly quantity: number | string;
  readonly description: string;
  readonly cause?: string | undefined;
  readonly lotId?: string | undefined;
  readonly characteristic?: string | undefined;
}

export interface DispositionInput {
  readonly disposition: Disposition;
  readonly cause: string;
  readonly reason: string;
  readonly signature?: { readonly password: string; readonly meaning: string } | undefined;
}

/** Rework loops live between a routing step (sequence n·100) and the next one. */
export const MAX_REWORK_LOOPS = 99;

const operationNotFound = (pk: number) =>
  fail('LOOM_QUALITY_OPERATION_NOT_FOUND', `Order operation ${pk} does not exist.`, {
    details: { operationPk: pk },
  });

const ncrNotFound = (id: number) =>
  fail('LOOM_NCR_NOT_FOUND', `NCR ${id} does not exist.`, { details: { ncrId: id } });

const ncrIllegal = (n: NcrRecord, event: string) =>
  fail('LOOM_NCR_ILLEGAL_TRANSITION', `Cannot ${event} ${n.number}: it is ${n.state}.`, {
    details: { currentState: n.state, event },
  });

const limitText = (c: OperationCharacteristic): string => {
  const u = c.unit ? ` ${c.unit}` : '';
  const lsl = c.lsl === undefined ? 'no LSL' : `LSL ${c.lsl}${u}`;
  const usl = c.usl === undefined ? 'no USL' : `USL ${c.usl}${u}`;
  return `${lsl}, ${usl}`;
};

/** The NCR text for a failed result: names the characteristic, the value and the limits. */
export function describeFailure(c: OperationCharacteristic, numeric: number | null): string {
  if (c.kind === 'numeric') {
    return `${c.name} (${c.id}) measured ${numeric}${c.unit ? ` ${c.unit}` : ''}, outside the limits (${limitText(c)}).`;
  }
  return `${c.name} (${c.id}) failed the attribute check.`;
}

/**
 * Quality at the operation: measured results judged against the operation's snapshot limits, a
 * nonconformance (NCR) raised automatically for every failure, and NCR dispositions with their
 * effects on the order (rework operation, scrap, use-as-is under signature, return to supplier).
 * Each command is one transaction with its audit entries, outbox events and idempotency key.
 */
export class QualityService {
  readonly #d: QualityServiceDeps;

  constructor(deps: QualityServiceDeps) {
    this.#d = deps;
  }

  recordResults(
    actor: Principal,
    operationPk: number,
    inputs: readonly ResultInput[],
    ctx: RequestContext,
  ): Promise<IdempotentOutcome<{ operationPk: number; results: ResultView[] }>> {
    const d = this.#d;
    return runIdempotent(d.uow, d.idempotency, ctx.idempotency, 201, async (tx) => {
      const op = await d.store.operation(tx, operationPk, 'share');
      if (!op) return operationNotFound(operationPk);
      if (op.state !== 'Running' && op.state !== 'Paused') {
        return fail(
          'LOOM_QUALITY_OPERATION_NOT_ACTIVE',
          `Results are recorded while operation '${op.operationId}' of order ${op.orderId} is Running or Paused; it is ${op.state}.`,
          { details: { currentState: op.state } },
        );
      }

      const byId = new Map(op.characteristics.map((c) => [c.id, c]));
      const unknown = inputs.map((r, i) => ({ r, i })).filter(({ r }) => !byId.has(r.characteristic));
      if (unknown.length > 0) {
        const names = unknown.map(({ r }) => `'${r.characteristic}'`).join(', ');
        const known = op.characteristics.map((c) => c.id).join(', ') || 'none';
        return fail(
          'LOOM_QUALITY_UNKNOWN_CHARACTERISTIC',
          `Operation '${op.operationId}' of order ${op.orderId} has no characteristic ${names}; it has: ${known}.`,
          {
            issues: unknown.map(({ r, i }) => ({
              path: `results[${i}].characteristic`,
              message: `'${r.characteristic}' is not a characteristic of this operation`,
            })),
            details: { characteristics: op.characteristics.map((c) => c.id) },
          },
        );
      }

      const issues: FieldIssue[] = [];
      const judged: {
        c: OperationCharacteristic;
        verdict: 'pass' | 'fail';
        numeric: number | null;
        quantity: Quantity;
        lotId: string | null;
      }[] = [];
      for (const [i, r] of inputs.entries()) {
        const c = byId.get(r.characteristic)!;
        const v = evaluateResult(c, r.value, `results[${i}].value`);
        const q =
          r.quantity === undefined
            ? ok(fromWhole(1))
            : parsePositiveQuantity(r.quantity, `results[${i}].quantity`);
        if (!v.ok) issues.push(...(v.error.issues ?? []));
        if (!q.ok) issues.push(...(q.error.issues ?? []));
        if (r.lotId !== undefined && !(await d.store.lot(tx, r.lotId))) {
          issues.push({ path: `results[${i}].lotId`, message: `lot '${r.lotId}' does not exist` });
        }
        if (v.ok && q.ok) judged.push({ c, ...v.value, quantity: q.value, lotId: r.lotId ?? null });
      }
      if (issues.length > 0) {
        return fail(
          'LOOM_VALIDATION_FAILED',
          `Invalid results: ${issues.map((x) => `${x.path} ${x.message}`).join('; ')}`,
          {
            issues,
          },
        );
      }

      const at = d.clock.now();
      const personId = await d.store.personIdOf(tx, actor.username);
      const out: ResultView[] = [];
      for (const j of judged) {
        const rec = await d.store.insertResult(tx, {
          operationPk: op.pk,
          characteristic: j.c,
          numeric: j.numeric,
          attribute: j.c.kind === 'attribute' ? j.verdict : null,
          verdict: j.verdict,
          lotId: j.lotId,
          actor: actor.username,
          personId,
          at,
        });
        await d.audit.append(tx, {
          actor,
          action: 'quality-result.recorded',
          entityType: 'quality-result',
          entityId: String(rec.id),
          newValue: { ...rec, orderId: op.orderId, operationId: op.operationId },
          requestId: ctx.requestId,
        });
        await d.outbox.add(tx, {
          aggregateType: 'production-order',
          aggregateId: op.orderId,
          eventType: 'QualityResultRecorded',
          payload: { ...rec, orderId: op.orderId, operationId: op.operationId },
        });
        let ncr: NcrView | null = null;
        if (j.verdict === 'fail') {
          ncr = ncrView(
            await this.#raise(tx, actor, op, ctx, {
              resultId: rec.id,
              characteristicId: j.c.id,
              lotId: j.lotId,
              quantity: j.quantity,
              description: describeFailure(j.c, j.numeric),
              causeCode: null,
            }),
          );
        }
        out.push({ ...rec, ncr });
      }
      return ok({ operationPk: op.pk, results: out });
    });
  }

  async results(operationPk: number): Promise<Result<QualityResultRecord[]>> {
    const op = await this.#d.store.operation(null, operationPk);
    if (!op) return operationNotFound(operationPk);
    return ok(await this.#d.store.results(operationPk));
  }

  raiseNcr(
    actor: Principal,
    input: ManualNcrInput,
    ctx: RequestContext,
  ): Promise<IdempotentOutcome<NcrView>> {
    const d = this.#d;
    return runIdempotent(d.uow, d.idempotency, ctx.idempotency, 201, async (tx) => {
      const quantity = parsePositiveQuantity(input.quantity, 'quantity');
      if (!quantity.ok) return quantity;
      // FOR UPDATE, not SHARE: two NCRs raised at once on one operation must see each other's quantity.
      const op = await d.store.operation(tx, input.operation, 'update');
      if (!op) return operationNotFound(input.operation);
      if (
        input.characteristic !== undefined &&
        !op.characteristics.some((c) => c.id === input.characteristic)
      ) {
        return fail(
          'LOOM_QUALITY_UNKNOWN_CHARACTERISTIC',
          `Operation '${op.operationId}' of order ${op.orderId} has no characteristic '${input.characteristic}'.`,
          { issues: [{ path: 'characteristic', message: 'is not a characteristic of this operation' }] },
        );
      }
      if (input.cause !== undefined) {
        const cause = await this.#checkCause(tx, input.cause);
        if (!cause.ok) return cause;
      }
      const lot = input.lotId === undefined ? null : await d.store.lot(tx, input.lotId);
      if (input.lotId !== undefined && !lot) {
        return fail('LOOM_LOT_NOT_FOUND', `Lot or serial '${input.lotId}' does not exist.`, {
          details: { lotId: input.lotId },
          issues: [{ path: 'lotId', message: `lot '${input.lotId}' does not exist` }],
        });
      }
      // An NCR on the operation's own units (no lot, or a lot its order made) cannot name more units
      // than the operation plans; one on consumed material is in the material's unit.
      if (lot === null || lot.orderId === op.orderId) {
        const { planned, reported, underNcr } = await d.store.ncrCoverage(tx, op.pk);
        const accounted = add(reported, underNcr);
        if (add(accounted, quantity.value) > planned) {
          const room = planned > accounted ? sub(planned, accounted) : ZERO;
          return fail(
            'LOOM_NCR_QUANTITY_EXCEEDS_PLAN',
            `Operation '${op.operationId}' of order ${op.orderId} plans ${formatQuantity(planned)}; ` +
              `${formatQuantity(reported)} are reported good or scrap and ${formatQuantity(underNcr)} are under NCR, ` +
              `so this NCR can name at most ${formatQuantity(room)}.` +
              (op.state === 'Completed'
                ? ' A unit found nonconforming after its operation completed is raised at the operation it is at now.'
                : ''),
            {
              issues: [{ path: 'quantity', message: `at most ${formatQuantity(room)}` }],
              details: {
                planned: formatQuantity(planned),
                reported: formatQuantity(reported),
                underNcr: formatQuantity(underNcr),
              },
            },
          );
        }
      }
      const ncr = await this.#raise(tx, actor, op, ctx, {
        resultId: null,
        characteristicId: input.characteristic ?? null,
        lotId: input.lotId ?? null,
        quantity: quantity.value,
        description: input.description,
        causeCode: input.cause ?? null,
      });
      return ok(ncrView(ncr));
    });
  }

  async ncr(id: number): Promise<Result<NcrView>> {
    const n = await this.#d.store.ncr(null, id);
    return n ? ok(ncrView(n)) : ncrNotFound(id);
  }

  async ncrs(filter: {
    state?: NcrState | undefined;
    orderId?: string | undefined;
    limit?: number | undefined;
  }): Promise<NcrView[]> {
    return (await this.#d.store.ncrs({ ...filter, limit: filter.limit ?? 500 })).map(ncrView);
  }

  dispositionNcr(
    actor: Principal,
    id: number,
    input: DispositionInput,
    ctx: RequestContext,
  ): Promise<IdempotentOutcome<{ ncr: NcrView; reworkOperation: ReworkOperationView | null }>> {
    const d = this.#d;
    return runIdempotent(d.uow, d.idempotency, ctx.idempotency, 200, async (tx) => {
      const ncr = await d.store.ncr(tx, id, true);
      if (!ncr) return ncrNotFound(id);
      if (ncr.state !== 'Open') return ncrIllegal(ncr, 'disposition');
      const cause = await this.#checkCause(tx, input.cause);
      if (!cause.ok) return cause;

      if (input.disposition === 'use-as-is' && ncr.createdBy === actor.username) {
        return fail(
          'LOOM_NCR_SAME_PERSON',
          `${ncr.number} was raised by ${actor.username}; another quality engineer must accept it use-as-is (separation of duties).`,
          { details: { raisedBy: ncr.createdBy } },
        );
      }
      if (input.disposition === 'return-to-supplier' && ncr.lotId === null) {
        return fail(
          'LOOM_NCR_NO_LOT',
          `${ncr.number} names no lot, so there is nothing to return to a supplier; raise the NCR against the supplier's lot.`,
        );
      }

      let signature: ElectronicSignature | null = null;
      if (input.signature === undefined && dispositionNeedsSignature(input.disposition)) {
        return fail(
          'LOOM_NCR_SIGNATURE_REQUIRED',
          `Disposition ${input.disposition} of ${ncr.number} needs your electronic signature: re-enter your password and state its meaning.`,
          { issues: [{ path: 'signature', message: 'is required for this disposition' }] },
        );
      }
      if (input.signature !== undefined) {
        const signed = await d.sign(actor, input.signature, {
          ncr: ncr.number,
          orderId: ncr.orderId,
          operationPk: ncr.operationPk,
          quantity: formatQuantity(ncr.quantity),
          description: ncr.description,
          disposition: input.disposition,
          cause: input.cause,
          reason: input.reason,
        });
        if (!signed.ok) return signed;
        signature = signed.value;
      }

      await d.store.lockOrder(tx, ncr.orderId);
      const op = await d.store.operation(tx, ncr.operationPk, 'update');
      if (!op) throw new Error(`NCR ${ncr.id} refers to missing operation ${ncr.operationPk}`);
      const at = d.clock.now();
      const root = op.isRework ? await d.store.operation(tx, op.reworkOf!, 'update') : op;
      if (!root) throw new Error(`rework operation ${op.pk} refers to missing operation ${op.reworkOf}`);
      const event = {
        quantity: ncr.quantity,
        orderId: op.orderId,
        productId: op.productId,
        operationPk: op.pk,
        operationId: op.operationId,
        routingStep: root.operationId,
        workUnitId: op.workUnitId,
        causeCode: input.cause,
        firstPass: !op.isRework,
        ncrId: ncr.id,
        at,
      };

      let rework: ReworkOperationView | null = null;
      switch (input.disposition) {
        case 'rework': {
          const loop = (await d.store.lastReworkLoop(tx, root.pk)) + 1;
          if (loop > MAX_REWORK_LOOPS) {
            return fail(
              'LOOM_NCR_REWORK_LIMIT',
              `Step '${root.operationId}' of order ${root.orderId} has been reworked ${loop - 1} times; scrap the unit or raise it with engineering.`,
              { details: { loops: loop - 1 } },
            );
          }
          const inserted = await d.store.insertReworkOperation(tx, root, loop, ncr.quantity);
          rework = { ...inserted, loop, reworkOf: root.pk, plannedQuantity: formatQuantity(ncr.quantity) };
          await d.store.addActivity(tx, {
            operationPk: inserted.pk,
            kind: 'rework-inserted',
            actor: actor.username,
            detail: { ncr: ncr.number, reworkOf: root.pk, loop },
            at,
          });
          await d.store.addOperationQuantity(tx, op.pk, 'rework', ncr.quantity);
          await d.store.addProductionEvent(tx, { ...event, kind: 'rework' });
          await d.audit.append(tx, {
            actor,
            action: 'operation.rework-inserted',
            entityType: 'order-operation',
            entityId: String(inserted.pk),
            reason: input.reason,
            newValue: { ...rework, orderId: root.orderId, ncr: ncr.number },
            requestId: ctx.requestId,
          });
          break;
        }
        case 'scrap':
          await d.store.addOperationQuantity(tx, op.pk, 'scrap', ncr.quantity);
          await d.store.addProductionEvent(tx, { ...event, kind: 'scrap' });
          break;
        case 'use-as-is':
          // Accepted under concession: good for the order, but never first-pass good (docs/kpi.md).
          await d.store.addOperationQuantity(tx, op.pk, 'good', ncr.quantity);
          await d.store.addProductionEvent(tx, { ...event, kind: 'good' });
          break;
        case 'return-to-supplier': {
          const lot = await d.store.lot(tx, ncr.lotId!, true);
          if (!lot) throw new Error(`NCR ${ncr.id} refers to missing lot ${ncr.lotId}`);
          await this.#setLotStatus(
            tx,
            actor,
            ctx,
            lot.id,
            lot.status,
            'Blocked',
            `${ncr.number}: return to supplier. ${input.reason}`,
          );
          break;
        }
      }

      // The serial the NCR set apart follows its disposition: back to Released when it is reworked
      // or accepted, Blocked when it is scrapped (return-to-supplier blocked it above).
      if (ncr.lotId !== null && input.disposition !== 'return-to-supplier') {
        await this.#moveSerialOfOrder(tx, actor, ctx, ncr.lotId, ncr.orderId, 'Quarantine', {
          to: input.disposition === 'scrap' ? 'Blocked' : 'Released',
          reason: `${ncr.number}: ${input.disposition}. ${input.reason}`,
        });
      }
      const updated = await d.store.dispositionNcr(tx, ncr.id, {
        disposition: input.disposition,
        causeCode: input.cause,
        reason: input.reason,
        by: actor.username,
        at,
        signature,
        reworkOperationPk: rework?.pk ?? null,
      });
      const view = ncrView(updated);
      await d.audit.append(tx, {
        actor,
        action: 'ncr.dispositioned',
        entityType: 'ncr',
        entityId: ncr.number,
        reason: input.reason,
        oldValue: ncrView(ncr),
        newValue: view,
        signature,
        requestId: ctx.requestId,
      });
      await d.outbox.add(tx, {
        aggregateType: 'production-order',
        aggregateId: ncr.orderId,
        eventType: 'NonconformanceDispositioned',
        payload: { ncr: view, reworkOperation: rework },
      });
      return ok({ ncr: view, reworkOperation: rework });
    });
  }

  closeNcr(
    actor: Principal,
    id: number,
    reason: string | null,
    ctx: RequestContext,
  ): Promise<IdempotentOutcome<NcrView>> {
    const d = this.#d;
    return runIdempotent(d.uow, d.idempotency, ctx.idempotency, 200, async (tx) => {
      const ncr = await d.store.ncr(tx, id, true);
      if (!ncr) return ncrNotFound(id);
      if (ncr.state !== 'Dispositioned') return ncrIllegal(ncr, 'close');
      const view = ncrView(await d.store.closeNcr(tx, id));
      await d.audit.append(tx, {
        actor,
        action: 'ncr.closed',
        entityType: 'ncr',
        entityId: ncr.number,
        reason,
        oldValue: { state: ncr.state },
        newValue: { state: view.state },
        requestId: ctx.requestId,
      });
      await d.outbox.add(tx, {
        aggregateType: 'production-order',
        aggregateId: ncr.orderId,
        eventType: 'NonconformanceClosed',
        payload: view,
      });
      return ok(view);
    });
  }

  async #checkCause(tx: Tx, code: string): Promise<Result<string>> {
    const rc = await this.#d.store.reasonCode(tx, code);
    if (!rc || !rc.active || rc.category !== 'defect') {
      return fail(
        'LOOM_NCR_UNKNOWN_CAUSE',
        `'${code}' is not an active defect cause in the reason-code list.`,
        {
          issues: [{ path: 'cause', message: `'${code}' is not an active defect reason code` }],
        },
      );
    }
    return ok(code);
  }

  async #raise(
    tx: Tx,
    actor: Principal,
    op: QualityOperation,
    ctx: RequestContext,
    n: {
      resultId: number | null;
      characteristicId: string | null;
      lotId: string | null;
      quantity: Quantity;
      description: string;
      causeCode: string | null;
    },
  ): Promise<NcrRecord> {
    const d = this.#d;
    const ncr = await d.store.insertNcr(tx, {
      ...n,
      orderId: op.orderId,
      operationPk: op.pk,
      createdBy: actor.username,
      at: d.clock.now(),
    });
    const view = ncrView(ncr);
    await d.audit.append(tx, {
      actor,
      action: 'ncr.raised',
      entityType: 'ncr',
      entityId: ncr.number,
      newValue: view,
      requestId: ctx.requestId,
    });
    await d.outbox.add(tx, {
      aggregateType: 'production-order',
      aggregateId: op.orderId,
      eventType: 'NonconformanceRaised',
      payload: view,
    });
    // A nonconforming unit is set apart until its disposition: a Released serial of the order goes
    // to Quarantine, so it cannot be consumed elsewhere meanwhile. A lot is not: the NCR names part
    // of it, and holding the rest is a quality engineer's decision (POST /api/lots/:id/hold).
    if (n.lotId !== null) {
      await this.#moveSerialOfOrder(tx, actor, ctx, n.lotId, op.orderId, 'Released', {
        to: 'Quarantine',
        reason: `${ncr.number} raised: ${n.description}`,
      });
    }
    return ncr;
  }

  /** Moves `lotId` from `from` to `change.to` if it is a serial of `orderId` in state `from` (locked first). */
  async #moveSerialOfOrder(
    tx: Tx,
    actor: Principal,
    ctx: RequestContext,
    lotId: string,
    orderId: string,
    from: 'Released' | 'Quarantine',
    change: { to: 'Quarantine' | 'Released' | 'Blocked'; reason: string },
  ): Promise<void> {
    const lot = await this.#d.store.lot(tx, lotId, true);
    if (lot && lot.kind === 'serial' && lot.orderId === orderId && lot.status === from) {
      await this.#setLotStatus(tx, actor, ctx, lot.id, from, change.to, change.reason);
    }
  }

  async #setLotStatus(
    tx: Tx,
    actor: Principal,
    ctx: RequestContext,
    lotId: string,
    from: string,
    to: 'Quarantine' | 'Released' | 'Blocked',
    reason: string,
  ): Promise<void> {
    const d = this.#d;
    await d.store.setLotStatus(tx, lotId, to, d.clock.now());
    await d.audit.append(tx, {
      actor,
      action: to === 'Quarantine' ? 'lot.quarantined' : to === 'Released' ? 'lot.released' : 'lot.blocked',
      entityType: 'lot',
      entityId: lotId,
      reason,
      oldValue: { status: from },
      newValue: { status: to },
      requestId: ctx.requestId,
    });
  }
}

export interface ReworkOperationView {
  readonly pk: number;
  readonly operationId: string;
  readonly sequence: number;
  readonly name: string;
  readonly loop: number;
  readonly reworkOf: number;
  readonly plannedQuantity: string;
}

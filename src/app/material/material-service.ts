import { ok, type Result } from '../../domain/shared/result.ts';
import { runIdempotent, type IdempotentOutcome } from '../shared/idempotent.ts';
import type { Tx } from '../ports.ts';
import { changeLotStatus, type LotStatusChange, type LotStatusInput } from './change-lot-status.ts';
import { consumeMaterial, type ConsumeMaterialInput, type ConsumptionView } from './consume-material.ts';
import { lotNotFound, lotView, type LotView, type MaterialCommand, type MaterialDeps } from './lot-view.ts';
import type { LotStatus } from './material-ports.ts';
import { mergeLots, type MergeLotsInput } from './merge-lots.ts';
import { moveLot } from './move-lot.ts';
import { produceOutput, type OutputView, type ProduceOutputInput } from './produce-output.ts';
import { receiveLot, type ReceiveLotInput } from './receive-lot.ts';
import { splitLot, type SplitLotInput } from './split-lot.ts';

/**
 * Lots and serials: receive, split, merge, move, hold/release, consume and produce at an
 * operation. Every command is one transaction holding its Idempotency-Key, the change, its audit
 * entry and (for consumption and output) its outbox event.
 */
export class MaterialService {
  readonly #deps: MaterialDeps;

  constructor(deps: MaterialDeps) {
    this.#deps = deps;
  }

  #run<T>(cmd: MaterialCommand, fn: (tx: Tx) => Promise<Result<T>>): Promise<IdempotentOutcome<T>> {
    return runIdempotent(this.#deps.uow, this.#deps.idempotency, cmd.idempotency, cmd.status, fn);
  }

  async get(id: string): Promise<Result<LotView>> {
    const lot = await this.#deps.lots.get(null, id);
    return lot ? ok(lotView(lot)) : lotNotFound(id);
  }

  async list(filter: { material?: string; status?: LotStatus; limit?: number }): Promise<LotView[]> {
    const lots = await this.#deps.lots.list({
      ...(filter.material !== undefined ? { materialId: filter.material } : {}),
      ...(filter.status !== undefined ? { status: filter.status } : {}),
      limit: filter.limit ?? 500,
    });
    return lots.map(lotView);
  }

  receive(cmd: MaterialCommand, input: ReceiveLotInput): Promise<IdempotentOutcome<LotView>> {
    return this.#run(cmd, (tx) => receiveLot(this.#deps, tx, cmd, input));
  }

  split(
    cmd: MaterialCommand,
    id: string,
    input: SplitLotInput,
  ): Promise<IdempotentOutcome<{ source: LotView; created: LotView }>> {
    return this.#run(cmd, (tx) => splitLot(this.#deps, tx, cmd, id, input));
  }

  merge(
    cmd: MaterialCommand,
    input: MergeLotsInput,
  ): Promise<IdempotentOutcome<{ into: LotView; from: LotView[] }>> {
    return this.#run(cmd, (tx) => mergeLots(this.#deps, tx, cmd, input));
  }

  move(cmd: MaterialCommand, id: string, input: { location: string }): Promise<IdempotentOutcome<LotView>> {
    return this.#run(cmd, (tx) => moveLot(this.#deps, tx, cmd, id, input));
  }

  changeStatus(
    cmd: MaterialCommand,
    id: string,
    change: LotStatusChange,
    input: LotStatusInput,
  ): Promise<IdempotentOutcome<LotView>> {
    return this.#run(cmd, (tx) => changeLotStatus(this.#deps, tx, cmd, id, change, input));
  }

  consume(
    cmd: MaterialCommand,
    operationPk: number,
    input: ConsumeMaterialInput,
  ): Promise<IdempotentOutcome<ConsumptionView>> {
    return this.#run(cmd, (tx) => consumeMaterial(this.#deps, tx, cmd, operationPk, input));
  }

  produce(
    cmd: MaterialCommand,
    operationPk: number,
    input: ProduceOutputInput,
  ): Promise<IdempotentOutcome<OutputView>> {
    return this.#run(cmd, (tx) => produceOutput(this.#deps, tx, cmd, operationPk, input));
  }
}

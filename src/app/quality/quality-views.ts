import type { Disposition, NcrState } from '../../domain/quality/quality.ts';
import { formatQuantity } from '../../domain/shared/quantity.ts';
import type { ElectronicSignature } from '../ports.ts';
import type { NcrRecord } from './quality-ports.ts';

/** An NCR as the API shows it: plain JSON, quantities as exact decimal strings. */
export interface NcrView {
  readonly id: number;
  readonly number: string;
  readonly orderId: string;
  readonly operationPk: number;
  readonly operationId: string;
  readonly resultId: number | null;
  readonly characteristic: string | null;
  readonly lotId: string | null;
  readonly quantity: string;
  readonly description: string;
  readonly cause: string | null;
  readonly state: NcrState;
  readonly disposition: Disposition | null;
  readonly dispositionReason: string | null;
  readonly dispositionedBy: string | null;
  readonly dispositionedAt: string | null;
  readonly signature: ElectronicSignature | null;
  readonly reworkOperationPk: number | null;
  readonly createdBy: string;
  readonly createdAt: string;
}

export const ncrView = (n: NcrRecord): NcrView => ({
  id: n.id,
  number: n.number,
  orderId: n.orderId,
  operationPk: n.operationPk,
  operationId: n.operationId,
  resultId: n.resultId,
  characteristic: n.characteristicId,
  lotId: n.lotId,
  quantity: formatQuantity(n.quantity),
  description: n.description,
  cause: n.causeCode,
  state: n.state,
  disposition: n.disposition,
  dispositionReason: n.dispositionReason,
  dispositionedBy: n.dispositionedBy,
  dispositionedAt: n.dispositionedAt,
  signature: n.signature,
  reworkOperationPk: n.reworkOperationPk,
  createdBy: n.createdBy,
  createdAt: n.createdAt,
});

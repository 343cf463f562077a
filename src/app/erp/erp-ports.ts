import type { ExecutionDeps } from '../execution/execution-deps.ts';
import type { MaterialDeps } from '../material/lot-view.ts';
import type { PlantStore } from '../plant/plant-ports.ts';
import type { Tx } from '../ports.ts';

/** Where an inbound ERP message came from (`erp_inbound_messages.source`). */
export type InboundSource = 'rest' | 'b2mml' | 'mapping';

export interface InboundMessage {
  /** The B2MML `ApplicationArea/BODID`, or `<kind>:<documentId>` for a REST document. */
  readonly messageId: string;
  readonly source: InboundSource;
  /** The B2MML verb and noun (`ProcessProductionSchedule`) or the REST document kind. */
  readonly verb: string;
  /** SHA-256 of the message's content as Loom understood it (not its bytes: a resend may re-indent). */
  readonly requestHash: string;
}

export type InboundClaim =
  | { readonly kind: 'new' }
  | { readonly kind: 'replay'; readonly result: unknown }
  | { readonly kind: 'conflict'; readonly verb: string };

/**
 * The dedupe record of ERP messages (RELIABILITY.md rule 3): written in the transaction of the
 * effect, so a message is applied exactly once however often the ERP sends it.
 */
export interface InboundMessageStore {
  /** Claims the id in `tx`; waits while another transaction holds it, then sees its outcome. */
  claim(tx: Tx, message: InboundMessage): Promise<InboundClaim>;
  complete(tx: Tx, messageId: string, result: unknown): Promise<void>;
}

export interface ErpDeps {
  readonly execution: ExecutionDeps;
  readonly materials: MaterialDeps;
  readonly plant: PlantStore;
  readonly inbound: InboundMessageStore;
}

import type { UnitOfWork } from '../ports.ts';
import { retryDelayMs } from './backoff.ts';
import type {
  ActualsFolder,
  AttemptRecord,
  EncodedMessage,
  ErpEndpoint,
  OutboundEncoder,
  OutboxMessage,
  OutboxRelayStore,
} from './outbox-ports.ts';

/**
 * The outbox relay: sends committed outbox events to the ERP, at least once, in order per
 * production order (RELIABILITY.md rule 4).
 *
 * - **Claiming.** Each round claims a small batch in one transaction: per order only its oldest
 *   undelivered event, locked `FOR UPDATE SKIP LOCKED`, so several Loom instances share the work
 *   and never send one event twice at the same time. The locks are held while the batch is sent;
 *   the outcomes are written in the same transaction. A crash rolls the batch back: its events
 *   stay pending and are sent again, with the same idempotency key.
 * - **Retries.** A non-2xx answer, a timeout or a refused connection counts an attempt and sets the
 *   next one after a full-jitter exponential backoff; after `maxAttempts` the event is dead.
 * - **Isolation.** A failing or dead event holds back only the later events of *its own* order
 *   (their order matters to the ERP); every other order keeps flowing. A dead event stays visible
 *   at `GET /api/erp/outbox?status=dead` until an admin replays it.
 * - **In-flight bound.** `lanes` loops each send at most `batchSize` requests at once.
 */
export interface DelivererOptions {
  readonly maxAttempts: number;
  readonly retryBaseMs: number;
  readonly retryMaxMs: number;
  /** Events claimed (and sent concurrently) per round and lane. */
  readonly batchSize?: number;
  /** Concurrent claim-and-send loops; in-flight requests ≤ lanes × batchSize. */
  readonly lanes?: number;
  /** Pause of a lane that found nothing due. */
  readonly idleMs?: number;
}

export interface DelivererDeps {
  readonly uow: UnitOfWork;
  readonly store: OutboxRelayStore;
  readonly encoder: OutboundEncoder;
  /** The ERP's HTTP endpoint; absent when only the outbound folder is configured. */
  readonly endpoint?: ErpEndpoint;
  readonly folder?: ActualsFolder;
  /** In [0, 1); injected so tests decide the jitter. */
  readonly random?: () => number;
  /** Infrastructure failures of a round (database unreachable); the loop carries on. */
  readonly onError?: (error: unknown) => void;
}

export interface RoundResult {
  readonly claimed: number;
  readonly delivered: number;
  readonly failed: number;
  readonly dead: number;
}

class Stopped extends Error {
  constructor() {
    super('deliverer stopped');
  }
}

const MAX_ERROR_LENGTH = 500;

export class OutboxDeliverer {
  readonly #deps: DelivererDeps;
  readonly #options: Required<DelivererOptions>;
  #lanes: Promise<void>[] = [];
  #abort = new AbortController();
  #wake: (() => void)[] = [];
  #running = false;

  constructor(deps: DelivererDeps, options: DelivererOptions) {
    this.#deps = deps;
    this.#options = { batchSize: 4, lanes: 2, idleMs: 250, ...options };
  }

  /** True between `start()` and the end of `stop()`. */
  get running(): boolean {
    return this.#running;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#abort = new AbortController();
    this.#lanes = Array.from({ length: this.#options.lanes }, () => this.#lane());
  }

  /** Aborts in-flight requests (their batch rolls back and is sent again later) and waits for the lanes. */
  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#abort.abort();
    for (const wake of this.#wake.splice(0)) wake();
    await Promise.allSettled(this.#lanes);
    this.#lanes = [];
    this.#running = false;
  }

  /** Rounds until nothing is due (events waiting for their backoff are left): `loom deliver --once`. */
  async drain(): Promise<RoundResult> {
    const total = { claimed: 0, delivered: 0, failed: 0, dead: 0 };
    for (;;) {
      const r = await this.round(new AbortController().signal);
      total.claimed += r.claimed;
      total.delivered += r.delivered;
      total.failed += r.failed;
      total.dead += r.dead;
      if (r.claimed === 0) return total;
    }
  }

  /** Claims one batch, sends it, records every outcome, in one transaction. */
  async round(signal: AbortSignal): Promise<RoundResult> {
    const { uow, store } = this.#deps;
    return uow.run(async (tx) => {
      const batch = await store.claimDue(tx, this.#options.batchSize);
      const records = await Promise.all(batch.map((m) => this.#attempt(m, signal)));
      if (signal.aborted) throw new Stopped();
      const result = { claimed: batch.length, delivered: 0, failed: 0, dead: 0 };
      for (const [i, record] of records.entries()) {
        await store.recordAttempt(tx, batch[i]!, record);
        result[record.outcome] += 1;
      }
      return result;
    });
  }

  async #lane(): Promise<void> {
    const signal = this.#abort.signal;
    while (!signal.aborted) {
      let claimed = 0;
      try {
        claimed = (await this.round(signal)).claimed;
      } catch (e) {
        if (signal.aborted) return;
        this.#deps.onError?.(e);
      }
      if (claimed === 0) await this.#sleep(this.#options.idleMs);
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#wake = this.#wake.filter((w) => w !== done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#wake.push(done);
    });
  }

  async #attempt(message: OutboxMessage, signal: AbortSignal): Promise<AttemptRecord> {
    const started = performance.now();
    const elapsed = () => Math.round(performance.now() - started);
    const encoded = await this.#deps.encoder.encode(message);
    if (!encoded.ok) {
      return {
        outcome: 'dead',
        httpStatus: null,
        error: clip(`cannot encode as ${this.#deps.encoder.format}: ${encoded.error.message}`),
        durationMs: elapsed(),
      };
    }
    const { folder, endpoint } = this.#deps;
    if (folder?.accepts(message.eventType)) {
      try {
        await folder.write(message);
      } catch (e) {
        return this.#failed(message, null, `outbound folder: ${(e as Error).message}`, elapsed());
      }
    }
    if (!endpoint) return { outcome: 'delivered', httpStatus: null, error: null, durationMs: elapsed() };
    if (encoded.value === null) {
      return {
        outcome: 'delivered',
        httpStatus: null,
        error: `not sent: the ${this.#deps.encoder.format} format has no message for ${message.eventType}`,
        durationMs: elapsed(),
      };
    }
    return this.#send(message, encoded.value, signal, elapsed);
  }

  async #send(
    message: OutboxMessage,
    encoded: EncodedMessage,
    signal: AbortSignal,
    elapsed: () => number,
  ): Promise<AttemptRecord> {
    const answer = await this.#deps.endpoint!.send(message, encoded, signal);
    switch (answer.kind) {
      case 'accepted':
        return { outcome: 'delivered', httpStatus: answer.status, error: null, durationMs: elapsed() };
      case 'refused':
        return this.#failed(message, answer.status, answer.error, elapsed());
      case 'unreachable':
        return this.#failed(message, null, answer.error, elapsed());
    }
  }

  #failed(
    message: OutboxMessage,
    httpStatus: number | null,
    error: string,
    durationMs: number,
  ): AttemptRecord {
    const attempts = message.attempts + 1;
    if (attempts >= this.#options.maxAttempts) {
      return {
        outcome: 'dead',
        httpStatus,
        error: clip(`${error} (attempt ${attempts} of ${this.#options.maxAttempts}: dead-lettered)`),
        durationMs,
      };
    }
    return {
      outcome: 'failed',
      httpStatus,
      error: clip(error),
      durationMs,
      retryInMs: retryDelayMs(
        message.attempts,
        { baseMs: this.#options.retryBaseMs, maxMs: this.#options.retryMaxMs },
        this.#deps.random ?? Math.random,
      ),
    };
  }
}

function clip(s: string): string {
  return s.length > MAX_ERROR_LENGTH ? `${s.slice(0, MAX_ERROR_LENGTH - 1)}…` : s;
}

import type { ErpEndpoint } from '../../app/erp/outbox-ports.ts';

export interface HttpErpClientOptions {
  readonly url: string;
  /** Bearer token presented to the ERP (secret: never logged, never in an error text). */
  readonly token?: string;
  readonly timeoutMs: number;
}

/** Longest piece of an ERP's error body kept in `last_error`. */
const ERROR_BODY_CHARS = 300;

/**
 * POSTs one encoded outbox event to the ERP with `Idempotency-Key: <message id>` (the B2MML BODID,
 * identical on every attempt, so the ERP can dedupe the redeliveries at-least-once implies).
 * Uses Node's fetch (undici); a request that takes longer than `timeoutMs` is abandoned and
 * counts as a failed attempt. Never throws.
 */
export function httpErpClient(options: HttpErpClientOptions): ErpEndpoint {
  return {
    async send(message, encoded, signal) {
      const timeout = AbortSignal.timeout(options.timeoutMs);
      try {
        const res = await fetch(options.url, {
          method: 'POST',
          headers: {
            'content-type': encoded.contentType,
            'idempotency-key': message.messageId,
            'x-loom-event-type': message.eventType,
            ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
          },
          body: encoded.body,
          signal: AbortSignal.any([signal, timeout]),
        });
        // Reading the body releases the connection to the pool (undici keeps it otherwise).
        const text = await res.text().catch(() => '');
        if (res.status >= 200 && res.status < 300) return { kind: 'accepted', status: res.status };
        const detail = text.trim().replace(/\s+/g, ' ').slice(0, ERROR_BODY_CHARS);
        return {
          kind: 'refused',
          status: res.status,
          error: `ERP answered ${res.status}${detail ? `: ${detail}` : ''}`,
        };
      } catch (e) {
        return { kind: 'unreachable', error: describe(e, timeout.aborted, options.timeoutMs) };
      }
    },
  };
}

function describe(e: unknown, timedOut: boolean, timeoutMs: number): string {
  if (timedOut) return `no answer within ${timeoutMs} ms`;
  const err = e as Error & { cause?: { code?: string; message?: string } };
  if (err.name === 'AbortError') return 'request aborted (Loom stopping)';
  const cause = err.cause?.code ?? err.cause?.message;
  return `ERP unreachable: ${err.message}${cause ? ` (${cause})` : ''}`;
}

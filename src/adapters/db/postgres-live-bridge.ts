import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { LiveEvent, LiveHub } from '../../app/telemetry/live-hub.ts';
import { listenPostgres, type PostgresListener } from './postgres-listener.ts';
import type { Database } from './postgres-pool.ts';

/** PostgreSQL refuses a NOTIFY payload of 8000 bytes or more. */
const PG_NOTIFY_LIMIT = 8000;
const REPORT_EVERY_MS = 10_000;
const ENVELOPE_VERSION = 1;

export interface LiveBridgeLog {
  warn(details: object, message: string): void;
}

export interface PostgresLiveBridgeOptions {
  readonly db: Database;
  readonly hub: LiveHub;
  readonly log: LiveBridgeLog;
  /** Default `loom_live`. Every instance of one installation uses the same channel. */
  readonly channel?: string;
  /** Largest payload of one notification, below PostgreSQL's 8000 bytes. Default 7900. */
  readonly maxPayloadBytes?: number;
  /** Default: a random UUID per start. */
  readonly instanceId?: string;
  readonly now?: () => number;
}

export interface LiveBridgeStats {
  readonly instanceId: string;
  /** Notifications sent, and the events in them. */
  readonly notifications: number;
  readonly eventsSent: number;
  /** Events received from other instances and published to this hub. */
  readonly eventsReceived: number;
  readonly notifyFailures: number;
  /** Events lost with a failed NOTIFY. */
  readonly eventsLost: number;
  /** Events too large for one notification (a very long string value): not forwarded. */
  readonly oversized: number;
  /** Received notifications or events that are not a live envelope of this version: ignored. */
  readonly malformed: number;
}

export interface PostgresLiveBridge {
  readonly instanceId: string;
  stats(): LiveBridgeStats;
  stop(): Promise<void>;
}

const quality = z.enum(['good', 'uncertain', 'bad']);
const remoteEvent = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('sample'),
    signal: z.string().min(1),
    equipment: z.string().min(1),
    t: z.number(),
    value: z.union([z.number(), z.boolean(), z.string(), z.null()]),
    quality,
  }),
  z.object({
    type: z.literal('stale'),
    signal: z.string().min(1),
    equipment: z.string().min(1),
    at: z.number(),
    reason: z.string(),
  }),
]);
const envelope = z.object({ v: z.literal(ENVELOPE_VERSION), i: z.string(), e: z.array(z.unknown()) });

/**
 * Live fan-out between Loom instances over PostgreSQL LISTEN/NOTIFY (DESIGN.md, "Scaling past one
 * machine"). Events raised on this instance reach the bridge through the hub like any subscriber:
 * coalesced to the latest per signal and handed over every flush interval. They are sent with
 * `pg_notify` in pieces below the payload limit, tagged with this instance's id; every instance
 * LISTENs and publishes what others sent with origin `remote`, which the bridge never forwards.
 *
 * Ingest never waits: while a NOTIFY is in flight the bridge reports itself congested and the hub
 * keeps coalescing for it. A failed NOTIFY loses that batch (live values are superseded within
 * a second anyway); failures are counted and logged at most every 10 s.
 */
export async function startPostgresLiveBridge(
  options: PostgresLiveBridgeOptions,
): Promise<PostgresLiveBridge> {
  const { db, hub, log } = options;
  const channel = options.channel ?? 'loom_live';
  const maxBytes = Math.min(options.maxPayloadBytes ?? 7900, PG_NOTIFY_LIMIT - 1);
  const instanceId = options.instanceId ?? randomUUID();
  const now = options.now ?? Date.now;
  const counts = {
    notifications: 0,
    eventsSent: 0,
    eventsReceived: 0,
    notifyFailures: 0,
    eventsLost: 0,
    oversized: 0,
    malformed: 0,
  };
  let inFlight: Promise<void> | null = null;
  const reported = { notify: 0, malformed: 0 };
  const warnAtMostEvery = (kind: keyof typeof reported, details: object, message: string) => {
    const t = now();
    if (t - reported[kind] < REPORT_EVERY_MS) return;
    reported[kind] = t;
    log.warn(details, message);
  };

  const send = async (events: readonly LiveEvent[]) => {
    const pieces = splitPayloads(instanceId, events, maxBytes);
    counts.oversized += pieces.oversized;
    if (pieces.payloads.length === 0) return;
    try {
      // One statement, one transaction: the pieces arrive together and in order.
      await db.query(
        'SELECT pg_notify($1, p) FROM unnest($2::text[]) WITH ORDINALITY AS x(p, n) ORDER BY n',
        [channel, pieces.payloads],
      );
      counts.notifications += pieces.payloads.length;
      counts.eventsSent += pieces.events;
    } catch (e) {
      counts.notifyFailures++;
      counts.eventsLost += pieces.events;
      warnAtMostEvery(
        'notify',
        { err: e, notifyFailures: counts.notifyFailures, eventsLost: counts.eventsLost },
        'forwarding live events to other instances failed (NOTIFY); they see no live values meanwhile',
      );
    }
  };

  const receive = (payload: string) => {
    // listenPostgres reports a reconnect with an empty payload; live values need no catch-up.
    if (payload === '') return;
    let parsed: z.infer<typeof envelope>;
    try {
      parsed = envelope.parse(JSON.parse(payload));
    } catch (e) {
      counts.malformed++;
      warnAtMostEvery('malformed', { err: e, channel }, 'ignored a malformed live notification');
      return;
    }
    if (parsed.i === instanceId) return;
    const events: LiveEvent[] = [];
    for (const raw of parsed.e) {
      const r = remoteEvent.safeParse(raw);
      // An instance of a newer version may send event types this one does not know yet.
      if (r.success) events.push(r.data);
      else counts.malformed++;
    }
    counts.eventsReceived += events.length;
    if (events.length > 0) hub.publish(events, 'remote');
  };

  const listener: PostgresListener = await listenPostgres(db, channel, receive, log);
  const subscription = hub.subscribe(
    { all: true },
    {
      bufferedBytes: () => (inFlight === null ? 0 : Number.POSITIVE_INFINITY),
      deliver(events) {
        inFlight = send(events).finally(() => {
          inFlight = null;
        });
      },
      heartbeat: () => undefined,
      close: () => undefined,
    },
    {
      origin: 'local',
      internal: true,
      dropAfterMs: Number.POSITIVE_INFINITY,
      maxPending: 1_000_000,
      snapshot: false,
    },
  );

  return {
    instanceId,
    stats: () => ({ instanceId, ...counts }),
    async stop() {
      subscription.unsubscribe();
      await inFlight;
      await listener.stop();
    },
  };
}

/**
 * Events as JSON envelopes `{"v":1,"i":<instance>,"e":[...]}` of at most `maxBytes` bytes (UTF-8,
 * as PostgreSQL counts them in a UTF-8 database).
 */
export function splitPayloads(
  instanceId: string,
  events: readonly LiveEvent[],
  maxBytes: number,
): { payloads: string[]; events: number; oversized: number } {
  const head = `{"v":${ENVELOPE_VERSION},"i":${JSON.stringify(instanceId)},"e":[`;
  const tail = ']}';
  const frame = Buffer.byteLength(head) + tail.length;
  const payloads: string[] = [];
  let parts: string[] = [];
  let size = frame;
  let sent = 0;
  let oversized = 0;
  for (const e of events) {
    const json = JSON.stringify(e);
    const bytes = Buffer.byteLength(json);
    if (frame + bytes > maxBytes) {
      oversized++;
      continue;
    }
    const comma = parts.length > 0 ? 1 : 0;
    if (size + comma + bytes > maxBytes) {
      payloads.push(head + parts.join(',') + tail);
      parts = [];
      size = frame;
    }
    size += (parts.length > 0 ? 1 : 0) + bytes;
    parts.push(json);
    sent++;
  }
  if (parts.length > 0) payloads.push(head + parts.join(',') + tail);
  return { payloads, events: sent, oversized };
}

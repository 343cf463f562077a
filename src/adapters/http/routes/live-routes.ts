import type { FastifyInstance } from 'fastify';
import type { ServerResponse } from 'node:http';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { LiveClient, LiveEvent, LiveHub, LiveHubStats } from '../../../app/telemetry/live-hub.ts';
import { Identifier } from '../../../domain/shared/fields.ts';
import { sendProblem } from '../problem.ts';

/** Most equipment and signals one stream may name. */
export const MAX_LIVE_EQUIPMENT = 50;
export const MAX_LIVE_SIGNALS = 500;

export interface LiveRouteDeps {
  readonly hub: LiveHub;
  /** Cross-instance bridge counters, when one runs. */
  readonly bridgeStats?: () => object | null;
  /**
   * A stream is ended after this long; the browser reconnects (EventSource does so by itself)
   * and is authenticated again, so a revoked session or token stops streaming within this time.
   * Default 10 minutes.
   */
  readonly maxStreamMs?: number;
  /** Reconnect delay suggested to the client (`retry:`). Default 2 s. */
  readonly retryMs?: number;
}

const idList = (max: number) =>
  z
    .string()
    .max(max * 65)
    .transform((v) => v.split(',').filter((id) => id !== ''))
    .pipe(z.array(Identifier).max(max, { error: `at most ${max} ids` }));

/**
 * `GET /api/live`: Server-Sent Events of live signal values for dashboards. Each stream starts
 * with the latest known value of every matching signal, then sends what changed every flush
 * interval of the hub, coalesced to the latest value per signal.
 */
export function liveRoutes(deps: LiveRouteDeps) {
  const maxStreamMs = deps.maxStreamMs ?? 600_000;
  const retryMs = deps.retryMs ?? 2000;
  return async function (base: FastifyInstance) {
    const app = base.withTypeProvider<ZodTypeProvider>();
    const open = new Set<() => void>();

    // Fastify's close waits for every connection; an open stream never ends by itself.
    app.addHook('preClose', async () => {
      for (const end of [...open]) end();
    });

    app.get(
      '/api/live',
      {
        config: { allow: 'authenticated' },
        schema: {
          tags: ['telemetry'],
          summary:
            'Live signal values as Server-Sent Events, for the equipment and/or signals named (comma-separated ids, at least one). ' +
            'Events: `samples` (JSON array of {signal, equipment, t, value, quality}, latest per signal) and `stale` ' +
            '(JSON array of {signal, equipment, at, reason}); a `: keep-alive` comment when idle. Ids that do not exist simply receive nothing.',
          querystring: z.strictObject({
            equipment: idList(MAX_LIVE_EQUIPMENT).optional(),
            signals: idList(MAX_LIVE_SIGNALS).optional(),
          }),
        },
      },
      async (req, reply) => {
        const equipment = req.query.equipment ?? [];
        const signals = req.query.signals ?? [];
        if (equipment.length === 0 && signals.length === 0) {
          return sendProblem(reply, {
            code: 'LOOM_VALIDATION_FAILED',
            message: 'Invalid request: name at least one equipment or signal (?equipment=a,b&signals=x,y).',
            issues: [{ path: 'querystring', message: 'name at least one equipment or signal' }],
          });
        }

        reply.hijack();
        const res = reply.raw;
        res.writeHead(200, {
          'content-type': 'text/event-stream; charset=utf-8',
          'cache-control': 'no-cache, no-transform',
          connection: 'keep-alive',
          'x-accel-buffering': 'no',
          'x-content-type-options': 'nosniff',
          'x-request-id': req.id,
        });
        res.write(`retry: ${retryMs}\n\n`);

        let ended = false;
        const end = () => {
          if (ended) return;
          ended = true;
          open.delete(end);
          clearTimeout(lifetime);
          subscription.unsubscribe();
          res.end();
        };
        const client = sseClient(res, () => {
          ended = true;
          open.delete(end);
          clearTimeout(lifetime);
        });
        const subscription = deps.hub.subscribe({ equipment, signals }, client);
        const lifetime = setTimeout(end, maxStreamMs);
        lifetime.unref();
        open.add(end);
        res.on('close', end);
        res.on('error', (e) => req.log.debug({ err: e }, 'live stream socket error'));
      },
    );

    app.get(
      '/api/telemetry/live',
      {
        config: { allow: 'authenticated' },
        schema: {
          tags: ['telemetry'],
          summary:
            "This instance's live stream: open dashboard streams, events published (local and from other instances), delivered, coalesced, dropped slow clients; and the cross-instance bridge",
        },
      },
      async (): Promise<{ hub: LiveHubStats; bridge: object | null }> => ({
        hub: deps.hub.stats(),
        bridge: deps.bridgeStats?.() ?? null,
      }),
    );
  };
}

/** Writes hub deliveries as SSE frames; consecutive events of one kind share a frame. */
function sseClient(res: ServerResponse, onDropped: () => void): LiveClient {
  return {
    bufferedBytes: () => res.writableLength,
    deliver(events) {
      let frame = '';
      let i = 0;
      while (i < events.length) {
        const type = events[i]!.type;
        const group: unknown[] = [];
        for (; i < events.length && events[i]!.type === type; i++) group.push(payloadOf(events[i]!));
        frame += `event: ${frameName(type)}\ndata: ${JSON.stringify(group)}\n\n`;
      }
      res.write(frame);
    },
    heartbeat() {
      res.write(': keep-alive\n\n');
    },
    close(reason) {
      onDropped();
      // A congested or failed socket would hold its buffer until the peer reads: free it now.
      if (reason === 'shutdown') res.end();
      else res.destroy();
    },
  };
}

function frameName(type: LiveEvent['type']): string {
  switch (type) {
    case 'sample':
      return 'samples';
    case 'stale':
      return 'stale';
  }
}

function payloadOf(e: LiveEvent): object {
  const { type: _type, ...rest } = e;
  return rest;
}

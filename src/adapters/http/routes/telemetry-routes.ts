import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { IngestStats } from '../../../app/telemetry/ingest-pipeline.ts';
import { signalHistory, type SignalHistoryStore } from '../../../app/telemetry/signal-history.ts';
import type { ConnectivityEntry } from '../../../app/telemetry/telemetry-ports.ts';
import { Identifier } from '../../../domain/shared/fields.ts';
import { sendProblem } from '../problem.ts';

const readers = { allow: 'authenticated' } as const;
const instant = z.iso.datetime({ offset: true }).transform((v) => new Date(v));
const HOUR_MS = 3_600_000;

export interface TelemetryRouteDeps {
  readonly history: SignalHistoryStore;
  readonly ingestStats: () => IngestStats;
  readonly connectivity: () => ConnectivityEntry[];
  readonly now: () => Date;
}

/** Signal history, latest values per equipment, ingest statistics and connection health. */
export function telemetryRoutes(deps: TelemetryRouteDeps) {
  return async function (base: FastifyInstance) {
    const app = base.withTypeProvider<ZodTypeProvider>();

    app.get(
      '/api/signals/:id/history',
      {
        config: readers,
        schema: {
          tags: ['telemetry'],
          summary:
            'A signal over [from, to) in at most maxPoints points: raw samples when they fit, else time buckets (avg/min/max/n). Default: the last hour, 1000 points.',
          params: z.strictObject({ id: Identifier }),
          querystring: z.strictObject({
            from: instant.optional(),
            to: instant.optional(),
            maxPoints: z.coerce.number().int().min(2).max(100_000).default(1000),
          }),
        },
      },
      async (req, reply) => {
        const to = req.query.to ?? deps.now();
        const from = req.query.from ?? new Date(to.getTime() - HOUR_MS);
        const r = await signalHistory(deps.history, req.params.id, {
          from,
          to,
          maxPoints: req.query.maxPoints,
        });
        if (!r.ok) return sendProblem(reply, r.error);
        const { signal, history } = r.value;
        return {
          signal: signal.id,
          equipment: signal.equipment,
          dataType: signal.dataType,
          from: new Date(r.value.from).toISOString(),
          to: new Date(r.value.to).toISOString(),
          ...history,
        };
      },
    );

    app.get(
      '/api/equipment/:id/signals/latest',
      {
        config: readers,
        schema: {
          tags: ['telemetry'],
          summary: 'The latest live value of every signal of one equipment, with quality and staleness',
          params: z.strictObject({ id: Identifier }),
        },
      },
      async (req, reply) => {
        const latest = await deps.history.latestOfEquipment(req.params.id);
        if (latest === null) {
          return sendProblem(reply, {
            code: 'LOOM_PLANT_NOT_FOUND',
            message: `equipment '${req.params.id}' does not exist.`,
            details: { entityType: 'equipment', id: req.params.id },
          });
        }
        return { equipment: req.params.id, signals: latest };
      },
    );

    app.get(
      '/api/telemetry/ingest',
      {
        config: readers,
        schema: {
          tags: ['telemetry'],
          summary:
            "This instance's ingest pipeline: samples accepted, stored, dropped (buffer full), duplicates, unmapped tags, commit lag",
        },
      },
      async () => deps.ingestStats(),
    );

    app.get(
      '/api/connectivity',
      {
        config: readers,
        schema: {
          tags: ['telemetry'],
          summary:
            "This instance's connections: MQTT brokers, Sparkplug edge nodes and devices, with state, last message and counters",
        },
      },
      async () => ({ entries: deps.connectivity() }),
    );
  };
}

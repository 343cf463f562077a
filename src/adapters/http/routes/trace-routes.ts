import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { GenealogyTrace } from '../../../app/material/trace-genealogy.ts';
import { sendProblem } from '../problem.ts';
import { LotId } from './material-routes.ts';

const readers = { allow: 'authenticated' } as const;
const lotParam = z.strictObject({ id: LotId });

/** Genealogy: backward and forward trace trees, and the recall view from one suspect lot. */
export function traceRoutes(trace: GenealogyTrace) {
  return async function (base: FastifyInstance) {
    const app = base.withTypeProvider<ZodTypeProvider>();
    const tags = ['trace'];

    for (const direction of ['backward', 'forward'] as const) {
      app.get(
        `/api/trace/${direction}/:id`,
        {
          config: readers,
          schema: {
            tags,
            summary:
              direction === 'backward'
                ? 'What a lot or serial was made from, all levels, with operations, people, equipment and quality results'
                : 'What a lot or serial went into, all levels',
            params: lotParam,
          },
        },
        async (req, reply) => {
          // The use case serialises the tree while PostgreSQL still looks up the lots it reached.
          const r = await trace.traceJson(req.params.id, direction);
          if (!r.ok) return sendProblem(reply, r.error);
          // A deep trace is a megabyte of JSON: encoded once here, its length is the buffer's,
          // instead of Fastify measuring the string and the socket encoding it again.
          return reply.type('application/json; charset=utf-8').send(Buffer.from(r.value));
        },
      );
    }

    app.get(
      '/api/trace/recall/:id',
      {
        config: readers,
        schema: {
          tags,
          summary:
            'From one suspect lot: every finished unit or lot it reached and every production order involved',
          params: lotParam,
        },
      },
      async (req, reply) => {
        const r = await trace.recall(req.params.id);
        return r.ok ? r.value : sendProblem(reply, r.error);
      },
    );
  };
}

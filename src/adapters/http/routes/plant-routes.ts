import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { PlantKind } from '../../../app/plant/plant-ports.ts';
import type { PlantService } from '../../../app/plant/plant-service.ts';
import { parsePlantFile } from '../../plant-file/yaml-plant-file.ts';
import { principalOf } from '../auth-guard.ts';
import { sendProblem } from '../problem.ts';

/** REST collection → kind. The collection names are the plant-model file's section names. */
const COLLECTIONS: readonly (readonly [string, PlantKind])[] = [
  ['units', 'unit'],
  ['qualifications', 'qualification'],
  ['equipment', 'equipment'],
  ['materials', 'material'],
  ['products', 'product'],
  ['personnel', 'person'],
  ['signals', 'signal'],
];

const readers = { allow: 'authenticated' } as const;
const writers = { allow: ['engineer', 'admin'] as const };

const idParam = z.strictObject({ id: z.string().min(1).max(200) });
const flag = z.enum(['true', 'false']).transform((v) => v === 'true');
/**
 * Any JSON object: the domain's strict schema checks its shape, so a bad field is a
 * LOOM_PLANT_INVALID issue in the file author's words, exactly as it would be in an import.
 */
const entityBody = z.record(z.string(), z.unknown());

const YAML_TYPES = /^(application\/(x-)?yaml|text\/yaml)\b/i;

export function plantRoutes(plant: PlantService) {
  return async function (base: FastifyInstance) {
    const app = base.withTypeProvider<ZodTypeProvider>();

    app.post(
      '/api/plant/import',
      {
        config: writers,
        schema: {
          tags: ['plant'],
          summary:
            'Load a whole plant model (YAML or JSON) atomically; ids already stored are redefined. dryRun=true only validates.',
          querystring: z.strictObject({ dryRun: flag.optional() }),
          body: z.union([z.string(), z.record(z.string(), z.unknown())]),
        },
      },
      async (req, reply) => {
        const type = req.headers['content-type'] ?? '';
        let doc: unknown = req.body;
        if (typeof req.body === 'string') {
          if (!YAML_TYPES.test(type)) {
            return sendProblem(reply, {
              code: 'LOOM_HTTP_UNSUPPORTED_MEDIA_TYPE',
              message: `A plant model is sent as application/yaml or application/json, not '${type}'.`,
            });
          }
          const parsed = parsePlantFile(req.body);
          if (!parsed.ok) return sendProblem(reply, parsed.error);
          doc = parsed.value;
        }
        const r = await plant.importPlantModel(principalOf(req), doc, {
          dryRun: req.query.dryRun ?? false,
          requestId: req.id,
        });
        return r.ok ? r.value : sendProblem(reply, r.error);
      },
    );

    app.get(
      '/api/plant/equipment/:id/tree',
      { config: readers, schema: { tags: ['plant'], params: idParam } },
      async (req, reply) => {
        const r = await plant.equipmentTree(req.params.id);
        return r.ok ? r.value[0] : sendProblem(reply, r.error);
      },
    );

    for (const [collection, kind] of COLLECTIONS) {
      const url = `/api/plant/${collection}`;
      const tags = ['plant'];

      app.get(
        url,
        {
          config: readers,
          schema: {
            tags,
            querystring: z.strictObject(kind === 'equipment' ? { tree: flag.optional() } : {}),
          },
        },
        async (req, reply) => {
          if (kind === 'equipment' && (req.query as { tree?: boolean }).tree === true) {
            const r = await plant.equipmentTree();
            return r.ok ? r.value : sendProblem(reply, r.error);
          }
          return plant.list(kind);
        },
      );

      app.get(`${url}/:id`, { config: readers, schema: { tags, params: idParam } }, async (req, reply) => {
        const r = await plant.get(kind, req.params.id);
        return r.ok ? r.value : sendProblem(reply, r.error);
      });

      app.post(url, { config: writers, schema: { tags, body: entityBody } }, async (req, reply) => {
        const r = await plant.create(principalOf(req), kind, req.body, req.id);
        return r.ok ? reply.code(201).send(r.value) : sendProblem(reply, r.error);
      });

      app.put(
        `${url}/:id`,
        { config: writers, schema: { tags, params: idParam, body: entityBody } },
        async (req, reply) => {
          const r = await plant.replace(principalOf(req), kind, req.params.id, req.body, req.id);
          return r.ok ? r.value : sendProblem(reply, r.error);
        },
      );

      app.delete(
        `${url}/:id`,
        {
          config: writers,
          schema: {
            tags,
            params: idParam,
            querystring: z.strictObject({ reason: z.string().max(1000).optional() }),
          },
        },
        async (req, reply) => {
          const r = await plant.remove(
            principalOf(req),
            kind,
            req.params.id,
            req.query.reason ?? null,
            req.id,
          );
          return r.ok ? reply.code(204).send() : sendProblem(reply, r.error);
        },
      );
    }
  };
}

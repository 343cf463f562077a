import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { SignalSourceSchema } from '../../../domain/signal/signal.ts';
import type { OpcUaBrowseResult } from '../../opcua/opcua-connector.ts';
import { sendProblem } from '../problem.ts';

/** Mapping tags is engineering work: browsing shows a server's whole address space. */
const engineers = { allow: ['engineer', 'admin'] as const };

/** What the browse route needs of the OPC UA connector (`OpcUaConnector` fits). */
export interface OpcUaBrowser {
  browse(endpoint: string, nodeId: string, limit: number): Promise<OpcUaBrowseResult>;
}

export interface OpcUaRouteDeps {
  /** The running connector; null before the shop floor starts and after it stops. */
  readonly browser: () => OpcUaBrowser | null;
}

/**
 * Endpoint and NodeId are checked by the same rules as a signal's `source.opcua` (the field's
 * messages of `SignalSourceSchema`), so what browsing shows can be pasted into a signal.
 */
function likeSignalSource(field: 'endpoint' | 'nodeId') {
  return (value: string, ctx: z.RefinementCtx): void => {
    const probe =
      field === 'endpoint' ? { endpoint: value, nodeId: 'i=85' } : { endpoint: 'opc.tcp://h', nodeId: value };
    const parsed = SignalSourceSchema.safeParse({ opcua: probe });
    if (parsed.success) return;
    const issues = parsed.error.issues.flatMap((i) => (i.code === 'invalid_union' ? i.errors.flat() : [i]));
    const own = issues.find((i) => i.path[0] === 'opcua' && i.path[1] === field);
    if (own) ctx.addIssue({ code: 'custom', message: own.message });
  };
}

const BrowseQuery = z.strictObject({
  endpoint: z.string().min(1).max(2048).superRefine(likeSignalSource('endpoint')),
  nodeId: z.string().min(1).max(4096).superRefine(likeSignalSource('nodeId')).default('i=85'),
  limit: z.coerce.number().int().min(1).max(10_000).default(1000),
});

/** `GET /api/opcua/browse`: the children of a node on a server Loom connects to, to map signals. */
export function opcuaRoutes(deps: OpcUaRouteDeps) {
  return async function (base: FastifyInstance) {
    const app = base.withTypeProvider<ZodTypeProvider>();

    app.get(
      '/api/opcua/browse',
      {
        config: engineers,
        schema: {
          tags: ['telemetry'],
          summary:
            'The children of an OPC UA node (default: the Objects folder) on an endpoint Loom connects to (named by a signal or the endpoints file): NodeId, browse name, display name, node class, and for variables data type and writability',
          querystring: BrowseQuery,
        },
      },
      async (req, reply) => {
        const browser = deps.browser();
        if (browser === null) {
          return sendProblem(reply, {
            code: 'LOOM_OPCUA_DISCONNECTED',
            message: 'The OPC UA connector is not running on this instance.',
          });
        }
        const { endpoint, nodeId, limit } = req.query;
        const r = await browser.browse(endpoint, nodeId, limit);
        if (!r.ok) {
          return sendProblem(reply, {
            code: r.code,
            message: r.message,
            details: { endpoint, nodeId, ...(r.status !== undefined ? { status: r.status } : {}) },
          });
        }
        return { endpoint, nodeId: r.nodeId, children: r.children, truncated: r.truncated };
      },
    );
  };
}

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/**
 * An ERP for tests and the demo: receives Loom's production performance messages (JSON or B2MML
 * XML) at `POST /performance`, dedupes them by `Idempotency-Key` as a real ERP must (RELIABILITY.md
 * rule 4: a duplicate is counted, answered 200, and not applied again), and can be told to
 * misbehave through its control API or the methods of the returned object:
 *
 * | control call | effect |
 * |---|---|
 * | `POST /control/outage {forMs, status?}` | answer `status` (503) to every message for `forMs` |
 * | `POST /control/hang {forMs}` | accept connections but never answer, for `forMs` |
 * | `POST /control/slow {delayMs}` | answer every message after `delayMs` |
 * | `POST /control/orders/:id {status}` | answer `status` to every message of that order (`null` clears) |
 * | `POST /control/reset` | forget the faults (not the messages) |
 * | `GET /control/received[?order=]` | the applied messages, in arrival order, and the counters |
 * | `POST /control/send-orders {loomUrl, token, orders}` | send orders to Loom |
 */
export interface ReceivedMessage {
  readonly key: string;
  readonly orderId: string | null;
  readonly type: string | null;
  readonly contentType: string;
  readonly arrivedAt: string;
  readonly body: string;
}

export interface StandInStats {
  /** Every request to /performance, whatever the answer. */
  readonly requests: number;
  /** Messages applied (first arrival of a key). */
  readonly applied: number;
  /** Repeats of a key already applied. */
  readonly duplicates: number;
  /** Requests answered with a failure (outage, order fault, bad request). */
  readonly refused: number;
  /** Keys that arrived more than once, with their count. */
  readonly repeatedKeys: Readonly<Record<string, number>>;
}

export interface OrderToSend {
  readonly externalId: string;
  readonly product: string;
  readonly quantity: string | number;
  readonly dueAt?: string;
  readonly priority?: number;
}

export interface ErpStandIn {
  readonly url: string;
  /** Where Loom should deliver: `LOOM_ERP_OUTBOUND_URL`. */
  readonly performanceUrl: string;
  outage(forMs: number, status?: number): void;
  hang(forMs: number): void;
  slow(delayMs: number): void;
  failOrder(orderId: string, status: number | null): void;
  reset(): void;
  received(orderId?: string): ReceivedMessage[];
  /** Applied keys per order, in arrival order. */
  byOrder(): Map<string, string[]>;
  stats(): StandInStats;
  /** The bodies every request for a key carried (all attempts), to check a redelivery is the same message. */
  bodiesOf(key: string): readonly string[];
  sendOrders(
    loomUrl: string,
    token: string,
    orders: readonly OrderToSend[],
  ): Promise<{ sent: number; via: string }>;
  stop(): Promise<void>;
}

const MAX_BODY = 1024 * 1024;

export async function startErpStandIn(
  opts: { port?: number; host?: string; token?: string } = {},
): Promise<ErpStandIn> {
  const applied: ReceivedMessage[] = [];
  const byKey = new Map<string, ReceivedMessage>();
  const bodies = new Map<string, string[]>();
  const counts = new Map<string, number>();
  let requests = 0;
  let duplicates = 0;
  let refused = 0;
  let outageUntil = 0;
  let outageStatus = 503;
  let hangUntil = 0;
  let delayMs = 0;
  const orderFaults = new Map<string, number>();
  const sockets = new Set<Socket>();
  const hanging = new Set<ServerResponse>();

  const json = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };

  async function readBody(req: IncomingMessage): Promise<string | null> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of req as AsyncIterable<Buffer>) {
      size += c.length;
      if (size > MAX_BODY) return null;
      chunks.push(c);
    }
    return Buffer.concat(chunks).toString('utf8');
  }

  function orderOf(contentType: string, body: string): { orderId: string | null; type: string | null } {
    if (contentType.includes('json')) {
      try {
        const m = JSON.parse(body) as { aggregateId?: unknown; type?: unknown };
        return {
          orderId: typeof m.aggregateId === 'string' ? m.aggregateId : null,
          type: typeof m.type === 'string' ? m.type : null,
        };
      } catch {
        return { orderId: null, type: null };
      }
    }
    // B2MML ProcessProductionPerformance: ProductionResponse/ID is Loom's order id,
    // ProductionPerformance/Description the event type (src/adapters/erp/b2mml-performance.ts).
    const id = /<(?:\w+:)?ProductionResponse>\s*<(?:\w+:)?ID>\s*([^<\s]+)\s*</.exec(body);
    const described =
      /<(?:\w+:)?ProductionPerformance>\s*<(?:\w+:)?ID>[^<]*<\/(?:\w+:)?ID>\s*<(?:\w+:)?Description>([^<]+)</.exec(
        body,
      );
    const verb = described ? null : /<(?:\w+:)?((?:Process|Sync)\w+)[\s>]/.exec(body);
    return { orderId: id?.[1] ?? null, type: described?.[1] ?? verb?.[1] ?? null };
  }

  async function performance(req: IncomingMessage, res: ServerResponse) {
    requests += 1;
    const body = await readBody(req);
    if (body === null) {
      refused += 1;
      return json(res, 413, { error: 'body too large' });
    }
    const key = req.headers['idempotency-key'];
    if (typeof key !== 'string' || key.length === 0) {
      refused += 1;
      return json(res, 400, { error: 'Idempotency-Key header missing' });
    }
    if (opts.token && req.headers.authorization !== `Bearer ${opts.token}`) {
      refused += 1;
      return json(res, 401, { error: 'bad token' });
    }
    (bodies.get(key) ?? bodies.set(key, []).get(key)!).push(body);
    if (Date.now() < hangUntil) {
      hanging.add(res);
      res.on('close', () => hanging.delete(res));
      return;
    }
    if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
    if (Date.now() < outageUntil) {
      refused += 1;
      return json(res, outageStatus, { error: 'ERP unavailable (stand-in outage)' });
    }
    const contentType = req.headers['content-type'] ?? '';
    const { orderId, type } = orderOf(contentType, body);
    const fault = orderId !== null ? orderFaults.get(orderId) : undefined;
    if (fault !== undefined) {
      refused += 1;
      return json(res, fault, { error: `stand-in refuses messages of order ${orderId}` });
    }
    counts.set(key, (counts.get(key) ?? 0) + 1);
    if (byKey.has(key)) {
      duplicates += 1;
      return json(res, 200, { status: 'duplicate', key });
    }
    const message = { key, orderId, type, contentType, arrivedAt: new Date().toISOString(), body };
    byKey.set(key, message);
    applied.push(message);
    return json(res, 200, { status: 'applied', key });
  }

  const api: Omit<ErpStandIn, 'url' | 'performanceUrl' | 'stop'> = {
    outage(forMs, status = 503) {
      outageUntil = Date.now() + forMs;
      outageStatus = status;
    },
    hang(forMs) {
      hangUntil = Date.now() + forMs;
    },
    slow(ms) {
      delayMs = ms;
    },
    failOrder(orderId, status) {
      if (status === null) orderFaults.delete(orderId);
      else orderFaults.set(orderId, status);
    },
    reset() {
      outageUntil = 0;
      hangUntil = 0;
      delayMs = 0;
      orderFaults.clear();
    },
    received: (orderId) =>
      orderId === undefined ? [...applied] : applied.filter((m) => m.orderId === orderId),
    byOrder() {
      const out = new Map<string, string[]>();
      for (const m of applied) {
        const k = m.orderId ?? '';
        (out.get(k) ?? out.set(k, []).get(k)!).push(m.key);
      }
      return out;
    },
    stats: () => ({
      requests,
      applied: applied.length,
      duplicates,
      refused,
      repeatedKeys: Object.fromEntries([...counts].filter(([, n]) => n > 1)),
    }),
    bodiesOf: (key) => bodies.get(key) ?? [],
    async sendOrders(loomUrl, token, orders) {
      const headers = { 'content-type': 'application/json', authorization: `Bearer ${token}` };
      const batch = await fetch(`${loomUrl}/api/erp/orders`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ orders }),
      });
      await batch.text();
      if (batch.ok) return { sent: orders.length, via: '/api/erp/orders' };
      if (batch.status !== 404) throw new Error(`Loom refused the orders: ${batch.status}`);
      // The ERP order endpoint is not there yet: the generic order API, idempotent on externalId.
      for (const o of orders) {
        const r = await fetch(`${loomUrl}/api/orders`, {
          method: 'POST',
          headers: { ...headers, 'idempotency-key': `standin-${o.externalId}` },
          body: JSON.stringify(o),
        });
        const text = await r.text();
        if (!r.ok) throw new Error(`Loom refused order ${o.externalId}: ${r.status} ${text}`);
      }
      return { sent: orders.length, via: '/api/orders' };
    },
  };

  async function control(req: IncomingMessage, res: ServerResponse, url: URL) {
    const text = req.method === 'POST' ? await readBody(req) : '';
    let body: Record<string, unknown> = {};
    try {
      body = text ? (JSON.parse(text) as Record<string, unknown>) : {};
    } catch {
      return json(res, 400, { error: 'body must be JSON' });
    }
    const num = (k: string) => (typeof body[k] === 'number' ? body[k] : 0);
    const route = `${req.method} ${url.pathname}`;
    const orderRoute = /^POST \/control\/orders\/([^/]+)$/.exec(route);
    if (route === 'POST /control/outage') api.outage(num('forMs'), num('status') || 503);
    else if (route === 'POST /control/hang') api.hang(num('forMs'));
    else if (route === 'POST /control/slow') api.slow(num('delayMs'));
    else if (route === 'POST /control/reset') api.reset();
    else if (orderRoute)
      api.failOrder(decodeURIComponent(orderRoute[1]!), typeof body.status === 'number' ? body.status : null);
    else if (route === 'GET /control/received') {
      const order = url.searchParams.get('order');
      return json(res, 200, {
        stats: api.stats(),
        byOrder: Object.fromEntries(api.byOrder()),
        messages: api.received(order ?? undefined).map(({ body: _b, ...m }) => m),
      });
    } else if (route === 'POST /control/send-orders') {
      try {
        const r = await api.sendOrders(
          String(body.loomUrl),
          String(body.token),
          body.orders as OrderToSend[],
        );
        return json(res, 200, r);
      } catch (e) {
        return json(res, 502, { error: (e as Error).message });
      }
    } else return json(res, 404, { error: `no route ${route}` });
    return json(res, 200, { ok: true });
  }

  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://stand-in');
    const handle =
      req.method === 'POST' && url.pathname === '/performance'
        ? performance(req, res)
        : url.pathname.startsWith('/control/')
          ? control(req, res, url)
          : Promise.resolve(json(res, 404, { error: 'not found' }));
    handle.catch(() => {
      if (!res.headersSent) json(res, 500, { error: 'stand-in failed' });
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const url = `http://${opts.host ?? '127.0.0.1'}:${port}`;
  return {
    ...api,
    url,
    performanceUrl: `${url}/performance`,
    async stop() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

import http from 'node:http';

export interface HttpResponse {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

/** A keep-alive HTTP client for one server: `sockets` connections at most, reused. */
export class BenchClient {
  readonly #agent: http.Agent;
  readonly #base: URL;

  constructor(baseUrl: string, sockets: number) {
    this.#base = new URL(baseUrl);
    this.#agent = new http.Agent({ keepAlive: true, maxSockets: sockets, maxFreeSockets: sockets });
  }

  request(
    method: string,
    path: string,
    opts: { body?: string; contentType?: string; cookie?: string } = {},
  ): Promise<HttpResponse> {
    return new Promise((resolve, reject) => {
      const headers: http.OutgoingHttpHeaders = {};
      if (opts.body !== undefined) {
        headers['content-type'] = opts.contentType ?? 'application/json';
        headers['content-length'] = Buffer.byteLength(opts.body);
      }
      if (opts.cookie) headers.cookie = opts.cookie;
      const req = http.request(
        {
          agent: this.#agent,
          host: this.#base.hostname,
          port: this.#base.port,
          method,
          path,
          headers,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              body: Buffer.concat(chunks).toString('utf8'),
            }),
          );
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(opts.body);
    });
  }

  async json<T>(
    method: string,
    path: string,
    expect: number,
    opts: { body?: unknown; cookie?: string; raw?: string; contentType?: string } = {},
  ): Promise<T> {
    const res = await this.request(method, path, {
      ...(opts.raw !== undefined
        ? { body: opts.raw, contentType: opts.contentType }
        : opts.body !== undefined
          ? { body: JSON.stringify(opts.body) }
          : {}),
      ...(opts.cookie ? { cookie: opts.cookie } : {}),
    });
    if (res.status !== expect) {
      throw new Error(`${method} ${path}: expected ${expect}, got ${res.status}: ${res.body.slice(0, 500)}`);
    }
    return JSON.parse(res.body) as T;
  }

  close(): void {
    this.#agent.destroy();
  }
}

export interface LoadResult {
  readonly requests: number;
  readonly seconds: number;
  readonly perSecond: number;
  /** Latencies in milliseconds, sorted ascending. */
  readonly latencies: readonly number[];
  readonly failures: number;
  readonly firstFailure: string | null;
}

/**
 * A closed loop: `concurrency` clients, each sending its next request as soon as the previous
 * answer arrived, until `items` are used up. Latency is measured per request, from send to the
 * last byte of the answer.
 */
export async function closedLoop<T>(
  items: readonly T[],
  concurrency: number,
  send: (item: T) => Promise<HttpResponse>,
  expectStatus: number,
): Promise<LoadResult> {
  let next = 0;
  let failures = 0;
  let firstFailure: string | null = null;
  const latencies: number[] = [];
  const started = performance.now();
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= items.length) return;
      const t0 = performance.now();
      const res = await send(items[i]!);
      latencies.push(performance.now() - t0);
      if (res.status !== expectStatus) {
        failures++;
        firstFailure ??= `${res.status}: ${res.body.slice(0, 300)}`;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    requests: items.length,
    seconds,
    perSecond: items.length / seconds,
    latencies,
    failures,
    firstFailure,
  };
}

/** Nearest-rank percentile of ascending values. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

export function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Runs `items` through `fn` with at most `concurrency` in flight (preparation work, not measured). */
export async function inParallel<T, R>(
  items: readonly T[],
  concurrency: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (;;) {
        const i = next++;
        if (i >= items.length) return;
        out[i] = await fn(items[i]!, i);
      }
    }),
  );
  return out;
}

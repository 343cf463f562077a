import { connect, createServer, type Socket } from 'node:net';

export interface TcpProxyOptions {
  readonly targetHost?: string;
  readonly targetPort: number;
  /** Address the proxy listens on. Default 127.0.0.1. */
  readonly host?: string;
  /** Default 0: a free port. */
  readonly port?: number;
}

/** A TCP proxy between a client under test and its server, for network faults. */
export interface TcpProxy {
  readonly port: number;
  /** Client connections open now. */
  readonly connections: number;
  /**
   * A network stall: nothing is forwarded in either direction, the sockets stay open and new
   * connections are accepted but stall too. Unread bytes wait in the socket buffers, so TCP flow
   * control eventually blocks the senders, as on a dead link.
   */
  pause(): void;
  /** Forwards again, what waited first. */
  resume(): void;
  /** Destroys every open connection on both sides (a reset); new connections are accepted. */
  dropAll(): void;
  close(): Promise<void>;
}

interface Pair {
  readonly client: Socket;
  readonly upstream: Socket;
}

export async function startTcpProxy(opts: TcpProxyOptions): Promise<TcpProxy> {
  const pairs = new Set<Pair>();
  let paused = false;

  /** Forwards `from` → `to`, honouring back-pressure without undoing a pause. */
  const forward = (from: Socket, to: Socket): void => {
    from.on('data', (chunk: Buffer) => {
      if (!to.write(chunk)) from.pause();
    });
    to.on('drain', () => {
      if (!paused) from.resume();
    });
    from.on('end', () => to.end());
  };

  const server = createServer((client) => {
    const upstream = connect(opts.targetPort, opts.targetHost ?? '127.0.0.1');
    const pair = { client, upstream };
    pairs.add(pair);
    if (paused) {
      client.pause();
      upstream.pause();
    }
    forward(client, upstream);
    forward(upstream, client);
    const close = (): void => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;

  const dropAll = (): void => {
    for (const { client, upstream } of pairs) {
      client.destroy();
      upstream.destroy();
    }
    pairs.clear();
  };

  return {
    port,
    get connections() {
      return pairs.size;
    },
    pause: () => {
      paused = true;
      for (const { client, upstream } of pairs) {
        client.pause();
        upstream.pause();
      }
    },
    resume: () => {
      paused = false;
      for (const { client, upstream } of pairs) {
        client.resume();
        upstream.resume();
      }
    },
    dropAll,
    close: async () => {
      dropAll();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

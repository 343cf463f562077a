import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startTcpProxy, type TcpProxy } from './tcp-proxy.ts';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A client socket that collects what it receives. */
async function client(port: number): Promise<{ socket: Socket; received: () => string }> {
  const socket = connect(port, '127.0.0.1');
  let got = '';
  socket.on('data', (c: Buffer) => (got += c.toString()));
  await once(socket, 'connect');
  return { socket, received: () => got };
}

async function waitFor(what: string, cond: () => boolean, timeoutMs = 2000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > until) assert.fail(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

describe('startTcpProxy', () => {
  let echo: Server;
  let proxy: TcpProxy;

  before(async () => {
    echo = createServer((s) => s.pipe(s));
    echo.listen(0, '127.0.0.1');
    await once(echo, 'listening');
    const addr = echo.address();
    proxy = await startTcpProxy({ targetPort: typeof addr === 'object' && addr ? addr.port : 0 });
  });

  after(async () => {
    await proxy.close();
    await new Promise<void>((r) => echo.close(() => r()));
  });

  it('forwards both ways', async () => {
    const c = await client(proxy.port);
    c.socket.write('hello');
    await waitFor('the echo', () => c.received() === 'hello');
    assert.equal(proxy.connections, 1);
    c.socket.destroy();
    await waitFor('the connection to go', () => proxy.connections === 0);
  });

  it('stalls while paused, keeps the connection, and delivers what waited on resume', async () => {
    const c = await client(proxy.port);
    c.socket.write('a');
    await waitFor('the first echo', () => c.received() === 'a');
    proxy.pause();
    c.socket.write('b');
    await sleep(150);
    assert.equal(c.received(), 'a', 'nothing passes while paused');
    assert.equal(c.socket.destroyed, false);
    assert.equal(proxy.connections, 1);
    proxy.resume();
    await waitFor('the held echo', () => c.received() === 'ab');
    c.socket.destroy();
  });

  it('stalls a connection opened during the pause too', async () => {
    proxy.pause();
    const c = await client(proxy.port);
    c.socket.write('x');
    await sleep(100);
    assert.equal(c.received(), '');
    proxy.resume();
    await waitFor('the echo after resume', () => c.received() === 'x');
    c.socket.destroy();
  });

  it('drops every connection at once and still accepts new ones', async () => {
    const a = await client(proxy.port);
    const b = await client(proxy.port);
    await waitFor('two connections', () => proxy.connections === 2);
    proxy.dropAll();
    await Promise.all([once(a.socket, 'close'), once(b.socket, 'close')]);
    assert.equal(proxy.connections, 0);
    const c = await client(proxy.port);
    c.socket.write('again');
    await waitFor('the echo', () => c.received() === 'again');
    c.socket.destroy();
  });
});

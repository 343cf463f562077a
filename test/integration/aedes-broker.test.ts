/**
 * The embedded broker against real MQTT.js clients over TCP. No database: the suite is skipped in
 * the runner's second pass (LOOM_TEST_PG=server), which would only repeat it.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, createServer } from 'node:net';
import { after, describe, it } from 'node:test';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import pino from 'pino';
import {
  MqttBrokerStartError,
  startAedesBroker,
  type EmbeddedMqttBroker,
} from '../../src/adapters/mqtt/aedes-broker.ts';

const SKIP =
  process.env.LOOM_TEST_PG === 'server'
    ? 'needs no PostgreSQL; already run in the embedded pass (LOOM_TEST_PG=server)'
    : false;

interface LogLine {
  level: number;
  msg: string;
  [k: string]: unknown;
}

function memoryLogger(): { logger: pino.Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const logger = pino(
    { level: 'debug' },
    { write: (s: string) => void lines.push(JSON.parse(s) as LogLine) },
  );
  return { logger, lines };
}

const clients: MqttClient[] = [];
async function client(url: string, opts: IClientOptions = {}): Promise<MqttClient> {
  const c = await mqtt.connectAsync(url, { reconnectPeriod: 0, protocolVersion: 4, ...opts });
  clients.push(c);
  return c;
}

function nextMessage(
  c: MqttClient,
  timeoutMs = 3000,
): Promise<{ topic: string; payload: Buffer; retain: boolean; qos: number }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      c.off('message', onMessage);
      reject(new Error('no message within timeout'));
    }, timeoutMs);
    const onMessage = (topic: string, payload: Buffer, packet: mqtt.IPublishPacket) => {
      clearTimeout(timer);
      c.off('message', onMessage);
      resolve({ topic, payload, retain: packet.retain, qos: packet.qos });
    };
    c.on('message', onMessage);
  });
}

function closeOf(c: MqttClient): Promise<void> {
  return new Promise((resolve) => c.once('close', () => resolve()));
}

function connectOf(c: MqttClient): Promise<void> {
  return new Promise((resolve) => c.once('connect', () => resolve()));
}

/** Resolves to the message if one arrives within `ms`, else null. */
async function maybeMessage(c: MqttClient, ms: number): Promise<string | null> {
  try {
    return (await nextMessage(c, ms)).payload.toString();
  } catch {
    return null;
  }
}

function handleCounts(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of process.getActiveResourcesInfo()) counts[r] = (counts[r] ?? 0) + 1;
  return counts;
}

function remainingLength(n: number): Buffer {
  const out: number[] = [];
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    out.push(byte);
  } while (n > 0);
  return Buffer.from(out);
}

function utf8(s: string): Buffer {
  const b = Buffer.from(s);
  return Buffer.concat([Buffer.from([b.length >> 8, b.length & 0xff]), b]);
}

/** An MQTT 3.1.1 CONNECT (clean session, keep-alive 60 s), built by hand as a peer would send it. */
function connectPacket(clientId: string): Buffer {
  const body = Buffer.concat([utf8('MQTT'), Buffer.from([4, 0x02, 0, 60]), utf8(clientId)]);
  return Buffer.concat([Buffer.from([0x10]), remainingLength(body.length), body]);
}

function publishPacket(topic: string, payload: Buffer): Buffer {
  const body = Buffer.concat([utf8(topic), payload]);
  return Buffer.concat([Buffer.from([0x30]), remainingLength(body.length), body]);
}

describe('embedded MQTT broker (aedes)', { skip: SKIP }, () => {
  const brokers: EmbeddedMqttBroker[] = [];
  async function broker(extra: Partial<Parameters<typeof startAedesBroker>[0]> = {}) {
    const b = await startAedesBroker({
      host: '127.0.0.1',
      port: 0,
      maxMessageBytes: 64 * 1024,
      logger: pino({ level: 'silent' }),
      ...extra,
    });
    brokers.push(b);
    return b;
  }

  after(async () => {
    for (const c of clients) c.end(true);
    for (const b of brokers) await b.stop();
  });

  it('stop() closes every client connection and the listener, leaving no handles behind', async () => {
    const before = handleCounts();
    const b = await startAedesBroker({
      host: '127.0.0.1',
      port: 0,
      maxMessageBytes: 1024,
      logger: pino({ level: 'silent' }),
    });
    const a = await mqtt.connectAsync(b.url, { reconnectPeriod: 0 });
    const c = await mqtt.connectAsync(b.url, { reconnectPeriod: 0 });
    const closed = Promise.all([closeOf(a), closeOf(c)]);
    await b.stop();
    await closed;
    a.end(true);
    c.end(true);
    assert.equal(b.stats().socketsOpen, 0);
    await assert.rejects(
      mqtt.connectAsync(b.url, { reconnectPeriod: 0, connectTimeout: 1000 }),
      /ECONNREFUSED/,
    );
    await new Promise((r) => setTimeout(r, 50));
    const now = handleCounts();
    for (const kind of ['TCPServerWrap', 'TCPSocketWrap', 'Timeout']) {
      assert.ok(
        (now[kind] ?? 0) <= (before[kind] ?? 0),
        `${kind}: ${before[kind] ?? 0} before, ${now[kind] ?? 0} after`,
      );
    }
    await b.stop();
  });

  it('binds port 0 to a free port and routes a publish to a subscriber', async () => {
    const b = await broker();
    assert.ok(b.port > 0);
    assert.equal(b.url, `mqtt://127.0.0.1:${b.port}`);
    const sub = await client(b.url);
    await sub.subscribeAsync('plant/+/temp', { qos: 1 });
    const pub = await client(b.url);
    const got = nextMessage(sub);
    await pub.publishAsync('plant/oven-1/temp', '181.5', { qos: 1 });
    const m = await got;
    assert.equal(m.topic, 'plant/oven-1/temp');
    assert.equal(m.payload.toString(), '181.5');
    assert.equal(b.stats().clientsConnected, 2);
  });

  it('delivers a retained QoS 1 STATE message to a subscriber that comes later, flagged retained', async () => {
    const b = await broker();
    const host = await client(b.url);
    const state = JSON.stringify({ online: true, timestamp: Date.now() });
    await host.publishAsync('spBv1.0/STATE/loom', state, { qos: 1, retain: true });
    const late = await client(b.url);
    const got = nextMessage(late);
    await late.subscribeAsync('spBv1.0/STATE/loom', { qos: 1 });
    const m = await got;
    assert.equal(m.payload.toString(), state);
    assert.equal(m.retain, true);
    assert.equal(m.qos, 1);
  });

  it('publishes a client Will (retained, QoS 1) when its socket is destroyed, and not after a DISCONNECT', async () => {
    const b = await broker();
    const watcher = await client(b.url);
    await watcher.subscribeAsync('spBv1.0/STATE/#', { qos: 1 });
    const will = JSON.stringify({ online: false, timestamp: 1 });
    const dying = await client(b.url, {
      clientId: 'host-a',
      will: { topic: 'spBv1.0/STATE/host-a', payload: Buffer.from(will), qos: 1, retain: true },
    });
    const got = nextMessage(watcher);
    dying.stream.destroy();
    const m = await got;
    assert.equal(m.topic, 'spBv1.0/STATE/host-a');
    assert.equal(m.payload.toString(), will);
    assert.equal(m.qos, 1);

    const late = await client(b.url);
    const retained = nextMessage(late);
    await late.subscribeAsync('spBv1.0/STATE/host-a', { qos: 1 });
    assert.equal((await retained).payload.toString(), will, 'the Will was stored as retained');

    const polite = await client(b.url, {
      clientId: 'host-b',
      will: { topic: 'spBv1.0/STATE/host-b', payload: Buffer.from('gone'), qos: 1, retain: false },
    });
    await polite.endAsync();
    assert.equal(await maybeMessage(watcher, 300), null, 'a clean DISCONNECT discards the Will');
  });

  it('refuses a packet above maxMessageBytes: closes that connection, counts it, logs it once per client', async () => {
    const { logger, lines } = memoryLogger();
    const b = await broker({ maxMessageBytes: 1024, logger });
    const sub = await client(b.url);
    await sub.subscribeAsync('big/#', { qos: 0 });

    const small = nextMessage(sub);
    const pub = await client(b.url, { clientId: 'bulky' });
    await pub.publishAsync('big/ok', Buffer.alloc(900, 1), { qos: 0 });
    assert.equal((await small).payload.length, 900, 'a packet under the limit passes');

    for (let attempt = 0; attempt < 2; attempt++) {
      const c = attempt === 0 ? pub : await client(b.url, { clientId: 'bulky' });
      const closed = closeOf(c);
      c.publish('big/too-large', Buffer.alloc(4096, 2), { qos: 0 });
      await closed;
    }
    assert.equal(await maybeMessage(sub, 300), null, 'the oversize message reached no one');
    assert.equal(b.stats().oversizeRefused, 2);
    const warnings = lines.filter((l) => /exceeds LOOM_MQTT_MAX_MESSAGE_BYTES=1024/.test(l.msg));
    assert.equal(warnings.length, 1, 'logged once for the client');
    assert.equal(warnings[0]!.clientId, 'bulky');
    assert.equal(warnings[0]!.packetType, 'publish');

    // The connection still works for well-behaved clients afterwards.
    const after = await client(b.url);
    const ok = nextMessage(sub);
    await after.publishAsync('big/ok', 'fine', { qos: 1 });
    assert.equal((await ok).payload.toString(), 'fine');
  });

  it('passes a burst of packets of mixed sizes (1 to 3 length bytes) intact', async () => {
    const b = await broker({ maxMessageBytes: 64 * 1024 });
    const sub = await client(b.url);
    await sub.subscribeAsync('burst', { qos: 0 });
    const sizes = Array.from({ length: 600 }, (_, i) => (i * 7919) % 40_000);
    const received: Buffer[] = [];
    const all = new Promise<void>((resolve) =>
      sub.on('message', (_t, p) => {
        received.push(p);
        if (received.length === sizes.length) resolve();
      }),
    );
    const pub = await client(b.url);
    for (const [i, n] of sizes.entries()) pub.publish('burst', Buffer.alloc(n, i % 251), { qos: 0 });
    await all;
    assert.deepEqual(
      received.map((p) => p.length),
      sizes,
    );
    assert.ok(received.every((p, i) => p.length === 0 || p[0] === i % 251));
    assert.equal(b.stats().oversizeRefused, 0);
  });

  it('reads fixed headers split across TCP segments, one byte at a time', async () => {
    const b = await broker({ maxMessageBytes: 1024 });
    const sub = await client(b.url);
    await sub.subscribeAsync('split', { qos: 0 });
    const got = nextMessage(sub);
    const socket = connect(b.port, '127.0.0.1');
    socket.setNoDelay(true);
    socket.resume();
    await once(socket, 'connect');
    const bytes = Buffer.concat([connectPacket('byte-wise'), publishPacket('split', Buffer.alloc(300, 7))]);
    for (let i = 0; i < bytes.length; i += i < 40 ? 1 : 200) {
      socket.write(bytes.subarray(i, i < 40 ? i + 1 : i + 200));
      await new Promise((r) => setTimeout(r, 2));
    }
    const m = await got;
    assert.equal(m.payload.length, 300);
    const closed = once(socket, 'close');
    socket.write(publishPacket('split', Buffer.alloc(2000)).subarray(0, 3));
    await closed;
    assert.equal(b.stats().oversizeRefused, 1, 'refused from its header alone, before the body arrived');
  });

  it('refuses an oversize CONNECT (a huge Will) before any of it is buffered', async () => {
    const b = await broker({ maxMessageBytes: 1024 });
    const c = mqtt.connect(b.url, {
      reconnectPeriod: 0,
      will: { topic: 'w', payload: Buffer.alloc(8192), qos: 0, retain: false },
    });
    clients.push(c);
    const outcome = await Promise.race([
      connectOf(c).then(() => 'connected'),
      closeOf(c).then(() => 'closed'),
    ]);
    assert.equal(outcome, 'closed');
    assert.equal(b.stats().oversizeRefused, 1);
    assert.equal(b.stats().clientsConnected, 0);
  });

  it('refuses to bind a non-loopback address without an authenticate callback, naming LOOM_MQTT_HOST', async () => {
    await assert.rejects(
      startAedesBroker({
        host: '0.0.0.0',
        port: 0,
        maxMessageBytes: 1024,
        logger: pino({ level: 'silent' }),
      }),
      (e: unknown) =>
        e instanceof MqttBrokerStartError &&
        e.reason === 'authentication-required' &&
        /LOOM_MQTT_HOST/.test(e.message),
    );
  });

  it('on a non-loopback bind, every CONNECT must pass authenticate', async () => {
    const seen: string[] = [];
    const b = await broker({
      host: '0.0.0.0',
      authenticate: async (username, password) => {
        seen.push(username);
        return username === 'edge-1' && password.toString() === 's3cret-pass';
      },
    });
    const url = `mqtt://127.0.0.1:${b.port}`;
    await assert.rejects(
      client(url, { username: 'edge-1', password: 'wrong' }),
      /Bad username or password|bad user name/i,
    );
    await assert.rejects(client(url), /Bad username or password|bad user name/i);
    const ok = await client(url, { username: 'edge-1', password: 's3cret-pass' });
    assert.equal(ok.connected, true);
    assert.deepEqual(seen, ['edge-1', '', 'edge-1']);
    assert.equal(b.stats().authRefused, 2);
  });

  it('fails with an error naming LOOM_MQTT_PORT and the port when the port is taken', async () => {
    const holder = createServer();
    await new Promise<void>((r) => holder.listen(0, '127.0.0.1', r));
    const port = (holder.address() as { port: number }).port;
    try {
      await assert.rejects(
        startAedesBroker({
          host: '127.0.0.1',
          port,
          maxMessageBytes: 1024,
          logger: pino({ level: 'silent' }),
        }),
        (e: unknown) =>
          e instanceof MqttBrokerStartError &&
          e.reason === 'port-in-use' &&
          e.message.includes('LOOM_MQTT_PORT') &&
          e.message.includes(String(port)),
      );
    } finally {
      await new Promise<void>((r) => holder.close(() => r()));
    }
  });

  it('aedes 1.2 speaks MQTT 3.1.1 only: an MQTT 5 CONNECT is refused', async () => {
    const b = await broker();
    await assert.rejects(client(b.url, { protocolVersion: 5 }));
    assert.equal(b.stats().clientsConnected, 0);
  });

  it('aedes 1.2 has no shared subscriptions: a $share/ SUBSCRIBE is refused (SUBACK 0x80), not silently empty', async () => {
    const b = await broker();
    const c = await client(b.url);
    await assert.rejects(
      c.subscribeAsync('$share/loom/spBv1.0/#', { qos: 0 }),
      (e: { packet?: { granted?: number[] } }) => {
        assert.deepEqual(e.packet?.granted, [128]);
        return true;
      },
    );
    assert.equal(b.stats().sharedSubscriptionsRefused, 1);
  });
});

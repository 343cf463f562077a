import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { LiveBridgeStats } from '../../src/adapters/db/postgres-live-bridge.ts';
import type { LiveEvent, LiveHubStats, LiveSampleEvent } from '../../src/app/telemetry/live-hub.ts';
import { tagKey, type TagSample } from '../../src/domain/signal/sample.ts';
import { createTestApp, type TestApp } from '../support/app.ts';
import { importExamplePlant, importSignals } from '../support/plant.ts';
import { createSecondApp, type SecondApp } from '../support/second-app.ts';

const T0 = Date.parse('2026-11-25T09:00:00Z');

const source = (device: string, metric: string) => ({
  sparkplug: { group: 'plant1', edgeNode: 'edge-1', device, metric },
});
const SIGNALS = [
  {
    id: 'paint-oven-1.temperature',
    equipment: 'paint-oven-1',
    dataType: 'number',
    source: source('oven-1', 'T'),
  },
  {
    id: 'paint-oven-1.counter',
    equipment: 'paint-oven-1',
    dataType: 'number',
    source: source('oven-1', 'N'),
  },
  { id: 'paint-oven-1.remote', equipment: 'paint-oven-1', dataType: 'number', source: source('oven-1', 'R') },
  { id: 'press-1.force', equipment: 'press-1', dataType: 'number', source: source('press-1', 'F') },
];

const sample = (device: string, metric: string, t: number, value: number): TagSample => ({
  tag: tagKey.sparkplug('plant1', 'edge-1', device, metric),
  value,
  quality: 'good',
  sourceTs: t,
  serverTs: t + 5,
  historical: false,
});

interface SseFrame {
  readonly event: string;
  readonly data: Record<string, unknown>[];
}

/** An SSE client on Node's fetch that parses frames as they arrive. */
async function openStream(base: string, query: string, cookie: string) {
  const abort = new AbortController();
  const res = await fetch(`${base}/api/live?${query}`, { headers: { cookie }, signal: abort.signal });
  const frames: SseFrame[] = [];
  const lines: string[] = [];
  let ended = false;
  const pump = (async () => {
    const decoder = new TextDecoder();
    let text = '';
    for await (const chunk of res.body!) {
      text += decoder.decode(chunk as Uint8Array, { stream: true });
      let cut: number;
      while ((cut = text.indexOf('\n\n')) >= 0) {
        const block = text.slice(0, cut);
        text = text.slice(cut + 2);
        let event = 'message';
        let data = '';
        for (const line of block.split('\n')) {
          lines.push(line);
          if (line.startsWith('event: ')) event = line.slice(7);
          else if (line.startsWith('data: ')) data += line.slice(6);
        }
        if (data !== '') frames.push({ event, data: JSON.parse(data) });
      }
    }
  })()
    .catch(() => undefined)
    .finally(() => (ended = true));
  const samplesOf = (signal: string) =>
    frames
      .filter((f) => f.event === 'samples')
      .flatMap((f) => f.data)
      .filter((s) => s.signal === signal);
  return {
    res,
    frames,
    lines,
    get ended() {
      return ended;
    },
    samplesOf,
    async waitFor(what: string, ok: () => boolean, ms = 5000) {
      const deadline = Date.now() + ms;
      while (!ok()) {
        if (Date.now() > deadline)
          assert.fail(`timed out waiting for ${what}; got ${JSON.stringify(frames)}`);
        await sleep(10);
      }
    },
    async close() {
      abort.abort();
      await pump;
    },
  };
}

describe('live stream: SSE by equipment or signal, coalesced, across instances', () => {
  let t: TestApp;
  let second: SecondApp | undefined;
  let cookie: string;
  let base: string;

  const problem = async (res: Response) => (await res.json()) as { code: string; detail: string };
  const liveStats = async (b: string) =>
    (await (await fetch(`${b}/api/telemetry/live`, { headers: { cookie } })).json()) as {
      hub: LiveHubStats;
      bridge: LiveBridgeStats;
    };

  before(async () => {
    t = await createTestApp();
    await importExamplePlant(t);
    cookie = await t.adminCookie();
    await importSignals(t, SIGNALS);
    await t.loom.telemetry.start();
    base = await t.app.listen({ port: 0, host: '127.0.0.1' });
  });
  after(async () => {
    if (second) {
      await second.loom.telemetry.stop();
      await second.close();
    }
    await t.loom.telemetry.stop();
    await t.close();
  });

  it('refuses a stream without credentials, without a filter, or with a bad id', async () => {
    const anonymous = await fetch(`${base}/api/live?equipment=paint-oven-1`);
    assert.equal(anonymous.status, 401);
    assert.equal((await problem(anonymous)).code, 'LOOM_AUTH_UNAUTHENTICATED');
    const noFilter = await fetch(`${base}/api/live`, { headers: { cookie } });
    assert.equal(noFilter.status, 400);
    assert.equal((await problem(noFilter)).code, 'LOOM_VALIDATION_FAILED');
    const badId = await fetch(`${base}/api/live?signals=ok,no%20spaces`, { headers: { cookie } });
    assert.equal(badId.status, 400);
    const tooMany = Array.from({ length: 51 }, (_, i) => `e${i}`).join(',');
    const capped = await fetch(`${base}/api/live?equipment=${tooMany}`, { headers: { cookie } });
    assert.equal(capped.status, 400);
    assert.match((await problem(capped)).detail, /at most 50/);
    const docs = await t.app.inject({ method: 'GET', url: '/api/docs/json' });
    assert.equal(docs.statusCode, 200);
    assert.ok(docs.json().paths['/api/live'], 'the stream is in the OpenAPI document');
  });

  it('streams the samples of the subscribed equipment only', async () => {
    const oven = await openStream(base, 'equipment=paint-oven-1', cookie);
    const press = await openStream(base, 'signals=press-1.force', cookie);
    try {
      assert.equal(oven.res.status, 200);
      assert.match(oven.res.headers.get('content-type') ?? '', /^text\/event-stream/);
      assert.equal(oven.res.headers.get('cache-control'), 'no-cache, no-transform');
      assert.equal(oven.res.headers.get('x-accel-buffering'), 'no');
      t.loom.telemetry.pipeline.accept([sample('oven-1', 'T', T0, 181.5), sample('press-1', 'F', T0, 42)]);
      await oven.waitFor('the oven sample', () => oven.samplesOf('paint-oven-1.temperature').length > 0);
      await press.waitFor('the press sample', () => press.samplesOf('press-1.force').length > 0);
      await sleep(2 * t.loom.telemetry.live.limits.flushMs);
      assert.deepEqual(oven.samplesOf('paint-oven-1.temperature'), [
        {
          signal: 'paint-oven-1.temperature',
          equipment: 'paint-oven-1',
          t: T0,
          value: 181.5,
          quality: 'good',
        },
      ]);
      const equipmentSeen = new Set(oven.frames.flatMap((f) => f.data.map((e) => e.equipment)));
      assert.deepEqual([...equipmentSeen], ['paint-oven-1'], 'no press sample on the oven stream');
      assert.ok(oven.lines.includes('retry: 2000'));
    } finally {
      await oven.close();
      await press.close();
    }
    await waitUntil('the streams are unsubscribed', () => t.loom.telemetry.live.stats().clients === 0);
  });

  it('starts a stream with the latest values and sends stale marks', async () => {
    const s = await openStream(base, 'signals=paint-oven-1.temperature', cookie);
    try {
      await s.waitFor('the snapshot', () => s.samplesOf('paint-oven-1.temperature').length === 1);
      assert.equal(s.samplesOf('paint-oven-1.temperature')[0]!.value, 181.5);
      t.loom.telemetry.pipeline.markStale(
        tagKey.sparkplugDevicePrefix('plant1', 'edge-1', 'oven-1'),
        T0 + 1,
        'DDEATH',
      );
      await s.waitFor('the stale mark', () => s.frames.some((f) => f.event === 'stale'));
      assert.deepEqual(s.frames.find((f) => f.event === 'stale')!.data, [
        { signal: 'paint-oven-1.temperature', equipment: 'paint-oven-1', at: T0 + 1, reason: 'DDEATH' },
      ]);
    } finally {
      await s.close();
    }
  });

  it('coalesces 10,000 samples of one signal into a few events ending with the last', async () => {
    const s = await openStream(base, 'signals=paint-oven-1.counter', cookie);
    const before = t.loom.telemetry.live.stats().coalesced;
    try {
      for (let batch = 0; batch < 10; batch++) {
        const samples: TagSample[] = [];
        for (let i = 1; i <= 1000; i++)
          samples.push(sample('oven-1', 'N', T0 + batch * 1000 + i, batch * 1000 + i));
        t.loom.telemetry.pipeline.accept(samples);
        await sleep(5);
      }
      await s.waitFor('the last sample', () => s.samplesOf('paint-oven-1.counter').at(-1)?.value === 10_000);
      const values = s.samplesOf('paint-oven-1.counter').map((e) => e.value as number);
      assert.ok(values.length <= 10, `${values.length} events for 10,000 samples`);
      assert.deepEqual(
        values,
        [...values].sort((a, b) => a - b),
        'in order',
      );
      assert.ok(t.loom.telemetry.live.stats().coalesced - before >= 10_000 - values.length);
    } finally {
      await s.close();
    }
  });

  it('drops a client that stops reading, holding at most the bound plus one delivery for it', async () => {
    const live = t.loom.telemetry.live;
    const saved = live.limits;
    const limits = { flushMs: 25, maxBufferedBytes: 64 * 1024, dropAfterMs: 1000 };
    live.setLimits(limits);
    const responses: ServerResponse[] = [];
    const onRequest = (req: { url?: string }, res: ServerResponse) => {
      if (req.url?.startsWith('/api/live?')) responses.push(res);
    };
    t.app.server.on('request', onRequest);
    const abort = new AbortController();
    const dropped = live.stats().droppedClients;
    try {
      // The body is never read: undici stops reading the socket, then TCP stops the server.
      const res = await fetch(`${base}/api/live?equipment=paint-oven-1`, {
        headers: { cookie },
        signal: abort.signal,
      });
      assert.equal(res.status, 200);
      const filler = 'x'.repeat(1000);
      const events = (round: number): LiveEvent[] =>
        Array.from({ length: 500 }, (_, i) => ({
          type: 'sample',
          signal: `paint-oven-1.bulk-${i}`,
          equipment: 'paint-oven-1',
          t: T0 + round,
          value: `${round} ${filler}`,
          quality: 'good',
        }));
      const oneDelivery = JSON.stringify(events(1_000_000)).length + 100;
      let maxBuffered = 0;
      const deadline = Date.now() + 15_000;
      for (let round = 0; live.stats().droppedClients === dropped; round++) {
        assert.ok(Date.now() < deadline, 'the slow client was never dropped');
        live.publish(events(round), 'remote');
        for (const r of responses) maxBuffered = Math.max(maxBuffered, r.writableLength);
        await sleep(10);
      }
      assert.equal(live.stats().droppedClients, dropped + 1);
      assert.ok(maxBuffered > limits.maxBufferedBytes, `the client did congest (max ${maxBuffered} bytes)`);
      assert.ok(
        maxBuffered <= limits.maxBufferedBytes + oneDelivery,
        `buffered ${maxBuffered} bytes, bound ${limits.maxBufferedBytes} + ${oneDelivery}`,
      );
      assert.equal(live.stats().clients, 0);
      assert.ok(responses[0]!.destroyed, 'the socket is closed');
    } finally {
      abort.abort();
      t.app.server.off('request', onRequest);
      live.setLimits(saved);
    }
  });

  it('delivers a sample accepted by one instance to a stream on another (LISTEN/NOTIFY)', async () => {
    second = await createSecondApp(t);
    await second.loom.telemetry.start();
    const baseB = await second.app.listen({ port: 0, host: '127.0.0.1' });
    const onB = await openStream(baseB, 'equipment=paint-oven-1', cookie);
    const onA = await openStream(base, 'signals=paint-oven-1.remote', cookie);
    const remoteOnA = t.loom.telemetry.live.stats().publishedRemote;
    try {
      t.loom.telemetry.pipeline.accept([
        sample('oven-1', 'R', T0 + 50, 1),
        sample('oven-1', 'R', T0 + 51, 2),
      ]);
      await onB.waitFor(
        'the sample from instance A',
        () => onB.samplesOf('paint-oven-1.remote').at(-1)?.value === 2,
      );
      assert.deepEqual(onB.samplesOf('paint-oven-1.remote').at(-1), {
        signal: 'paint-oven-1.remote',
        equipment: 'paint-oven-1',
        t: T0 + 51,
        value: 2,
        quality: 'good',
      });
      await onA.waitFor('the local stream', () => onA.samplesOf('paint-oven-1.remote').length > 0);
      await sleep(300);
      assert.equal(onA.samplesOf('paint-oven-1.remote').length, 1, 'A does not receive its own events back');
      assert.equal(t.loom.telemetry.live.stats().publishedRemote, remoteOnA);
      const body = await liveStats(baseB);
      assert.ok(body.hub.publishedRemote >= 1);
      assert.ok(body.bridge.eventsReceived >= 1);
      assert.equal(body.bridge.notifyFailures, 0);
    } finally {
      await onB.close();
      await onA.close();
    }
  });

  it('splits a large batch into notifications under 8000 bytes, and skips an event too large for one', async () => {
    assert.ok(second, 'runs after the second instance started');
    const baseB = `http://127.0.0.1:${(second.app.server.address() as { port: number }).port}`;
    const onB = await openStream(baseB, 'equipment=weld-robot-1', cookie);
    const bridgeOf = async (b: string) => (await liveStats(b)).bridge;
    const sentBefore = await bridgeOf(base);
    try {
      const events: LiveSampleEvent[] = Array.from({ length: 300 }, (_, i) => ({
        type: 'sample',
        signal: `weld-robot-1.s${i}`,
        equipment: 'weld-robot-1',
        t: T0,
        value: `${i} ${'é'.repeat(150)}`,
        quality: 'good',
      }));
      events.push({ ...events[0]!, signal: 'weld-robot-1.huge', value: 'x'.repeat(9000) });
      t.loom.telemetry.live.publish(events, 'local');
      await onB.waitFor('300 signals on instance B', () => onB.frames.flatMap((f) => f.data).length >= 300);
      const received = onB.frames.flatMap((f) => f.data);
      assert.equal(new Set(received.map((e) => e.signal)).size, 300);
      assert.ok(!received.some((e) => e.signal === 'weld-robot-1.huge'));
      assert.deepEqual(received.find((e) => e.signal === 'weld-robot-1.s7')?.value, `7 ${'é'.repeat(150)}`);
      const sent = await bridgeOf(base);
      assert.ok(sent.notifications - sentBefore.notifications >= (300 * 320) / 8000, 'several notifications');
      assert.equal(sent.oversized - sentBefore.oversized, 1);
      assert.equal(sent.notifyFailures, 0);
    } finally {
      await onB.close();
    }
  });
});

async function waitUntil(what: string, ok: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting until ${what}`);
    await sleep(10);
  }
}

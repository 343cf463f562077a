import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { LiveSample } from './ingest-pipeline.ts';
import {
  LiveHub,
  connectPipeline,
  type LiveClient,
  type LiveCloseReason,
  type LiveEvent,
  type LiveLimits,
  type LiveSampleEvent,
  type LiveTimers,
} from './live-hub.ts';
import type { MappedSignal } from './sample-store.ts';

const T0 = Date.parse('2026-11-25T09:00:00Z');

function fakeTimers() {
  const intervals = new Map<number, { fn: () => void; ms: number }>();
  let next = 1;
  const timers: LiveTimers = {
    setInterval(fn, ms) {
      intervals.set(next, { fn, ms });
      return next++;
    },
    clearInterval(h) {
      intervals.delete(h as number);
    },
  };
  return { timers, intervals };
}

function setup(limits: Partial<LiveLimits> = {}) {
  let now = 0;
  const { timers, intervals } = fakeTimers();
  const warnings: string[] = [];
  const hub = new LiveHub({
    now: () => now,
    timers,
    limits,
    log: { warn: (_d, m) => warnings.push(m), error: (_d, m) => warnings.push(m) },
  });
  /** Advances the clock by `ms`, firing the flush interval as a real timer would. */
  const advance = (ms: number) => {
    const step = hub.limits.flushMs;
    for (let done = 0; done < ms; done += step) {
      now += step;
      for (const { fn } of [...intervals.values()]) fn();
    }
  };
  return { hub, intervals, advance, warnings };
}

function fakeClient() {
  const frames: LiveEvent[][] = [];
  const c = {
    frames,
    buffered: 0,
    heartbeats: 0,
    closed: null as LiveCloseReason | null,
    get events() {
      return frames.flat();
    },
  };
  const client: LiveClient = {
    bufferedBytes: () => c.buffered,
    deliver: (events) => frames.push([...events]),
    heartbeat: () => c.heartbeats++,
    close: (reason) => (c.closed = reason),
  };
  return Object.assign(c, { client });
}

const sample = (signal: string, value: number, equipment = signal.split('.')[0]!): LiveSampleEvent => ({
  type: 'sample',
  signal,
  equipment,
  t: T0 + value,
  value,
  quality: 'good',
});

const stale = (signal: string, equipment = signal.split('.')[0]!): LiveEvent => ({
  type: 'stale',
  signal,
  equipment,
  at: T0,
  reason: 'DDEATH',
});

describe('LiveHub', () => {
  it('delivers events of the subscribed equipment or signals only', () => {
    const { hub, advance } = setup();
    const byEquipment = fakeClient();
    const bySignal = fakeClient();
    hub.subscribe({ equipment: ['oven'] }, byEquipment.client);
    hub.subscribe({ signals: ['press.force'] }, bySignal.client);
    hub.publish([sample('oven.temp', 1), sample('press.force', 2), sample('press.stroke', 3)], 'local');
    advance(250);
    assert.deepEqual(
      byEquipment.events.map((e) => e.signal),
      ['oven.temp'],
    );
    assert.deepEqual(
      bySignal.events.map((e) => e.signal),
      ['press.force'],
    );
  });

  it('sends an event once to a subscriber that names both its equipment and its signal', () => {
    const { hub, advance } = setup();
    const c = fakeClient();
    hub.subscribe({ equipment: ['oven'], signals: ['oven.temp'] }, c.client);
    hub.publish([sample('oven.temp', 1)], 'local');
    advance(250);
    assert.equal(c.events.length, 1);
    assert.equal(hub.stats().coalesced, 0);
  });

  it('coalesces 10,000 samples of one signal to the latest, counting the rest', () => {
    const { hub, advance } = setup();
    const c = fakeClient();
    hub.subscribe({ signals: ['oven.temp'] }, c.client);
    for (let i = 1; i <= 10_000; i++) hub.publish([sample('oven.temp', i)], 'local');
    advance(250);
    assert.deepEqual(
      c.events.map((e) => (e.type === 'sample' ? e.value : null)),
      [10_000],
    );
    assert.equal(hub.stats().coalesced, 9_999);
    assert.equal(hub.stats().delivered, 1);
  });

  it('keeps a stale mark and a sample of one signal in the order of their latest change', () => {
    const { hub, advance } = setup();
    const c = fakeClient();
    hub.subscribe({ equipment: ['oven'] }, c.client);
    hub.publish([stale('oven.temp'), sample('oven.temp', 1), sample('oven.door', 1)], 'local');
    hub.publish([stale('oven.door')], 'local');
    advance(250);
    assert.deepEqual(
      c.events.map((e) => `${e.type} ${e.signal}`),
      ['stale oven.temp', 'sample oven.temp', 'sample oven.door', 'stale oven.door'],
    );
    hub.publish([sample('oven.temp', 2), stale('oven.temp'), sample('oven.temp', 3)], 'local');
    advance(250);
    assert.deepEqual(
      c.frames[1]!.map((e) => `${e.type} ${e.signal}`),
      ['stale oven.temp', 'sample oven.temp'],
      'the signal is fresh again: its last sample comes after the stale mark',
    );
  });

  it('holds at most maxPendingPerClient signals for a subscriber, counting what it discards', () => {
    const { hub, advance } = setup({ maxPendingPerClient: 3 });
    const c = fakeClient();
    hub.subscribe({ equipment: ['oven'] }, c.client);
    for (let i = 0; i < 10; i++) hub.publish([sample(`oven.s${i}`, i), sample(`oven.s${i}`, i + 1)], 'local');
    advance(250);
    assert.equal(c.events.length, 3);
    assert.equal(hub.stats().overflowed, 7 * 2);
  });

  it('stops delivering to a congested transport and drops it after dropAfterMs, with bounded pending', () => {
    const { hub, advance, intervals } = setup({ maxBufferedBytes: 1000, dropAfterMs: 5000 });
    const slow = fakeClient();
    const fast = fakeClient();
    hub.subscribe({ equipment: ['oven'] }, slow.client);
    hub.subscribe({ equipment: ['oven'] }, fast.client);
    slow.buffered = 1001;
    for (let i = 0; i < 19; i++) {
      for (let n = 0; n < 1000; n++) hub.publish([sample('oven.temp', i * 1000 + n)], 'local');
      advance(250);
    }
    assert.equal(slow.frames.length, 0, 'nothing is written to a congested transport');
    assert.equal(slow.closed, null);
    assert.equal(fast.frames.length, 19);
    advance(500);
    assert.equal(slow.closed, 'slow');
    assert.equal(fast.closed, null);
    assert.deepEqual(hub.stats(), {
      clients: 1,
      publishedLocal: 19_000,
      publishedRemote: 0,
      delivered: 19,
      coalesced: 19_000 - 1 + (19_000 - 19),
      overflowed: 0,
      droppedClients: 1,
    });
    assert.equal(intervals.size, 1);
  });

  it('resumes delivery when a congested transport drains in time, with the latest value only', () => {
    const { hub, advance } = setup({ maxBufferedBytes: 1000, dropAfterMs: 5000 });
    const c = fakeClient();
    hub.subscribe({ equipment: ['oven'] }, c.client);
    c.buffered = 5000;
    for (let i = 1; i <= 4; i++) {
      hub.publish([sample('oven.temp', i)], 'local');
      advance(1000);
    }
    c.buffered = 0;
    advance(250);
    assert.equal(c.closed, null);
    assert.deepEqual(
      c.events.map((e) => (e.type === 'sample' ? e.value : null)),
      [4],
    );
  });

  it('sends a heartbeat after heartbeatMs without a delivery', () => {
    const { hub, advance } = setup({ heartbeatMs: 1000 });
    const c = fakeClient();
    hub.subscribe({ equipment: ['oven'] }, c.client);
    advance(750);
    assert.equal(c.heartbeats, 0);
    advance(250);
    assert.equal(c.heartbeats, 1);
    hub.publish([sample('oven.temp', 1)], 'local');
    advance(750);
    assert.equal(c.heartbeats, 1, 'a delivery resets the heartbeat');
  });

  it('forwards only local events to a subscription that asks for them', () => {
    const { hub, advance } = setup();
    const bridge = fakeClient();
    const dashboard = fakeClient();
    hub.subscribe({ all: true }, bridge.client, { origin: 'local', internal: true, dropAfterMs: Infinity });
    hub.subscribe({ equipment: ['oven', 'press'] }, dashboard.client);
    hub.publish([sample('oven.temp', 1)], 'local');
    hub.publish([sample('press.force', 2)], 'remote');
    advance(250);
    assert.deepEqual(
      bridge.events.map((e) => e.signal),
      ['oven.temp'],
    );
    assert.deepEqual(
      dashboard.events.map((e) => e.signal),
      ['oven.temp', 'press.force'],
    );
    assert.equal(hub.stats().clients, 1);
    assert.equal(hub.stats().publishedRemote, 1);
  });

  it('starts a new subscriber with the latest value and staleness of each matching signal', () => {
    const { hub, advance } = setup();
    hub.publish([sample('oven.temp', 1), sample('oven.temp', 2), sample('press.force', 3)], 'remote');
    hub.publish([sample('oven.door', 1), stale('oven.door')], 'local');
    const c = fakeClient();
    hub.subscribe({ equipment: ['oven'] }, c.client);
    advance(250);
    assert.deepEqual(
      c.events.map((e) => `${e.type} ${e.signal} ${e.type === 'sample' ? String(e.value) : ''}`),
      ['sample oven.temp 2', 'sample oven.door 1', 'stale oven.door '],
    );
  });

  it('runs its timer only while someone is subscribed, and closes every subscriber on close()', () => {
    const { hub, intervals } = setup();
    assert.equal(intervals.size, 0);
    const a = fakeClient();
    const b = fakeClient();
    const sa = hub.subscribe({ equipment: ['oven'] }, a.client);
    hub.subscribe({ equipment: ['oven'] }, b.client);
    assert.equal(intervals.size, 1);
    sa.unsubscribe();
    assert.equal(a.closed, null, 'unsubscribing does not call back');
    assert.equal(intervals.size, 1);
    hub.close();
    assert.equal(b.closed, 'shutdown');
    assert.equal(intervals.size, 0);
    assert.equal(hub.stats().clients, 0);
  });

  it('closes a subscriber whose transport throws, and keeps serving the others', () => {
    const { hub, advance, warnings } = setup();
    const good = fakeClient();
    const bad = fakeClient();
    hub.subscribe({ equipment: ['oven'] }, { ...bad.client, deliver: () => assert.fail('socket gone') });
    hub.subscribe({ equipment: ['oven'] }, good.client);
    hub.publish([sample('oven.temp', 1)], 'local');
    advance(250);
    assert.equal(bad.closed, 'failed');
    assert.equal(good.events.length, 1);
    assert.match(warnings.join(), /failed/);
  });

  it('takes live samples and stale marks from the ingest pipeline', () => {
    const { hub, advance } = setup();
    const signal: MappedSignal = {
      no: 1,
      id: 'oven.temp',
      equipment: 'oven',
      dataType: 'number',
      deadband: 0,
      tag: 'spb:a/b/c/T',
      source: { sparkplug: { group: 'a', edgeNode: 'b', device: 'c', metric: 'T' } },
    };
    let onSamples: ((s: readonly LiveSample[]) => void) | undefined;
    let onStale: ((s: readonly MappedSignal[], at: number, reason: string) => void) | undefined;
    const disconnect = connectPipeline(hub, {
      subscribe: (l) => ((onSamples = l), () => (onSamples = undefined)),
      onStale: (l) => ((onStale = l), () => (onStale = undefined)),
    });
    const c = fakeClient();
    hub.subscribe({ signals: ['oven.temp'] }, c.client);
    onSamples!([{ signal, ts: T0, rx: T0 + 5, value: 180, quality: 'uncertain' }]);
    onStale!([signal], T0 + 10, 'NDEATH');
    advance(250);
    assert.deepEqual(c.events, [
      { type: 'sample', signal: 'oven.temp', equipment: 'oven', t: T0, value: 180, quality: 'uncertain' },
      { type: 'stale', signal: 'oven.temp', equipment: 'oven', at: T0 + 10, reason: 'NDEATH' },
    ]);
    disconnect();
    assert.equal(onSamples, undefined);
    assert.equal(onStale, undefined);
  });
});

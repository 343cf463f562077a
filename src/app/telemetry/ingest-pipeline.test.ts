import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fixedClock } from '../../domain/shared/clock.ts';
import type { TagSample } from '../../domain/signal/sample.ts';
import { IngestPipeline, type LiveSample } from './ingest-pipeline.ts';
import type { MappedSignal, SampleStore, SignalSeries, StaleMark } from './sample-store.ts';

const spb = (metric: string) => ({ sparkplug: { group: 'g', edgeNode: 'e', device: 'oven', metric } });

const SIGNALS: MappedSignal[] = [
  {
    no: 1,
    id: 'oven.temp',
    equipment: 'oven',
    dataType: 'number',
    deadband: 1,
    tag: 'spb:g/e/oven/Temp',
    source: spb('Temp'),
  },
  {
    no: 2,
    id: 'oven.door',
    equipment: 'oven',
    dataType: 'boolean',
    deadband: 0,
    tag: 'spb:g/e/oven/Door',
    source: spb('Door'),
  },
];

class FakeStore implements SampleStore {
  writes: { series: SignalSeries[]; stale: StaleMark[] }[] = [];
  failNext = 0;
  async loadSignals() {
    return SIGNALS;
  }
  async ensurePartitions() {}
  async compact() {
    return 0;
  }
  async dropDaysBefore() {
    return 0;
  }
  async write(series: readonly SignalSeries[], stale: readonly StaleMark[]) {
    if (this.failNext > 0) {
      this.failNext--;
      throw new Error('connection terminated');
    }
    this.writes.push({
      series: series.map((s) => ({ ...s, ts: [...s.ts], v: [...s.v] })),
      stale: [...stale],
    });
    return { stored: series.reduce((n, s) => n + s.ts.length, 0), duplicates: 0 };
  }
  stored(no: number): number[] {
    return this.writes.flatMap((w) =>
      w.series.filter((s) => s.signal.no === no).flatMap((s) => s.v as number[]),
    );
  }
}

const logs: string[] = [];
const log = { warn: (_: object, m: string) => logs.push(m), error: (_: object, m: string) => logs.push(m) };

const temp = (t: number, value: TagSample['value'], historical = false): TagSample => ({
  tag: 'spb:g/e/oven/Temp',
  value,
  quality: 'good',
  sourceTs: t,
  serverTs: t,
  historical,
});

async function pipeline(store: FakeStore, maxBufferedSamples = 1000) {
  const p = new IngestPipeline({
    store,
    clock: fixedClock(new Date(10_000)),
    log,
    flushMs: 60_000,
    maxBufferedSamples,
  });
  await p.reloadSignals();
  return p;
}

describe('IngestPipeline', () => {
  it('keeps a value only when it leaves the deadband of the last kept one', async () => {
    const store = new FakeStore();
    const p = await pipeline(store);
    p.accept([temp(1, 100), temp(2, 100.5), temp(3, 101), temp(4, 101.2), temp(5, 98)]);
    await p.flush();
    assert.deepEqual(store.stored(1), [100, 101.2, 98]);
    assert.equal(p.stats().deadbandFiltered, 2);
  });

  it('applies no deadband to historical samples and never shows them live', async () => {
    const store = new FakeStore();
    const p = await pipeline(store);
    const live: LiveSample[] = [];
    p.subscribe((s) => live.push(...s));
    p.accept([temp(1, 100, true), temp(2, 100.1, true), temp(3, 50)]);
    await p.flush();
    assert.deepEqual(store.stored(1), [100, 100.1, 50]);
    assert.deepEqual(
      live.map((s) => s.value),
      [50],
    );
  });

  it('treats 0/1 as a boolean and a text in a number signal as a bad sample without value', async () => {
    const store = new FakeStore();
    const p = await pipeline(store);
    const live: LiveSample[] = [];
    p.subscribe((s) => live.push(...s));
    p.accept([{ ...temp(1, 1), tag: 'spb:g/e/oven/Door' }, temp(2, 'hot')]);
    await p.flush();
    assert.deepEqual(
      live.map((s) => [s.signal.id, s.value, s.quality]),
      [
        ['oven.door', true, 'good'],
        ['oven.temp', null, 'bad'],
      ],
    );
    assert.equal(p.stats().typeMismatch, 1);
  });

  it('drops and counts samples beyond the buffer bound, and says so in the log', async () => {
    const store = new FakeStore();
    const p = await pipeline(store, 1000);
    logs.length = 0;
    p.accept(Array.from({ length: 1500 }, (_, i) => temp(i, i * 10)));
    assert.equal(p.stats().samplesDropped, 500);
    assert.equal(p.stats().buffered, 1000);
    assert.ok(logs.some((m) => m.includes('samples dropped')));
    await p.flush();
    assert.equal(store.stored(1).length, 1000);
  });

  it('keeps a batch whose write failed and writes it, in order, with what came after', async () => {
    const store = new FakeStore();
    const p = await pipeline(store);
    p.accept([temp(1, 10), temp(2, 20)]);
    store.failNext = 1;
    await assert.rejects(p.flush(), /connection terminated/);
    p.accept([temp(3, 30)]);
    assert.equal(p.stats().buffered, 3);
    await p.flush();
    assert.deepEqual(store.stored(1), [10, 20, 30]);
    assert.equal(p.stats().samplesStored, 3);
  });

  it('on stop, writes what a failing write in flight gave back', async () => {
    const store = new FakeStore();
    const p = await pipeline(store);
    p.accept([temp(1, 10)]);
    store.failNext = 1;
    const failing = p.flush();
    const stopping = p.stop();
    await assert.rejects(failing, /connection terminated/);
    await stopping;
    assert.deepEqual(store.stored(1), [10]);
  });

  it('marks the signals under a tag prefix stale and writes the mark with the next batch', async () => {
    const store = new FakeStore();
    const p = await pipeline(store);
    const seen: string[] = [];
    p.onStale((signals, _at, reason) => seen.push(`${signals.map((s) => s.id).join(',')}:${reason}`));
    p.markStale('spb:g/e/oven/', 5, 'DDEATH');
    p.markStale('spb:g/e/press/', 5, 'DDEATH');
    await p.flush();
    assert.deepEqual(seen, ['oven.temp,oven.door:DDEATH']);
    assert.deepEqual(store.writes[0]?.stale, [{ signalNos: [1, 2], at: 5, reason: 'DDEATH' }]);
  });

  it('counts samples of tags no signal maps and lists a few of them', async () => {
    const store = new FakeStore();
    const p = await pipeline(store);
    p.accept([{ ...temp(1, 1), tag: 'spb:g/e/oven/Fan' }]);
    assert.equal(p.stats().unmapped, 1);
    assert.deepEqual(p.stats().unmappedTags, ['spb:g/e/oven/Fan']);
  });
});

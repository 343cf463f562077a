import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { tagKey, type TagSample } from '../../src/domain/signal/sample.ts';
import { createTestApp, type TestApp } from '../support/app.ts';
import { importExamplePlant, importSignals } from '../support/plant.ts';

const T0 = Date.parse('2026-11-25T09:00:00Z');
const tag = (metric: string, device = 'oven-1') => tagKey.sparkplug('plant1', 'paint-edge', device, metric);

const sample = (
  metric: string,
  t: number,
  value: TagSample['value'],
  extra: Partial<TagSample> = {},
): TagSample => ({
  tag: tag(metric),
  value,
  quality: 'good',
  sourceTs: t,
  serverTs: t + 5,
  historical: false,
  ...extra,
});

const SIGNALS = [
  {
    id: 'paint-oven-1.temperature',
    equipment: 'paint-oven-1',
    name: 'Oven temperature',
    dataType: 'number',
    unit: 'degC',
    limits: { low: 20, high: 200 },
    deadband: 0.5,
    source: {
      sparkplug: { group: 'plant1', edgeNode: 'paint-edge', device: 'oven-1', metric: 'Temperature' },
    },
  },
  {
    id: 'paint-oven-1.door-open',
    equipment: 'paint-oven-1',
    dataType: 'boolean',
    source: { sparkplug: { group: 'plant1', edgeNode: 'paint-edge', device: 'oven-1', metric: 'Door' } },
  },
  {
    id: 'paint-oven-1.recipe',
    equipment: 'paint-oven-1',
    dataType: 'string',
    source: { sparkplug: { group: 'plant1', edgeNode: 'paint-edge', device: 'oven-1', metric: 'Recipe' } },
  },
];

describe('telemetry: signals, ingest pipeline, history', () => {
  let t: TestApp;
  let cookie: string;

  before(async () => {
    t = await createTestApp();
    await importExamplePlant(t);
    cookie = await t.adminCookie();
    await importSignals(t, SIGNALS);
    await t.loom.telemetry.start();
  });
  after(async () => {
    await t.loom.telemetry.stop();
    await t.close();
  });

  const get = async (url: string) => {
    const res = await t.app.inject({ method: 'GET', url, headers: { cookie } });
    return { status: res.statusCode, body: res.json<Record<string, unknown>>() };
  };

  it('refuses a signal whose equipment or unit does not exist, and a second signal on the same source', async () => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/plant/import',
      headers: { cookie },
      payload: {
        signals: [
          { ...SIGNALS[0], id: 'x.one', equipment: 'no-such-oven', unit: 'furlong' },
          { ...SIGNALS[0], id: 'x.two' },
        ],
      },
    });
    assert.equal(res.statusCode, 422, res.body);
    const paths = res.json<{ issues: { path: string }[] }>().issues.map((i) => i.path);
    assert.deepEqual(paths, ['signals[0].equipment', 'signals[0].unit', 'signals[1].source']);
  });

  it('stores mapped samples as chunks, keeps live order, and answers raw history with quality', async () => {
    t.loom.telemetry.pipeline.accept([
      sample('Temperature', T0, 100),
      sample('Temperature', T0 + 1000, 100.2), // within the 0.5 deadband: filtered
      sample('Temperature', T0 + 2000, 101),
      sample('Temperature', T0 + 3000, 'hot'), // wrong type: stored as bad, no value
      sample('Door', T0, true),
      sample('Recipe', T0, 'PRIMER-7'),
      { ...sample('Unknown', T0, 1), tag: tag('Unknown', 'oven-9') },
    ]);
    await t.loom.telemetry.pipeline.flush();
    const h = await get(
      `/api/signals/paint-oven-1.temperature/history?from=2026-11-25T08:59:00Z&to=2026-11-25T09:01:00Z`,
    );
    assert.equal(h.status, 200, JSON.stringify(h.body));
    assert.equal(h.body.mode, 'raw');
    assert.deepEqual(
      (h.body.points as { t: number; v: unknown; q: string }[]).map((p) => [p.t - T0, p.v, p.q]),
      [
        [0, 100, 'good'],
        [2000, 101, 'good'],
        [3000, null, 'bad'],
      ],
    );
    const door = await get(
      `/api/signals/paint-oven-1.door-open/history?from=2026-11-25T08:59:00Z&to=2026-11-25T09:01:00Z`,
    );
    assert.deepEqual(
      (door.body.points as { v: unknown }[]).map((p) => p.v),
      [true],
    );
    const stats = (await get('/api/telemetry/ingest')).body;
    assert.equal(stats.unmapped, 1);
    assert.equal(stats.deadbandFiltered, 1);
    assert.equal(stats.typeMismatch, 1);
    assert.equal(stats.samplesStored, 5);
    assert.deepEqual(stats.unmappedTags, [tag('Unknown', 'oven-9')]);
    const rows = await t.database.db.query<{ n: number }>('SELECT count(*)::int AS n FROM signal_chunks');
    assert.equal(rows.rows[0]?.n, 3, 'one chunk per signal per batch');
  });

  it('stores a historical replay once: samples already stored are skipped', async () => {
    const base = T0 + 10 * 60_000;
    const batch = [0, 1, 2, 3].map((i) =>
      sample('Temperature', base + i * 1000, 50 + i * 10, { historical: true }),
    );
    t.loom.telemetry.pipeline.accept(batch.slice(0, 2));
    await t.loom.telemetry.pipeline.flush();
    t.loom.telemetry.pipeline.accept(batch);
    t.loom.telemetry.pipeline.accept(batch);
    await t.loom.telemetry.pipeline.flush();
    const h = await get(
      `/api/signals/paint-oven-1.temperature/history?from=2026-11-25T09:10:00Z&to=2026-11-25T09:11:00Z`,
    );
    assert.deepEqual(
      (h.body.points as { v: number; historical: boolean }[]).map((p) => [p.v, p.historical]),
      [
        [50, true],
        [60, true],
        [70, true],
        [80, true],
      ],
    );
    const rollup = await t.database.db.query<{ n: number; min: number; max: number }>(
      `SELECT n, min, max FROM signal_rollups_1m r JOIN signals s USING (signal_no)
        WHERE s.id = 'paint-oven-1.temperature' AND minute = '2026-11-25T09:10:00Z'`,
    );
    assert.deepEqual(rollup.rows[0], { n: 4, min: 50, max: 80 }, 'rollups count each sample once');
    assert.ok(((await get('/api/telemetry/ingest')).body.duplicates as number) >= 6);
  });

  it('historical samples never replace the latest live value (Sparkplug H16)', async () => {
    t.loom.telemetry.pipeline.accept([sample('Temperature', T0 + 30 * 60_000, 150)]);
    await t.loom.telemetry.pipeline.flush();
    t.loom.telemetry.pipeline.accept([sample('Temperature', T0 + 40 * 60_000, 10, { historical: true })]);
    await t.loom.telemetry.pipeline.flush();
    const latest = await get('/api/equipment/paint-oven-1/signals/latest');
    assert.equal(latest.status, 200);
    const temp = (latest.body.signals as { signal: string; value: unknown; stale: boolean }[]).find(
      (s) => s.signal === 'paint-oven-1.temperature',
    );
    assert.equal(temp?.value, 150);
    assert.equal(temp?.stale, false);
  });

  it('marks the signals of a dead device stale, until a newer live value arrives', async () => {
    t.loom.telemetry.pipeline.markStale(
      tagKey.sparkplugDevicePrefix('plant1', 'paint-edge', 'oven-1'),
      T0 + 31 * 60_000,
      'DDEATH',
    );
    await t.loom.telemetry.pipeline.flush();
    let latest = await get('/api/equipment/paint-oven-1/signals/latest');
    const byId = (body: Record<string, unknown>) =>
      new Map(
        (body.signals as { signal: string; stale: boolean; quality: string }[]).map((s) => [s.signal, s]),
      );
    assert.equal(byId(latest.body).get('paint-oven-1.temperature')?.stale, true);
    assert.equal(byId(latest.body).get('paint-oven-1.temperature')?.quality, 'bad');
    t.loom.telemetry.pipeline.accept([sample('Temperature', T0 + 32 * 60_000, 151)]);
    await t.loom.telemetry.pipeline.flush();
    latest = await get('/api/equipment/paint-oven-1/signals/latest');
    assert.equal(byId(latest.body).get('paint-oven-1.temperature')?.stale, false);
  });

  it('downsamples a day at 1 Hz to buckets from the rollups', async () => {
    const day = Date.parse('2026-11-24T00:00:00Z');
    await t.database.db.query(`SELECT telemetry_ensure_partition('2026-11-24')`);
    for (let hour = 0; hour < 24; hour++) {
      const batch: TagSample[] = [];
      for (let s = 0; s < 3600; s++) {
        const at = day + hour * 3_600_000 + s * 1000;
        batch.push(sample('Temperature', at, hour * 100 + (s % 60), { historical: true }));
      }
      t.loom.telemetry.pipeline.accept(batch);
      await t.loom.telemetry.pipeline.flush();
    }
    const h = await get(
      `/api/signals/paint-oven-1.temperature/history?from=2026-11-24T00:00:00Z&to=2026-11-25T00:00:00Z&maxPoints=1000`,
    );
    assert.equal(h.body.mode, 'buckets');
    assert.equal(h.body.source, 'rollups');
    assert.equal(h.body.bucketMs, 120_000);
    const points = h.body.points as { t: number; n: number; min: number; max: number; avg: number }[];
    assert.equal(points.length, 720);
    assert.deepEqual(points[0], { t: day, n: 120, min: 0, max: 59, avg: 29.5 });
    assert.equal(
      points.reduce((n, p) => n + p.n, 0),
      86_400,
    );
    const fine = await get(
      `/api/signals/paint-oven-1.temperature/history?from=2026-11-24T01:00:00Z&to=2026-11-24T01:10:00Z&maxPoints=100`,
    );
    assert.equal(fine.body.source, 'samples');
    assert.equal(fine.body.bucketMs, 6000);
    assert.deepEqual((fine.body.points as unknown[])[0], {
      t: day + 3_600_000,
      n: 6,
      min: 100,
      max: 105,
      avg: 102.5,
    });
  });

  it('compacts the one-sample chunks of a closed hour into one chunk, samples unchanged', async () => {
    const hour = Date.parse('2026-11-25T08:00:00Z');
    for (let i = 0; i < 10; i++) {
      t.loom.telemetry.pipeline.accept([sample('Temperature', hour + i * 1000, 20 + i * 2)]);
      await t.loom.telemetry.pipeline.flush();
    }
    const chunksOf = async () =>
      (
        await t.database.db.query<{ n: number; samples: number }>(
          `SELECT count(*)::int AS n, sum(n)::int AS samples FROM signal_chunks
            WHERE t_first >= '2026-11-25T08:00:00Z' AND t_first < '2026-11-25T09:00:00Z'`,
        )
      ).rows[0];
    const range = `from=2026-11-25T08:00:00Z&to=2026-11-25T09:00:00Z&maxPoints=100`;
    const before = await get(`/api/signals/paint-oven-1.temperature/history?${range}`);
    assert.deepEqual(await chunksOf(), { n: 10, samples: 10 });
    assert.equal(await t.loom.telemetry.pipeline.compact(), 9);
    assert.deepEqual(await chunksOf(), { n: 1, samples: 10 });
    const after = await get(`/api/signals/paint-oven-1.temperature/history?${range}`);
    assert.deepEqual(after.body, before.body);
    assert.equal(await t.loom.telemetry.pipeline.compact(), 0, 'a compacted hour is left alone');
  });

  it('answers a bad range or an unknown signal with a clear problem', async () => {
    const bad = await get(
      '/api/signals/paint-oven-1.temperature/history?from=2026-11-25T10:00:00Z&to=2026-11-25T09:00:00Z',
    );
    assert.equal(bad.status, 400);
    assert.equal(bad.body.code, 'LOOM_SIGNAL_RANGE_INVALID');
    const unknown = await get('/api/signals/nope/history');
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.code, 'LOOM_SIGNAL_NOT_FOUND');
    const anonymous = await t.app.inject({
      method: 'GET',
      url: '/api/signals/paint-oven-1.temperature/history',
    });
    assert.equal(anonymous.statusCode, 401);
  });

  it('picks up a new signal without a restart (LISTEN/NOTIFY)', async () => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/plant/signals',
      headers: { cookie },
      payload: {
        id: 'paint-oven-1.fan',
        equipment: 'paint-oven-1',
        dataType: 'number',
        source: { sparkplug: { group: 'plant1', edgeNode: 'paint-edge', device: 'oven-1', metric: 'Fan' } },
      },
    });
    assert.equal(res.statusCode, 201, res.body);
    const deadline = Date.now() + 5000;
    while (t.loom.telemetry.pipeline.signalOfTag(tag('Fan')) === undefined && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.ok(t.loom.telemetry.pipeline.signalOfTag(tag('Fan')), 'the tag map was reloaded');
  });
});

import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { SparkplugEdgeNode, loadGeneratorDevices } from '../../src/sim/sparkplug-edge.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { freePort, loomEnv, ROOT } from '../support/loom-process.ts';

/**
 * Issue #5 item 7: two stateless Loom processes share one PostgreSQL and the real Mosquitto; the
 * Sparkplug DATA load is split by an MQTT shared subscription. Every sample is stored once, both
 * serve the API, and when one is killed the other takes the whole load.
 */
const MQTT_URL = process.env.LOOM_TEST_MQTT_URL ?? 'mqtt://127.0.0.1:1883';
const ADMIN_PASSWORD = 'scale-out-admin-password';
const METRICS = 10;
const TICK_MS = 50;

interface Instance {
  readonly name: string;
  readonly child: ChildProcess;
  readonly url: string;
  readonly output: () => string;
  cookie?: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function startInstance(name: string, env: Record<string, string>): Promise<Instance> {
  const port = await freePort();
  let output = '';
  const child = spawn(process.execPath, ['bin/loom.js', 'start', '--no-sim'], {
    cwd: ROOT,
    env: loomEnv({ ...env, LOOM_PORT: String(port) }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (output += c.toString()));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${name} exited ${child.exitCode}: ${output}`);
    const ready = await fetch(`${url}/ready`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ready) break;
    if (Date.now() > deadline) throw new Error(`${name} not ready after 60 s: ${output}`);
    await sleep(200);
  }
  return { name, child, url, output: () => output };
}

async function login(i: Instance): Promise<string> {
  const res = await fetch(`${i.url}/api/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'admin', password: ADMIN_PASSWORD }),
  });
  assert.equal(res.status, 200, await res.text());
  const cookie = /loom_session=[^;]+/.exec(res.headers.get('set-cookie') ?? '')?.[0];
  assert.ok(cookie);
  i.cookie = cookie;
  return cookie;
}

async function api<T>(i: Instance, path: string, init: RequestInit = {}): Promise<T> {
  const res = await fetch(`${i.url}${path}`, {
    ...init,
    headers: { cookie: i.cookie ?? '', 'content-type': 'application/json', ...(init.headers ?? {}) },
  });
  const text = await res.text();
  assert.ok(res.ok, `${init.method ?? 'GET'} ${path} on ${i.name}: ${res.status} ${text}`);
  return JSON.parse(text) as T;
}

const stopped = (c: ChildProcess) =>
  c.exitCode !== null || c.signalCode !== null
    ? Promise.resolve()
    : new Promise<void>((resolve) => c.once('exit', () => resolve()));

describe('scale-out: two Loom instances, one PostgreSQL, one Mosquitto', () => {
  let database: TestDatabase;
  let a: Instance;
  let b: Instance;
  let edge: SparkplugEdgeNode;
  const id = randomBytes(4).toString('hex');
  const group = `scale${id}`;
  const edgeNode = 'edge';

  before(async () => {
    database = await createTestDatabase();
    const env = {
      LOOM_DATABASE_URL: database.url,
      LOOM_MQTT_URL: MQTT_URL,
      LOOM_SPARKPLUG_HOST_ID: `loom-${id}`,
      LOOM_SPARKPLUG_SHARED_GROUP: `loom${id}`,
      // Mosquitto is shared with other suites: take only this test's group, or our rebirth
      // requests would reach their edge nodes.
      LOOM_SPARKPLUG_GROUPS: group,
      LOOM_ADMIN_PASSWORD: ADMIN_PASSWORD,
      LOOM_INGEST_FLUSH_MS: '200',
      LOOM_LOG_LEVEL: 'warn',
    };
    a = await startInstance('A', env);
    b = await startInstance('B', env);
    await login(a);
    await login(b);
    const devices = loadGeneratorDevices(1, METRICS);
    const device = devices[0]!.id;
    await api(a, '/api/plant/import', {
      method: 'POST',
      body: JSON.stringify({
        equipment: [
          { id: 'ent', name: 'Enterprise', level: 'Enterprise' },
          { id: 'site', name: 'Site', level: 'Site', parent: 'ent' },
          { id: 'area', name: 'Area', level: 'Area', parent: 'site' },
          { id: 'line', name: 'Line', level: 'WorkCenter', parent: 'area' },
          { id: device, name: 'Load device', level: 'WorkUnit', parent: 'line' },
        ],
        signals: Array.from({ length: METRICS }, (_, m) => ({
          id: `${device}.m${m}`,
          equipment: device,
          dataType: 'number',
          source: { sparkplug: { group, edgeNode, device, metric: edgeMetricName(m) } },
        })),
      }),
    });
    // Both instances reload their tag map on NOTIFY; give them a moment.
    await sleep(500);
    edge = new SparkplugEdgeNode({
      url: MQTT_URL,
      groupId: group,
      edgeNodeId: edgeNode,
      primaryHostId: `loom-${id}`,
      devices,
      intervalMs: TICK_MS,
    });
  });

  after(async () => {
    await edge?.stop().catch(() => undefined);
    for (const i of [a, b]) {
      if (i && i.child.exitCode === null && i.child.signalCode === null) {
        i.child.kill('SIGTERM');
        await stopped(i.child);
      }
    }
    await database?.drop();
  });

  it('splits the load, stores every sample once, and survives one instance being killed', async () => {
    await edge.start();
    await edge.waitFor('online', 15_000);
    await sleep(3000);
    const statsBefore = await Promise.all(
      [a, b].map((i) => api<{ samplesStored: number; unmapped: number }>(i, '/api/telemetry/ingest')),
    );
    for (const [k, s] of statsBefore.entries()) {
      assert.ok(
        s.samplesStored > 0,
        `instance ${k === 0 ? 'A' : 'B'} took part of the load: ${JSON.stringify(s)}`,
      );
    }

    const killedAt = Date.now();
    a.child.kill('SIGKILL');
    await stopped(a.child);
    await sleep(3000);
    const bBefore = statsBefore[1]!.samplesStored;
    await edge.stop();
    await sleep(1000);
    const bAfter = await api<{ samplesStored: number }>(b, '/api/telemetry/ingest');
    assert.ok(bAfter.samplesStored > bBefore, 'B kept storing after A was killed');

    const dup = await database.db.query<{ total: number; distinct: number }>(
      `SELECT count(*)::int AS total, count(DISTINCT (c.signal_no, u.t))::int AS distinct
         FROM signal_chunks c CROSS JOIN LATERAL unnest(c.ts) AS u (t)`,
    );
    const twice = await database.db.query(
      `SELECT c.signal_no, u.t, array_agg(c.historical) AS historical, array_agg(u.rx) AS rx
         FROM signal_chunks c CROSS JOIN LATERAL unnest(c.ts, c.rx) AS u (t, rx)
        GROUP BY 1, 2 HAVING count(*) > 1 LIMIT 5`,
    );
    assert.equal(
      dup.rows[0]?.total,
      dup.rows[0]?.distinct,
      `no sample stored twice; kill at ${killedAt}; e.g. ${JSON.stringify(twice.rows)}`,
    );

    // Every tick of the edge is one timestamp per signal. Ticks missing anywhere must lie in the
    // window around the kill: samples A had received but not yet committed die with it (QoS 0).
    const ticks = await database.db.query<{ t: number; n: number }>(
      `SELECT u.t, count(*)::int AS n FROM signal_chunks c CROSS JOIN LATERAL unnest(c.ts) AS u (t)
        GROUP BY u.t ORDER BY u.t`,
    );
    const times = ticks.rows.map((r) => r.t);
    assert.ok(times.length > 0);
    const partial = ticks.rows.filter((r) => r.n !== METRICS && r.t < killedAt - 2000);
    assert.deepEqual(partial, [], 'before the kill, every tick has every signal');
    const gaps: { from: number; to: number }[] = [];
    for (let k = 1; k < times.length; k++) {
      if (times[k]! - times[k - 1]! > TICK_MS * 3) gaps.push({ from: times[k - 1]!, to: times[k]! });
    }
    for (const g of gaps) {
      assert.ok(
        g.from >= killedAt - 2000 && g.to <= killedAt + 2000,
        `a gap in the data away from the kill: ${JSON.stringify(g)} (kill at ${killedAt})`,
      );
    }
    const lastTick = times[times.length - 1]!;
    assert.ok(lastTick > killedAt + 2000, 'data after the kill was stored (by B)');

    const historyA = await fetch(`${b.url}/api/signals/load-01.m0/history?maxPoints=100000`, {
      headers: { cookie: b.cookie ?? '' },
    });
    assert.equal(historyA.status, 200);
    console.log(
      `# scale-out: A stored ${statsBefore[0]!.samplesStored}, B ${bAfter.samplesStored}; ` +
        `${times.length} ticks stored; gaps around the kill: ${JSON.stringify(gaps.map((g) => g.to - g.from))} ms`,
    );
  });
});

/** The load generator's metric names (src/sim/plant-physics.ts `LoadGenerator`). */
function edgeMetricName(m: number): string {
  return `Value ${String(m + 1).padStart(4, '0')}`;
}

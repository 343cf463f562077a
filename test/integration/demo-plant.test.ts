/**
 * The README's promise, end to end: `loom start` runs the simulated plant, `loom import
 * examples/plant.yaml` maps it, and then data flows from all three protocols — the Sparkplug oven,
 * the Modbus press and the two OPC UA PLCs (their own processes, over SignAndEncrypt with their
 * certificates trusted by Loom) — and a PackML command reaches an OPC UA PLC and is read back.
 * Killing Loom with SIGKILL takes the simulated PLCs' processes with it.
 *
 * The only test that runs `loom start` with the simulated plant: it uses the fixed demo ports
 * (1502, 4841, 4842), so the other process tests pass `--no-sim`.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, describe, it } from 'node:test';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { freePort, loomEnv, ROOT, runLoom } from '../support/loom-process.ts';

const ADMIN_PASSWORD = 'demo-plant-admin-pw';
const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

async function waitFor<T>(what: string, ms: number, probe: () => Promise<T | undefined>): Promise<T> {
  const until = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > until)
      assert.fail(`timed out waiting for ${what}${last instanceof Error ? `: ${last.message}` : ''}`);
    await sleep(250);
  }
}

/** True when something accepts TCP connections on 127.0.0.1:port. */
async function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

interface Latest {
  readonly signal: string;
  readonly value: unknown;
  readonly quality: string;
}

describe('the demo plant: loom start + loom import examples/plant.yaml', () => {
  let database: TestDatabase;
  let child: ChildProcess;
  let url: string;
  let cookie: string;
  let env: Record<string, string>;
  let out = '';

  const get = async (p: string): Promise<unknown> => {
    const res = await fetch(`${url}${p}`, { headers: { cookie } });
    if (res.status !== 200) assert.fail(`${p}: ${res.status} ${await res.text()}`);
    return res.json();
  };
  const latest = async (equipment: string): Promise<Map<string, Latest>> => {
    const body = (await get(`/api/equipment/${equipment}/signals/latest`)) as { signals: Latest[] };
    return new Map(body.signals.map((s) => [s.signal, s]));
  };
  /** A good value of every named signal, once they all have one. */
  const goodValues = (equipment: string, signals: string[]) =>
    waitFor(`good values of ${signals.join(', ')}`, 45_000, async () => {
      const l = await latest(equipment);
      return signals.every((s) => l.get(s)?.quality === 'good') ? l : undefined;
    });

  it('starts with the simulated plant, imports the example plant, and serves data from every protocol', async () => {
    for (const port of [1502, 4841, 4842]) {
      assert.equal(await listening(port), false, `demo port ${port} is taken by another process`);
    }
    database = await createTestDatabase();
    cleanups.push(() => database.drop());
    const dataDir = await mkdtemp(path.join(tmpdir(), 'loom-demo-'));
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    const port = await freePort();
    env = {
      LOOM_DATABASE_URL: database.url,
      LOOM_DATA_DIR: dataDir,
      LOOM_PORT: String(port),
      LOOM_ADMIN_PASSWORD: ADMIN_PASSWORD,
      LOOM_LOG_LEVEL: 'warn',
    };
    url = `http://127.0.0.1:${port}`;
    child = spawn(process.execPath, ['bin/loom.js', 'start'], {
      cwd: ROOT,
      env: loomEnv(env),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    cleanups.push(async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
    await waitFor('Loom is serving', 90_000, async () => {
      if (child.exitCode !== null) assert.fail(`loom exited:\n${out}`);
      return /Loom is serving on/.test(out) ? true : undefined;
    });
    const imported = await runLoom(['import', 'examples/plant.yaml'], env);
    assert.equal(imported.code, 0, imported.stderr + imported.stdout);

    const res = await fetch(`${url}/api/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'admin', password: ADMIN_PASSWORD }),
    });
    assert.equal(res.status, 200);
    cookie = /loom_session=[^;]+/.exec(res.headers.get('set-cookie') ?? '')![0];

    // Sparkplug (the edge node in Loom's process), Modbus (in Loom's process), OPC UA (own processes).
    await goodValues('paint-oven-1', ['paint-oven-1.temperature']);
    await goodValues('press-1', ['press-1.strokes', 'press-1.packml-state']);
    const press2 = await goodValues('press-2', [
      'press-2.strokes',
      'press-2.packml-state',
      'press-2.target-spm',
    ]);
    assert.equal(press2.get('press-2.packml-state')!.value, 6, 'the OPC UA press starts in Execute');
    const oven2 = await goodValues('paint-oven-2', ['paint-oven-2.temperature', 'paint-oven-2.setpoint']);
    assert.equal(typeof oven2.get('paint-oven-2.temperature')!.value, 'number');

    const { entries } = (await get('/api/connectivity')) as {
      entries: { kind: string; id: string; state: string; detail?: string }[];
    };
    for (const endpoint of ['opc.tcp://127.0.0.1:4841', 'opc.tcp://127.0.0.1:4842']) {
      const e = entries.find((x) => x.kind === 'opcua-endpoint' && x.id === endpoint);
      assert.equal(e?.state, 'online', JSON.stringify(e));
      assert.match(e.detail ?? '', /SignAndEncrypt/);
    }
  });

  it('stops the OPC UA press with a PackML command, confirmed by read-back, and sees it Stopped', async () => {
    const res = await fetch(`${url}/api/equipment/press-2/commands`, {
      method: 'POST',
      headers: { cookie, 'content-type': 'application/json' },
      body: JSON.stringify({ kind: 'stop', reason: 'demo test: die change' }),
    });
    const body = (await res.json()) as { outcome: string; state: { state: string; via: string } };
    assert.equal(res.status, 201, JSON.stringify(body));
    assert.equal(body.outcome, 'confirmed');
    assert.deepEqual([body.state.state, body.state.via], ['Execute', 'device']);
    await waitFor('press-2 Stopped (PackML 2)', 15_000, async () =>
      (await latest('press-2')).get('press-2.packml-state')?.value === 2 ? true : undefined,
    );
  });

  it('takes the simulated PLC processes down with Loom, even on SIGKILL', async () => {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
    await waitFor('the OPC UA PLCs to exit', 15_000, async () =>
      !(await listening(4841)) && !(await listening(4842)) ? true : undefined,
    );
  });
});

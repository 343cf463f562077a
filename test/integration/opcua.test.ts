/**
 * The OPC UA client connector against the simulated oven as a real OPC UA server process
 * (src/sim/opcua-machine-main.ts): Loom's shop floor storing its values in PostgreSQL over
 * SignAndEncrypt with a user login, writes with read-back, method calls and browsing; a network
 * stall through a TCP proxy (republish: nothing lost); an untrusted server certificate; a dead
 * endpoint beside a live one; and the server killed and restarted (a recorded gap).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { OpcUaConnector } from '../../src/adapters/opcua/opcua-connector.ts';
import { ConnectivityRegistry } from '../../src/app/telemetry/connectivity-registry.ts';
import type { MappedSignal } from '../../src/app/telemetry/sample-store.ts';
import type { ConnectivityEntry } from '../../src/app/telemetry/telemetry-ports.ts';
import { loadConfig } from '../../src/config/config.ts';
import { systemClock } from '../../src/domain/shared/clock.ts';
import { tagKey, type TagSample } from '../../src/domain/signal/sample.ts';
import { sourceTagOf, type SignalSource } from '../../src/domain/signal/signal.ts';
import { startShopFloor, type ShopFloor } from '../../src/main/shop-floor-feature.ts';
import { createTestApp, type TestApp } from '../support/app.ts';
import { freePort, ROOT } from '../support/loom-process.ts';
import { importExamplePlant, importSignals } from '../support/plant.ts';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.ts';

const USER = 'loom';
const PASSWORD = 'sim-password-7f3a';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function waitFor(
  what: string,
  cond: () => boolean | Promise<boolean>,
  timeoutMs = 20_000,
): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > until) assert.fail(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

interface Sim {
  readonly child: ChildProcess;
  readonly endpointUrl: string;
  readonly certificateFile: string;
}

/** The simulated oven as its own process; the same port and certificate store on a restart. */
async function startSim(port: number, pkiDir: string): Promise<Sim> {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'src/sim/opcua-machine-main.ts',
      ...['--kind', 'oven', '--id', 'oven-1', '--port', String(port), '--pki-dir', pkiDir],
      ...['--username', USER, '--password-stdin', '--no-anonymous'],
    ],
    { cwd: ROOT, stdio: ['pipe', 'pipe', 'inherit'] },
  );
  child.stdin.end(`${PASSWORD}\n`);
  const line = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve(out.slice(0, nl));
    });
    child.once('exit', (code) => reject(new Error(`the simulated oven exited with ${code}`)));
  });
  const info = JSON.parse(line) as { endpointUrl: string; certificateFile: string };
  return { child, endpointUrl: info.endpointUrl, certificateFile: info.certificateFile };
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
}

/** A connector on its own (no database), recording what it hands to the pipeline. */
interface Harness {
  readonly connector: OpcUaConnector;
  readonly connectivity: ConnectivityRegistry;
  readonly samples: TagSample[];
  readonly stale: { prefix: string; at: number; reason: string }[];
  entry(url: string): ConnectivityEntry | undefined;
  of(s: MappedSignal): TagSample[];
}

const harnesses: Harness[] = [];

function harness(
  pkiDir: string,
  opts: { securityMode?: 'None' | 'SignAndEncrypt'; password?: string } = {},
): Harness {
  const connectivity = new ConnectivityRegistry(systemClock);
  const samples: TagSample[] = [];
  const stale: Harness['stale'] = [];
  const mode = opts.securityMode ?? 'SignAndEncrypt';
  const connector = new OpcUaConnector({
    sink: {
      accept: (s) => void samples.push(...s),
      markStale: (prefix, at, reason) => void stale.push({ prefix, at, reason }),
    },
    connectivity,
    clock: systemClock,
    logger: pino({ level: process.env.LOOM_TEST_OPCUA_LOG ?? 'silent' }),
    defaults: {
      securityMode: mode,
      securityPolicy: mode === 'None' ? 'None' : 'Basic256Sha256',
      username: USER,
      password: opts.password ?? PASSWORD,
    },
    pkiDir,
    reconnectMs: 200,
    maxReconnectMs: 1000,
    requestTimeoutMs: 3000,
  });
  const h: Harness = {
    connector,
    connectivity,
    samples,
    stale,
    entry: (url) => connectivity.list().find((e) => e.kind === 'opcua-endpoint' && e.id === url),
    of: (s) => samples.filter((x) => x.tag === s.tag),
  };
  harnesses.push(h);
  return h;
}

let signalNo = 0;
function signal(
  endpoint: string,
  nodeId: string,
  extra: { samplingMs?: number; queueSize?: number } = {},
): MappedSignal {
  const source: SignalSource = {
    opcua: { endpoint, nodeId, samplingMs: extra.samplingMs ?? 100, queueSize: extra.queueSize ?? 10 },
  };
  const no = ++signalNo;
  return {
    no,
    id: `sig-${no}`,
    equipment: 'paint-oven-1',
    dataType: 'number',
    deadband: 0,
    tag: sourceTagOf(source),
    source,
  };
}

/** Whole runs of consecutive integers: the Ticks counter seen without a hole. */
/**
 * Values missing from a run of consecutive counter values. Arrival order is not compared: a
 * Republish may deliver an older message after newer ones (it is stored as history).
 */
function holes(arrived: readonly number[]): [number, number][] {
  const values = [...new Set(arrived)].sort((a, b) => a - b);
  const out: [number, number][] = [];
  for (let i = 1; i < values.length; i++) {
    if (values[i]! !== values[i - 1]! + 1) out.push([values[i - 1]!, values[i]!]);
  }
  return out;
}

describe('OPC UA connector against the simulated oven process', () => {
  const base = mkdtempSync(path.join(tmpdir(), 'loom-opcua-test-'));
  /** Loom's certificate store, trusting the simulated oven (shared by the trusting connectors). */
  const loomPki = path.join(base, 'loom-pki');
  const simPki = path.join(base, 'sim-pki');
  let port = 0;
  let sim: Sim;
  let t: TestApp;
  let shopFloor: ShopFloor;
  const logs: { level: number; msg: string; [k: string]: unknown }[] = [];
  const logText: string[] = [];
  let cookie: string;

  before(async () => {
    port = await freePort();
    sim = await startSim(port, simPki);
    t = await createTestApp();
    await importExamplePlant(t);
    cookie = await t.adminCookie();
  });

  after(async () => {
    for (const h of harnesses) await h.connector.stop();
    await shopFloor?.stop();
    await t?.close();
    if (sim) await kill(sim.child);
    rmSync(base, { recursive: true, force: true });
  });

  it('stores values through the pipeline into PostgreSQL over SignAndEncrypt with a user login', async () => {
    const config = loadConfig({
      env: {
        LOOM_DATA_DIR: base,
        LOOM_SPARKPLUG_ENABLED: 'false',
        LOOM_OPCUA_PKI_DIR: loomPki,
        LOOM_OPCUA_USERNAME: USER,
        LOOM_OPCUA_PASSWORD: PASSWORD,
      },
    });
    assert.equal(config.opcuaSecurityMode, 'SignAndEncrypt');
    const logger = pino(
      { level: 'debug' },
      {
        write: (line: string) => {
          logText.push(line);
          logs.push(JSON.parse(line) as (typeof logs)[number]);
        },
      },
    );
    shopFloor = await startShopFloor({
      config,
      telemetry: t.loom.telemetry,
      auth: t.loom.auth,
      clock: systemClock,
      logger,
    });
    // The demo's way: Loom trusts its own simulated servers.
    await shopFloor.opcua!.trustCertificate(sim.certificateFile);
    const src = (nodeId: string, samplingMs = 100, queueSize = 10) => ({
      opcua: { endpoint: sim.endpointUrl, nodeId, samplingMs, queueSize },
    });
    await importSignals(t, [
      {
        id: 'paint-oven-1.ua-temperature',
        equipment: 'paint-oven-1',
        dataType: 'number',
        source: src('ns=1;s=Temperature'),
      },
      {
        id: 'paint-oven-1.ua-setpoint',
        equipment: 'paint-oven-1',
        dataType: 'number',
        writable: true,
        source: src('ns=1;s=Setpoint'),
      },
      {
        id: 'paint-oven-1.ua-ticks',
        equipment: 'paint-oven-1',
        dataType: 'number',
        source: src('ns=1;s=Ticks', 0, 200),
      },
      {
        id: 'paint-oven-1.ua-door',
        equipment: 'paint-oven-1',
        dataType: 'boolean',
        source: src('ns=1;s=Door'),
      },
      {
        id: 'paint-oven-1.ua-recipe',
        equipment: 'paint-oven-1',
        dataType: 'string',
        source: src('nsu=urn:loom:sim:oven-1;s=Recipe/Id'),
      },
    ]);
    const entry = () => t.loom.telemetry.connectivity.list().find((e) => e.id === sim.endpointUrl);
    await waitFor('the session', () => entry()?.state === 'online');
    assert.match(entry()!.detail ?? '', /SignAndEncrypt Basic256Sha256, user loom/);

    const stored = async () => {
      const r = await t.database.db.query<{ id: string; n: number }>(
        `SELECT s.id, sum(c.n)::int AS n FROM signal_chunks c JOIN signals s USING (signal_no)
          WHERE s.id LIKE 'paint-oven-1.ua-%' GROUP BY s.id`,
      );
      return new Map(r.rows.map((row) => [row.id, row.n]));
    };
    await waitFor('every signal stored', async () => (await stored()).size === 5);
    await waitFor('ticks stored', async () => ((await stored()).get('paint-oven-1.ua-ticks') ?? 0) >= 10);
    const latest = await t.app.inject({
      method: 'GET',
      url: '/api/equipment/paint-oven-1/signals/latest',
      headers: { cookie },
    });
    const bySignal = new Map(
      latest
        .json<{ signals: { signal: string; value: unknown; quality: string }[] }>()
        .signals.map((s) => [s.signal, s]),
    );
    assert.equal(typeof bySignal.get('paint-oven-1.ua-temperature')?.value, 'number');
    assert.equal(typeof bySignal.get('paint-oven-1.ua-door')?.value, 'boolean');
    assert.equal(typeof bySignal.get('paint-oven-1.ua-recipe')?.value, 'string', 'nsu= NodeIds resolve');
    assert.equal(bySignal.get('paint-oven-1.ua-ticks')?.quality, 'good');
    assert.ok((entry()!.counters.notifications ?? 0) > 10);
    assert.ok(!logText.some((l) => l.includes(PASSWORD)), 'the password is never logged');
  });

  it('writes with read-back, refuses wrong types and out-of-range values clearly, reads and calls methods', async () => {
    const opcua = shopFloor.opcua!;
    assert.deepEqual(await opcua.write('paint-oven-1.ua-setpoint', 180), { ok: true, readBack: 180 });
    const tag = tagKey.opcua(sim.endpointUrl, 'ns=1;s=Setpoint');
    assert.deepEqual(await opcua.write(tag, 175.5), { ok: true, readBack: 175.5 });

    const outOfRange = await opcua.write('paint-oven-1.ua-setpoint', 500);
    assert.ok(!outOfRange.ok && outOfRange.code === 'LOOM_OPCUA_BAD_STATUS', JSON.stringify(outOfRange));
    assert.equal(outOfRange.status, 'BadOutOfRange');
    assert.match(outOfRange.message, /BadOutOfRange/);
    const wrongType = await opcua.write('paint-oven-1.ua-setpoint', 'hot');
    assert.ok(!wrongType.ok && wrongType.code === 'LOOM_OPCUA_TYPE_MISMATCH', JSON.stringify(wrongType));
    assert.match(wrongType.message, /the node is a Double/);
    const readOnly = await opcua.write('paint-oven-1.ua-ticks', 5);
    assert.ok(
      !readOnly.ok && readOnly.code === 'LOOM_OPCUA_BAD_STATUS' && /NotWritable/.test(readOnly.status ?? ''),
    );
    const unknown = await opcua.write('no-such-signal', 1);
    assert.ok(!unknown.ok && unknown.code === 'LOOM_OPCUA_UNKNOWN_TAG');

    const read = await opcua.read('paint-oven-1.ua-setpoint');
    assert.ok(read.ok && read.value === 175.5 && read.quality === 'good', JSON.stringify(read));

    const hold = await opcua.call(sim.endpointUrl, 'ns=1;s=PackML', 'ns=1;s=PackML/Hold', []);
    assert.deepEqual(hold, { ok: true, status: 'Good', outputs: [] });
    const args = await opcua.call(sim.endpointUrl, 'ns=1;s=PackML', 'ns=1;s=PackML/Unhold', [1]);
    assert.ok(!args.ok && args.code === 'LOOM_OPCUA_TYPE_MISMATCH', JSON.stringify(args));
    const elsewhere = await opcua.call('opc.tcp://127.0.0.1:1/nowhere', 'i=85', 'i=1', []);
    assert.ok(!elsewhere.ok && elsewhere.code === 'LOOM_OPCUA_UNKNOWN_ENDPOINT');
    await waitFor('Held', async () => {
      const s = await opcua.call(sim.endpointUrl, 'ns=1;s=PackML', 'ns=1;s=PackML/Unhold', []);
      return s.ok;
    });
    const entry = t.loom.telemetry.connectivity.list().find((e) => e.id === sim.endpointUrl)!;
    assert.equal(entry.counters.writes, 4, 'writes refused before sending are not sent');
    assert.equal(entry.counters.writeErrors, 3);
  });

  it('browses the address space for engineers, with clear errors', async () => {
    const engineer = await t.userWithRoles('eng-opcua', ['engineer']);
    const operator = await t.userWithRoles('op-opcua', ['operator']);
    const browse = (query: string, who = engineer.cookie) =>
      t.app.inject({ method: 'GET', url: `/api/opcua/browse?${query}`, headers: { cookie: who } });
    const endpoint = encodeURIComponent(sim.endpointUrl);
    const root = await browse(`endpoint=${endpoint}`);
    assert.equal(root.statusCode, 200, root.body);
    const oven = root
      .json<{ children: { nodeId: string; displayName: string; nodeClass: string }[] }>()
      .children.find((c) => c.displayName === 'oven-1');
    assert.deepEqual(oven && { nodeId: oven.nodeId, nodeClass: oven.nodeClass }, {
      nodeId: 'ns=1;s=oven-1',
      nodeClass: 'Object',
    });
    const inside = await browse(`endpoint=${endpoint}&nodeId=${encodeURIComponent('ns=1;s=oven-1')}`);
    const children = inside.json<{
      children: { browseName: string; dataType?: string; writable?: boolean }[];
    }>().children;
    assert.deepEqual(
      children.find((c) => c.browseName === '1:Setpoint'),
      {
        nodeId: 'ns=1;s=Setpoint',
        browseName: '1:Setpoint',
        displayName: 'Setpoint',
        nodeClass: 'Variable',
        dataType: 'Double',
        writable: true,
      },
    );
    assert.equal(children.find((c) => c.browseName === '1:Temperature')?.writable, false);

    assert.equal((await browse(`endpoint=${endpoint}`, operator.cookie)).statusCode, 403);
    const unknown = await browse(`endpoint=${encodeURIComponent('opc.tcp://10.0.0.1:4840')}`);
    assert.equal(unknown.statusCode, 404);
    assert.equal(unknown.json<{ code: string }>().code, 'LOOM_OPCUA_UNKNOWN_ENDPOINT');
    const missing = await browse(`endpoint=${endpoint}&nodeId=${encodeURIComponent('ns=1;s=NoSuchNode')}`);
    assert.equal(missing.json<{ code: string }>().code, 'LOOM_OPCUA_NODE_NOT_FOUND', missing.body);
    const malformed = await browse(`endpoint=http://x&nodeId=Temperature`);
    assert.equal(malformed.statusCode, 400);
    const issues = malformed.json<{ issues: { path: string; message: string }[] }>().issues;
    // Each problem names its field (the query parameter) and the fix.
    const at = (path: string) => issues.find((i) => i.path === path)?.message ?? JSON.stringify(issues);
    assert.match(at('querystring.endpoint'), /must be an OPC UA endpoint URL/);
    assert.match(at('querystring.nodeId'), /must be a NodeId like/);
  });

  it('loses no Ticks value through a 10-second network stall, nor through a connection reset (republish)', async () => {
    const proxy: TcpProxy = await startTcpProxy({ targetPort: port });
    try {
      const h = harness(loomPki);
      const url = `opc.tcp://127.0.0.1:${proxy.port}`;
      const ticks = signal(url, 'ns=1;s=Ticks', { samplingMs: 0, queueSize: 1000 });
      h.connector.setSignals([ticks]);
      await waitFor('ticks', () => h.of(ticks).length >= 10);
      proxy.pause();
      const pausedAt = h.of(ticks).length;
      const pauseStart = Date.now();
      await waitFor('stale', () => h.entry(url)?.state === 'stale', 15_000);
      await sleep(Math.max(0, 10_000 - (Date.now() - pauseStart)));
      proxy.resume();
      await waitFor('online again', () => h.entry(url)?.state === 'online');
      await waitFor('the stall caught up', () => h.of(ticks).length >= pausedAt + 100, 15_000);
      assert.deepEqual(holes(h.of(ticks).map((s) => s.value as number)), [], 'every value, in order');

      // A short outage: what was in flight dies with the connection; the session is reactivated
      // and Republish returns the notifications the server still holds unacknowledged.
      proxy.pause();
      await sleep(1500);
      const beforeReset = h.of(ticks).length;
      proxy.dropAll();
      proxy.resume();
      await waitFor('reconnected', () => (h.entry(url)?.counters.reconnects ?? 0) >= 1, 15_000);
      await waitFor('caught up', () => h.of(ticks).length >= beforeReset + 40, 15_000);
      // What Republish returns can arrive after newer notifications (a loaded host answers the
      // Republish late): it is history then, and fills the hole when it comes. Wait for that
      // rather than assert at the first 40 new values; a message that never comes fails here.
      await waitFor(
        'the republished values',
        () => holes(h.of(ticks).map((s) => s.value as number)).length === 0,
        15_000,
      ).catch((e: Error) => {
        // Say what is missing and what the endpoint counted, for a failure seen only on CI.
        const missing = JSON.stringify(holes(h.of(ticks).map((s) => s.value as number)));
        throw new Error(`${e.message}: holes ${missing}; ${JSON.stringify(h.entry(url))}`);
      });
      assert.match(
        h.entry(url)?.detail ?? '',
        /session reactivated, notifications republished, nothing lost/,
      );
      assert.deepEqual(holes(h.of(ticks).map((s) => s.value as number)), [], 'every value, in order');
      assert.equal(h.entry(url)?.counters.gaps, undefined, 'no gap');
      assert.equal(h.entry(url)?.counters.lostMessages, undefined);
      assert.deepEqual(h.stale, []);
      await h.connector.stop();
    } finally {
      await proxy.close();
    }
  });

  it('refuses an untrusted server certificate, reports it with its thumbprint, and stores nothing until it is trusted', async () => {
    const freshPki = path.join(base, 'fresh-pki');
    const h = harness(freshPki);
    const temperature = signal(sim.endpointUrl, 'ns=1;s=Temperature');
    h.connector.setSignals([temperature]);
    await waitFor('the refusal', () => (h.entry(sim.endpointUrl)?.counters.untrustedCertificate ?? 0) >= 1);
    const e = h.entry(sim.endpointUrl)!;
    assert.equal(e.state, 'offline');
    const thumbprint = /thumbprint ([0-9a-f]{40})/.exec(e.detail ?? '')?.[1];
    assert.ok(thumbprint, e.detail);
    const rejected = readdirSync(path.join(freshPki, 'rejected')).find((f) => f.includes(`[${thumbprint}]`));
    assert.ok(rejected, 'the certificate is in the rejected folder');
    assert.match(e.detail ?? '', /move .*rejected.* to .*trusted\/certs/);
    assert.deepEqual(h.samples, [], 'nothing from an untrusted server');
    const write = await h.connector.write(temperature, 1);
    assert.ok(!write.ok && write.code === 'LOOM_OPCUA_DISCONNECTED');

    // What the detail tells an operator to do.
    renameSync(path.join(freshPki, 'rejected', rejected), path.join(freshPki, 'trusted/certs', rejected));
    await waitFor('trusted now', () => h.entry(sim.endpointUrl)?.state === 'online');
    await waitFor('data', () => h.of(temperature).length > 0);
    await h.connector.stop();
  });

  it('keeps one endpoint going while another is dead, and fails requests to the dead one at once', async () => {
    const h = harness(loomPki);
    const deadUrl = `opc.tcp://127.0.0.1:${await freePort()}`;
    const live = signal(sim.endpointUrl, 'ns=1;s=Temperature');
    const dead = signal(deadUrl, 'ns=1;s=Temperature');
    h.connector.setSignals([dead, live]);
    await waitFor('live data', () => h.of(live).length >= 3);
    await waitFor('the dead one reported', () => h.entry(deadUrl)?.state === 'offline');
    assert.ok((h.entry(deadUrl)?.counters.connectFailures ?? 0) >= 1);
    const t0 = performance.now();
    const write = await h.connector.write(dead, 1);
    assert.ok(!write.ok && write.code === 'LOOM_OPCUA_DISCONNECTED');
    assert.ok(performance.now() - t0 < 100, 'nothing is queued or waited for');
    assert.deepEqual(h.of(dead), []);

    // A wrong password is reported once, by itself, and does not stop the others either.
    const wrong = harness(loomPki, { password: 'not-the-password' });
    wrong.connector.setSignals([live]);
    await waitFor('login refused', () => (wrong.entry(sim.endpointUrl)?.counters.loginRefused ?? 0) >= 1);
    assert.match(wrong.entry(sim.endpointUrl)?.detail ?? '', /refused the login of user loom/);
    await wrong.connector.stop();
    await h.connector.stop();
  });

  it('adds and removes monitored items on a tag-map change, in the same session', async () => {
    const h = harness(loomPki);
    const url = sim.endpointUrl;
    const ticks = signal(url, 'ns=1;s=Ticks', { samplingMs: 0, queueSize: 100 });
    const temperature = signal(url, 'ns=1;s=Temperature');
    h.connector.setSignals([ticks]);
    await waitFor('ticks', () => h.of(ticks).length >= 3);
    const since = h.entry(url)!.since;
    h.connector.setSignals([ticks, temperature]);
    await waitFor('temperature', () => h.of(temperature).length >= 1);
    h.connector.setSignals([temperature]);
    await sleep(300);
    const n = h.of(ticks).length;
    await sleep(1000);
    assert.equal(h.of(ticks).length, n, 'the removed item sends nothing more');
    assert.equal(h.entry(url)!.state, 'online');
    assert.equal(h.entry(url)!.since, since, 'online throughout: the same session');
    assert.equal(h.entry(url)!.counters.reconnects, undefined);
    await h.connector.stop();
  });

  it('records a gap when the server is killed and restarted, marks the tags stale, and resumes by itself', async () => {
    const entry = () => t.loom.telemetry.connectivity.list().find((e) => e.id === sim.endpointUrl);
    const ticksCount = async (since: Date) =>
      (
        await t.database.db.query<{ n: number }>(
          `SELECT coalesce(sum(c.n), 0)::int AS n FROM signal_chunks c JOIN signals s USING (signal_no)
            WHERE s.id = 'paint-oven-1.ua-ticks' AND c.t_last >= $1`,
          [since],
        )
      ).rows[0]!.n;
    await kill(sim.child);
    // Taken once the process is gone: a message may still arrive while the kill is on its way.
    const killedAt = new Date();
    await waitFor('the loss noticed', () => entry()?.state !== 'online');
    sim = await startSim(port, simPki);
    await waitFor('the gap recorded', () => entry()?.lastGap !== undefined, 60_000);
    const e = entry()!;
    assert.equal(e.state, 'online');
    assert.equal(e.counters.gaps, 1);
    assert.ok(
      e.lastGap!.from <= killedAt.getTime() && e.lastGap!.to > killedAt.getTime(),
      JSON.stringify(e.lastGap),
    );
    assert.match(e.lastGap!.reason, /server restarted/);
    assert.ok(
      logs.filter((l) => l.msg.startsWith('OPC UA data gap')).length === 1,
      'the gap is logged once, with from and to',
    );
    await waitFor('data again', async () => (await ticksCount(new Date(e.lastGap!.to))) >= 5);
    const stale = await t.database.db.query<{ id: string; reason: string }>(
      `SELECT s.id, st.reason FROM signal_stale st JOIN signals s USING (signal_no) WHERE s.id LIKE 'paint-oven-1.ua-%'`,
    );
    assert.equal(stale.rows.length, 5, 'every tag of the endpoint was marked stale from the loss');
    assert.match(stale.rows[0]!.reason, /subscription lost/);
    const connectivity = await t.app.inject({ method: 'GET', url: '/api/connectivity', headers: { cookie } });
    const shown = connectivity
      .json<{ entries: ConnectivityEntry[] }>()
      .entries.find((x) => x.id === sim.endpointUrl);
    assert.deepEqual(shown?.lastGap, e.lastGap);
    assert.ok(
      logs.filter((l) => l.msg === 'OPC UA connection lost; reconnecting').length === 1,
      'the loss is logged once, not per retry',
    );
  });
});

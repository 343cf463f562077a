/**
 * The Modbus TCP poller against the simulated press: as a separate process (src/sim/modbus-device-main.ts)
 * for decoding, writes and a device that dies and comes back; in-process for injected faults
 * (exception code, no answer, wrong transaction id). Protocol only: no database.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { after, describe, it } from 'node:test';
import pino from 'pino';
import { ModbusTcpPoller } from '../../src/adapters/modbus/modbus-tcp-poller.ts';
import type { MappedSignal } from '../../src/app/telemetry/sample-store.ts';
import { ConnectivityRegistry } from '../../src/app/telemetry/connectivity-registry.ts';
import { systemClock } from '../../src/domain/shared/clock.ts';
import type { TagSample } from '../../src/domain/signal/sample.ts';
import { sourceTagOf, type ModbusRegisterSource } from '../../src/domain/signal/signal.ts';
import { startModbusDevice, type SimulatedModbusDevice } from '../../src/sim/modbus-device.ts';
import { freePort, ROOT } from '../support/loom-process.ts';

const SKIP =
  process.env.LOOM_TEST_PG === 'server'
    ? 'needs no PostgreSQL; already run in the embedded pass (LOOM_TEST_PG=server)'
    : false;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function waitFor(what: string, cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > until) assert.fail(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

let signalNo = 0;
function signal(
  port: number,
  m: Partial<ModbusRegisterSource> & Pick<ModbusRegisterSource, 'table' | 'address' | 'type'>,
): MappedSignal {
  const source = {
    modbus: {
      host: '127.0.0.1',
      port,
      unitId: 1,
      wordOrder: 'big',
      byteOrder: 'big',
      scale: 1,
      offset: 0,
      pollMs: 100,
      ...m,
    } satisfies ModbusRegisterSource,
  };
  const no = ++signalNo;
  return {
    no,
    id: `sig-${no}`,
    equipment: 'press-1',
    dataType: m.type === 'bool' ? 'boolean' : 'number',
    deadband: 0,
    tag: sourceTagOf(source),
    source,
  };
}

interface Harness {
  readonly poller: ModbusTcpPoller;
  readonly connectivity: ConnectivityRegistry;
  readonly samples: TagSample[];
  readonly logs: { fault?: string; device?: string; msg: string; level: number }[];
  latest(s: MappedSignal): TagSample | undefined;
  of(s: MappedSignal): TagSample[];
  counter(port: number, name: string): number;
  state(port: number): string | undefined;
}

const harnesses: Harness[] = [];
after(async () => {
  for (const h of harnesses) await h.poller.stop();
});

function harness(opts: { timeoutMs?: number; reconnectMs?: number; maxReconnectMs?: number } = {}): Harness {
  const connectivity = new ConnectivityRegistry(systemClock);
  const samples: TagSample[] = [];
  const logs: Harness['logs'] = [];
  const logger = pino(
    { level: 'info' },
    { write: (line: string) => void logs.push(JSON.parse(line) as Harness['logs'][number]) },
  );
  const poller = new ModbusTcpPoller({
    sink: { accept: (s) => void samples.push(...s), markStale: () => undefined },
    connectivity,
    clock: systemClock,
    logger,
    timeoutMs: opts.timeoutMs ?? 500,
    reconnectMs: opts.reconnectMs ?? 100,
    ...(opts.maxReconnectMs === undefined ? {} : { maxReconnectMs: opts.maxReconnectMs }),
  });
  const entry = (port: number) =>
    connectivity.list().find((e) => e.kind === 'modbus-device' && e.id === `127.0.0.1:${port}/1`);
  const h: Harness = {
    poller,
    connectivity,
    samples,
    logs,
    of: (s) => samples.filter((x) => x.tag === s.tag),
    latest: (s) => samples.findLast((x) => x.tag === s.tag),
    counter: (port, name) => entry(port)?.counters[name] ?? 0,
    state: (port) => entry(port)?.state,
  };
  harnesses.push(h);
  return h;
}

async function spawnDevice(port: number): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'src/sim/modbus-device-main.ts', '--port', String(port), '--spm', '120'],
    {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes('listening')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`modbus device exited with ${code}`)));
  });
  return child;
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
}

describe('Modbus TCP poller against the simulated press process', { skip: SKIP }, () => {
  let port = 0;
  let child: ChildProcess | undefined;
  after(async () => {
    if (child) await kill(child);
  });

  it('starts the press as its own process', async () => {
    port = await freePort();
    child = await spawnDevice(port);
  });

  it('decodes every type, both word orders, both byte orders, scale and offset', async () => {
    const h = harness();
    const s = {
      int16: signal(port, { table: 'holding', address: 20, type: 'int16' }),
      uint16: signal(port, { table: 'holding', address: 21, type: 'uint16' }),
      int32: signal(port, { table: 'holding', address: 22, type: 'int32' }),
      int32Little: signal(port, { table: 'holding', address: 24, type: 'int32', wordOrder: 'little' }),
      uint32Badc: signal(port, { table: 'holding', address: 26, type: 'uint32', byteOrder: 'little' }),
      floatDcba: signal(port, {
        table: 'holding',
        address: 28,
        type: 'float32',
        wordOrder: 'little',
        byteOrder: 'little',
      }),
      scaled: signal(port, { table: 'holding', address: 30, type: 'uint16', scale: 0.1, offset: -20 }),
      strokes: signal(port, { table: 'holding', address: 0, type: 'uint32' }),
      strokesLittle: signal(port, { table: 'holding', address: 10, type: 'uint32', wordOrder: 'little' }),
      cycle: signal(port, { table: 'holding', address: 2, type: 'float32' }),
      cycleLittle: signal(port, { table: 'holding', address: 12, type: 'float32', wordOrder: 'little' }),
      pressure: signal(port, { table: 'input', address: 4, type: 'int16', scale: 0.1 }),
      state: signal(port, { table: 'input', address: 5, type: 'uint16' }),
      running: signal(port, { table: 'coil', address: 0, type: 'bool' }),
      runningInput: signal(port, { table: 'discrete', address: 0, type: 'bool' }),
    };
    h.poller.setSignals(Object.values(s));
    await waitFor('a stroke', () => ((h.latest(s.strokes)?.value as number | undefined) ?? 0) >= 1);
    await waitFor('every signal', () => Object.values(s).every((x) => h.latest(x)?.quality === 'good'));
    const v = (x: MappedSignal) => h.latest(x)!.value;
    assert.equal(v(s.int16), -1234);
    assert.equal(v(s.uint16), 54321);
    assert.equal(v(s.int32), -123456);
    assert.equal(v(s.int32Little), -123456);
    assert.equal(v(s.uint32Badc), 3_000_000_000);
    assert.equal(v(s.floatDcba), -2.5);
    assert.ok(Math.abs((v(s.scaled) as number) - 30) < 1e-9);
    assert.equal(v(s.strokesLittle), v(s.strokes), 'both word orders read the same counter in one block');
    assert.equal(v(s.cycleLittle), v(s.cycle));
    assert.ok(Math.abs((v(s.cycle) as number) - 0.5) < 0.05, `cycle time ${String(v(s.cycle))} s at 120/min`);
    assert.ok((v(s.pressure) as number) >= 0 && (v(s.pressure) as number) <= 260);
    assert.ok([0, 1, 2].includes(v(s.state) as number));
    assert.equal(typeof v(s.running), 'boolean');
    assert.equal(h.state(port), 'online');
    assert.ok(h.counter(port, 'polls') > 0);
    await h.poller.stop();
  });

  it('writes, reads back, and refuses what the device or the map cannot take', async () => {
    const h = harness();
    const target = signal(port, { table: 'holding', address: 6, type: 'uint16' });
    const scratch32 = signal(port, { table: 'holding', address: 40, type: 'int32', wordOrder: 'little' });
    const scratchFloat = signal(port, {
      table: 'holding',
      address: 42,
      type: 'float32',
      byteOrder: 'little',
      scale: 2,
    });
    const scratchCoil = signal(port, { table: 'coil', address: 1, type: 'bool' });
    const pressure = signal(port, { table: 'input', address: 4, type: 'int16', scale: 0.1 });
    h.poller.setSignals([target, scratch32, scratchFloat, scratchCoil, pressure]);
    await waitFor('connected', () => h.state(port) === 'online');

    assert.deepEqual(await h.poller.write(target, 60), { ok: true, readBack: 60 });
    assert.deepEqual(await h.poller.write(scratch32.tag, -7_654_321), { ok: true, readBack: -7_654_321 });
    assert.deepEqual(await h.poller.write(scratchFloat, 12.5), { ok: true, readBack: 12.5 });
    assert.deepEqual(await h.poller.write(scratchCoil, true), { ok: true, readBack: true });

    const refused = await h.poller.write(target, 200);
    assert.equal(refused.ok, false);
    assert.ok(
      !refused.ok && refused.code === 'LOOM_MODBUS_EXCEPTION' && refused.exceptionCode === 3,
      JSON.stringify(refused),
    );
    const fraction = await h.poller.write(target, 1.5);
    assert.ok(!fraction.ok && fraction.code === 'LOOM_MODBUS_TYPE_MISMATCH');
    const readOnly = await h.poller.write(pressure, 1);
    assert.ok(!readOnly.ok && readOnly.code === 'LOOM_MODBUS_READ_ONLY');
    const unknown = await h.poller.write('modbus:nowhere|holding:0:uint16', 1);
    assert.ok(!unknown.ok && unknown.code === 'LOOM_MODBUS_UNKNOWN_TAG');
    assert.equal(h.counter(port, 'writes'), 5, 'writes refused before sending are not sent');
    await waitFor('the read-back in the samples', () => h.of(target).some((x) => x.value === 60));
    assert.deepEqual(await h.poller.write(target, 120), { ok: true, readBack: 120 });
    await h.poller.stop();
  });

  it('reconnects when the device process is killed and restarted, and data resumes', async () => {
    const h = harness({ reconnectMs: 100 });
    const strokes = signal(port, { table: 'holding', address: 0, type: 'uint32' });
    h.poller.setSignals([strokes]);
    await waitFor('first data', () => h.latest(strokes)?.quality === 'good');
    await kill(child!);
    await waitFor('offline', () => h.state(port) === 'offline' || h.state(port) === 'connecting');
    await waitFor('one bad sample', () => h.latest(strokes)?.quality === 'bad');
    const dead = await h.poller.write(strokes, 1);
    assert.ok(!dead.ok && dead.code === 'LOOM_MODBUS_DISCONNECTED', JSON.stringify(dead));
    await sleep(500);
    assert.equal(
      h.of(strokes).filter((x) => x.quality === 'bad').length,
      1,
      'bad quality is reported once per outage, not once per attempt',
    );
    const before = h.samples.length;
    child = await spawnDevice(port);
    await waitFor('data again', () =>
      h.samples.slice(before).some((x) => x.tag === strokes.tag && x.quality === 'good'),
    );
    assert.equal(h.state(port), 'online');
    assert.ok(h.counter(port, 'reconnects') >= 1);
    assert.ok(h.counter(port, 'connectFailures') >= 1);
    assert.equal(h.logs.filter((l) => l.fault === 'connect').length, 1, 'unreachable is logged once');
    await h.poller.stop();
  });
});

describe('Modbus TCP poller faults', { skip: SKIP }, () => {
  const devices: SimulatedModbusDevice[] = [];
  after(async () => {
    for (const d of devices) await d.stop();
  });
  const device = async (): Promise<SimulatedModbusDevice> => {
    const d = await startModbusDevice();
    devices.push(d);
    return d;
  };

  it('counts an exception code on every poll, logs it once, and keeps reading the other blocks', async () => {
    const d = await device();
    d.faults.exceptionAt('holding', 40, 4);
    const h = harness();
    const failing = signal(d.port, { table: 'holding', address: 40, type: 'uint16', pollMs: 50 });
    const healthy = signal(d.port, { table: 'holding', address: 20, type: 'int16', pollMs: 50 });
    h.poller.setSignals([failing, healthy]);
    await waitFor('five exceptions', () => h.counter(d.port, 'exceptions') >= 5);
    assert.equal(h.logs.filter((l) => l.fault === 'exception').length, 1);
    assert.match(h.logs.find((l) => l.fault === 'exception')!.msg, /exception 4 \(server device failure\)/);
    assert.equal(h.logs.find((l) => l.fault === 'exception')!.device, `127.0.0.1:${d.port}/1`);
    assert.deepEqual(
      h.of(failing).map((x) => [x.value, x.quality]),
      [[null, 'bad']],
    );
    assert.ok(h.of(healthy).filter((x) => x.quality === 'good').length >= 5);
    assert.equal(h.state(d.port), 'online', 'a device that answers with an exception is still talking');
    d.faults.clearExceptions();
    await waitFor('the register back', () => h.latest(failing)?.quality === 'good');
    await h.poller.stop();
  });

  it('times out a silent device without slowing a healthy one', async () => {
    const silent = await device();
    const healthy = await device();
    silent.faults.stall(true);
    const h = harness({ timeoutMs: 300 });
    const a = signal(silent.port, { table: 'holding', address: 0, type: 'uint32', pollMs: 50 });
    const b = signal(healthy.port, { table: 'holding', address: 0, type: 'uint32', pollMs: 50 });
    h.poller.setSignals([a, b]);
    await waitFor('the healthy device', () => h.counter(healthy.port, 'polls') > 0);
    const polls0 = h.counter(healthy.port, 'polls');
    await sleep(1500);
    const rate = (h.counter(healthy.port, 'polls') - polls0) / 1.5;
    assert.ok(rate >= 14, `healthy device polled ${rate.toFixed(1)}/s; 20/s configured`);
    assert.ok(h.counter(silent.port, 'timeouts') >= 3);
    assert.ok(['stale', 'offline', 'connecting'].includes(h.state(silent.port) ?? ''), h.state(silent.port));
    assert.equal(h.logs.filter((l) => l.fault === 'timeout').length, 1);
    assert.deepEqual(
      h.of(a).map((x) => x.quality),
      ['bad'],
    );
    silent.faults.stall(false);
    await waitFor('the silent device back', () => h.latest(a)?.quality === 'good');
    await h.poller.stop();
  });

  it('counts replies with a wrong transaction id and uses none of them', async () => {
    const d = await device();
    const h = harness({ timeoutMs: 200 });
    const strokes = signal(d.port, { table: 'holding', address: 20, type: 'int16', pollMs: 50 });
    h.poller.setSignals([strokes]);
    await waitFor('data', () => h.latest(strokes)?.quality === 'good');
    d.faults.wrongTransactionId(true);
    await waitFor('bad transactions', () => h.counter(d.port, 'badTransaction') >= 2);
    await waitFor('the failed read reported', () => h.latest(strokes)?.quality === 'bad');
    const good = h.of(strokes).filter((x) => x.quality === 'good').length;
    await sleep(300);
    assert.equal(
      h.of(strokes).filter((x) => x.quality === 'good').length,
      good,
      'no reply with a wrong id is used',
    );
    assert.equal(h.logs.filter((l) => l.fault === 'badTransaction').length, 1);
    d.faults.wrongTransactionId(false);
    await waitFor('data again', () => h.latest(strokes)?.quality === 'good');
    await h.poller.stop();
  });

  it('keeps nothing of a failed connection attempt: a device offline for days leaks no listener or socket', async () => {
    // Session 11: every attempt passed the poller's AbortSignal to the socket, and node only
    // removes that listener when the signal aborts, so each retry left one behind, with its socket.
    const warnings: string[] = [];
    const onWarning = (w: Error) => void warnings.push(`${w.name}: ${w.message}`);
    process.on('warning', onWarning);
    try {
      const h = harness({ reconnectMs: 1, maxReconnectMs: 2, timeoutMs: 200 });
      const deadPort = await freePort();
      h.poller.setSignals([signal(deadPort, { table: 'holding', address: 0, type: 'uint16', pollMs: 50 })]);
      await waitFor('30 failed attempts', () => h.counter(deadPort, 'connectFailures') >= 30);
      await h.poller.stop();
      await sleep(50);
      assert.deepEqual(
        warnings.filter((w) => w.startsWith('MaxListenersExceededWarning')),
        [],
        'one abort listener per attempt was left on the poller signal',
      );
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('stop() closes every connection and timer, also of a device that is reconnecting', async () => {
    const d = await device();
    const h = harness({ reconnectMs: 50 });
    const deadPort = await freePort();
    const live = signal(d.port, { table: 'holding', address: 0, type: 'uint32', pollMs: 50 });
    const dead = signal(deadPort, { table: 'holding', address: 0, type: 'uint32', pollMs: 50 });
    const resources = (): number =>
      process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap' || r === 'Timeout').length;
    const baseline = resources();
    h.poller.setSignals([live, dead]);
    await waitFor('data', () => h.latest(live)?.quality === 'good');
    assert.equal(d.connections, 1);
    h.poller.setSignals([live]);
    await waitFor('removed device offline', () => h.state(deadPort) === 'offline');
    await h.poller.stop();
    const count = h.samples.length;
    await waitFor('the server side closed', () => d.connections === 0, 2000);
    await sleep(200);
    assert.equal(h.samples.length, count, 'no sample after stop()');
    assert.ok(resources() <= baseline, `resources ${resources()} > ${baseline} before polling`);
  });
});

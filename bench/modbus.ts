/**
 * Modbus registers/s polled across 20 devices (issue #6): Loom's ModbusTcpPoller (decode, map to
 * tags, hand to the ingest sink, connection health) against a bare jsmodbus client reading the same
 * blocks at the same period, in the same run. The simulated presses run in a child process.
 *
 *   node --import tsx bench/modbus.ts   (LOOM_BENCH_MODBUS_DEVICES=20, _REGISTERS=50, _POLL_MS=50, _WINDOW_S=10)
 */
import { spawn } from 'node:child_process';
import { Socket } from 'node:net';
import { createInterface } from 'node:readline';
import pino from 'pino';
import jsmodbus from 'jsmodbus';
import { ModbusTcpPoller } from '../src/adapters/modbus/modbus-tcp-poller.ts';
import type { MappedSignal } from '../src/app/telemetry/sample-store.ts';
import { ConnectivityRegistry } from '../src/app/telemetry/connectivity-registry.ts';
import { systemClock } from '../src/domain/shared/clock.ts';
import { sourceTagOf, type SignalSource } from '../src/domain/signal/signal.ts';
import { median, percentile } from './load.ts';
import { fmt, table } from './markdown.ts';

const DEVICES = Number(process.env.LOOM_BENCH_MODBUS_DEVICES ?? 20);
const REGISTERS = Number(process.env.LOOM_BENCH_MODBUS_REGISTERS ?? 50);
const POLL_MS = Number(process.env.LOOM_BENCH_MODBUS_POLL_MS ?? 50);
const WINDOW_S = Number(process.env.LOOM_BENCH_MODBUS_WINDOW_S ?? 10);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const child = spawn(process.execPath, ['--import', 'tsx', 'bench/modbus-devices-child.ts', String(DEVICES)], {
  stdio: ['ignore', 'pipe', 'inherit'],
});
const ports = await new Promise<number[]>((resolve) => {
  createInterface({ input: child.stdout }).once('line', (l) => resolve(JSON.parse(l) as number[]));
});

try {
  // Loom: one signal per register, uint16, holding 0..REGISTERS-1 on every device.
  let samples = 0;
  const signals: MappedSignal[] = [];
  for (const port of ports) {
    for (let a = 0; a < REGISTERS; a++) {
      const source: SignalSource = {
        modbus: {
          host: '127.0.0.1',
          port,
          unitId: 1,
          table: 'holding',
          address: a,
          type: 'uint16',
          wordOrder: 'big',
          byteOrder: 'big',
          scale: 1,
          offset: 0,
          pollMs: POLL_MS,
        },
      };
      signals.push({
        no: signals.length + 1,
        id: `d${port}.r${a}`,
        equipment: 'e',
        dataType: 'number',
        deadband: 0,
        tag: sourceTagOf(source),
        source,
      });
    }
  }
  const poller = new ModbusTcpPoller({
    sink: { accept: (s) => void (samples += s.length), markStale: () => undefined },
    connectivity: new ConnectivityRegistry(systemClock),
    clock: systemClock,
    logger: pino({ level: 'silent' }),
  });
  poller.setSignals(signals);
  await sleep(2000);
  const loomWindows: number[] = [];
  for (let w = 0; w < 3; w++) {
    const start = samples;
    await sleep(WINDOW_S * 1000);
    loomWindows.push((samples - start) / WINDOW_S);
  }
  await poller.stop();

  // Baseline: a bare jsmodbus client per device, the same block every POLL_MS.
  let registers = 0;
  const rtts: number[] = [];
  let running = true;
  const loops = ports.map(async (port) => {
    const socket = new Socket();
    const client = new jsmodbus.client.TCP(socket, 1, 2000);
    await new Promise<void>((resolve) => socket.connect({ host: '127.0.0.1', port }, () => resolve()));
    let next = performance.now();
    while (running) {
      const t0 = performance.now();
      await client.readHoldingRegisters(0, REGISTERS);
      rtts.push(performance.now() - t0);
      registers += REGISTERS;
      next += POLL_MS;
      await sleep(Math.max(0, next - performance.now()));
    }
    socket.destroy();
  });
  await sleep(2000);
  const bareWindows: number[] = [];
  for (let w = 0; w < 3; w++) {
    const start = registers;
    await sleep(WINDOW_S * 1000);
    bareWindows.push((registers - start) / WINDOW_S);
  }
  running = false;
  await Promise.all(loops);

  const offered = (DEVICES * REGISTERS * 1000) / POLL_MS;
  const sorted = [...rtts].sort((a, b) => a - b);
  console.log(
    `\n## ${new Date().toISOString().slice(0, 10)}: Modbus polling, \`node --import tsx bench/modbus.ts\`\n\n` +
      `- ${DEVICES} simulated presses (one child process, real TCP), ${REGISTERS} holding registers each, polled every ${POLL_MS} ms: ` +
      `${fmt(offered)} registers/s asked for. Median of 3 windows of ${WINDOW_S} s after 2 s warm-up.\n\n` +
      table(
        ['reader', 'registers/s', 'windows', 'of the configured rate'],
        [
          [
            'Loom ModbusTcpPoller → samples',
            median(loomWindows),
            loomWindows.map((x) => fmt(x)).join(' / '),
            `${fmt((100 * median(loomWindows)) / offered)} %`,
          ],
          [
            'bare jsmodbus client, same blocks',
            median(bareWindows),
            bareWindows.map((x) => fmt(x)).join(' / '),
            `${fmt((100 * median(bareWindows)) / offered)} %`,
          ],
        ],
      ) +
      `\n\nBare client round trip p50 ${fmt(median(rtts))} ms, p99 ${fmt(percentile(sorted, 99))} ms. Loom / bare: ${fmt(median(loomWindows) / median(bareWindows))}.`,
  );
} finally {
  child.kill('SIGTERM');
}

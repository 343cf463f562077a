/** Child process of bench/modbus.ts: N simulated Modbus presses on free ports; prints the ports as JSON. */
import { startModbusDevice } from '../src/sim/modbus-device.ts';

const n = Number(process.argv[2] ?? 20);
const devices = await Promise.all(
  Array.from({ length: n }, (_, i) => startModbusDevice({ port: 0, seed: i + 1 })),
);
process.stdout.write(`${JSON.stringify(devices.map((d) => d.port))}\n`);
process.on('SIGTERM', () => {
  void Promise.all(devices.map((d) => d.stop())).then(() => process.exit(0));
});

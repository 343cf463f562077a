/**
 * Runs the simulated Modbus TCP press on its own:
 *
 *   node --import tsx src/sim/modbus-device-main.ts --port 5020 [--host 127.0.0.1] [--seed 1] [--spm 30]
 *
 * The register map is in modbus-device.ts. Prints one line when listening; stops on SIGINT/SIGTERM.
 */
import { parseArgs } from 'node:util';
import { startModbusDevice } from './modbus-device.ts';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '5020' },
    host: { type: 'string', default: '127.0.0.1' },
    seed: { type: 'string', default: '1' },
    spm: { type: 'string', default: '30' },
  },
});

const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  process.stderr.write(`--port ${values.port}: a whole number from 0 to 65535\n`);
  process.exit(2);
}
const device = await startModbusDevice({
  port,
  host: values.host,
  seed: Number(values.seed),
  strokesPerMinute: Number(values.spm),
});
process.stdout.write(`Modbus press listening on ${values.host}:${device.port}\n`);
const stop = (): void => {
  void device.stop().then(() => process.exit(0));
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);

/**
 * Runs one simulated Sparkplug B edge node on its own, as `loom sim sparkplug` does:
 *
 *   node --import tsx src/sim/sparkplug-edge-main.ts --url mqtt://127.0.0.1:1883 --group plant1 \
 *     --edge line1-edge [--host-id loom | --no-host] [--interval-ms 1000] [--bdseq-file f] \
 *     [--load 10x100] [--seed 1] [--username u --password-stdin] [--log-level info]
 *
 * Logs JSON to stderr. Stops on SIGINT/SIGTERM: NDEATH, then
 * DISCONNECT (E13).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { DEFAULT_PLANT_DEVICES, SparkplugEdgeNode, parseLoadSpec } from './sparkplug-edge.ts';

const { values } = parseArgs({
  options: {
    url: { type: 'string', default: 'mqtt://127.0.0.1:1884' },
    group: { type: 'string', default: 'plant1' },
    edge: { type: 'string', default: 'line1-edge' },
    'host-id': { type: 'string', default: 'loom' },
    'no-host': { type: 'boolean', default: false },
    'interval-ms': { type: 'string', default: '1000' },
    'bdseq-file': { type: 'string' },
    load: { type: 'string' },
    seed: { type: 'string', default: '1' },
    username: { type: 'string' },
    'password-stdin': { type: 'boolean', default: false },
    'log-level': { type: 'string', default: 'info' },
  },
});

function usage(message: string): never {
  process.stderr.write(`${message}\n`);
  process.exit(2);
}

const intervalMs = Number(values['interval-ms']);
if (!Number.isInteger(intervalMs) || intervalMs < 10)
  usage(`--interval-ms ${values['interval-ms']}: a whole number ≥ 10`);
const devices = values.load === undefined ? DEFAULT_PLANT_DEVICES : parseLoadSpec(values.load);
if (!devices) usage(`--load ${values.load}: expected <devices>x<metrics>, e.g. 10x100`);

const logger = pino({ level: values['log-level'] }, pino.destination(2));
const password = values['password-stdin'] ? readFileSync(0, 'utf8').replace(/\r?\n$/, '') : undefined;
const edge = new SparkplugEdgeNode({
  url: values.url,
  groupId: values.group,
  edgeNodeId: values.edge,
  primaryHostId: values['no-host'] ? null : values['host-id'],
  devices,
  intervalMs,
  seed: Number(values.seed) || 1,
  logger,
  ...(values['bdseq-file'] ? { bdSeqFile: values['bdseq-file'] } : {}),
  ...(values.username ? { username: values.username } : {}),
  ...(password !== undefined ? { password } : {}),
});
await edge.start();
process.stdout.write(
  `Sparkplug edge node ${values.group}/${values.edge} → ${values.url}` +
    (values['no-host'] ? '\n' : ` (waiting for Primary Host '${values['host-id']}')\n`),
);
const stop = () => {
  void edge.stop().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);

/**
 * Runs one simulated PLC as an OPC UA server on its own, as `loom sim opcua` does:
 *
 *   node --import tsx src/sim/opcua-machine-main.ts --kind oven --id oven-1 [--port 4840]
 *     [--host 127.0.0.1] [--seed 1] [--pki-dir loom-data/sim-opcua/oven-1] [--initial-state Execute]
 *     [--username u --password-stdin] [--no-anonymous] [--require-trusted-clients]
 *     [--security-modes None,Sign,SignAndEncrypt] [--security-policies Basic256Sha256,…]
 *     [--items 5000 --item-interval-ms 100] [--log-level warn] [--exit-with-stdin]
 *
 * The address space is described in opcua-machine.ts. When listening it prints one JSON line to
 * stdout, `{"endpointUrl":…,"port":…,"certificateFile":…,"namespaceUri":…}`; logs go to stderr as
 * JSON. Stops on SIGINT/SIGTERM.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { parseOpcUaMachineArgs, startOpcUaMachine } from './opcua-machine.ts';

const { values } = parseArgs({
  options: {
    kind: { type: 'string', default: 'oven' },
    id: { type: 'string' },
    port: { type: 'string', default: '0' },
    host: { type: 'string', default: '127.0.0.1' },
    seed: { type: 'string', default: '1' },
    'pki-dir': { type: 'string' },
    'initial-state': { type: 'string', default: 'Execute' },
    items: { type: 'string', default: '0' },
    'item-interval-ms': { type: 'string', default: '100' },
    'security-modes': { type: 'string' },
    'security-policies': { type: 'string' },
    'no-anonymous': { type: 'boolean', default: false },
    'require-trusted-clients': { type: 'boolean', default: false },
    username: { type: 'string' },
    'password-stdin': { type: 'boolean', default: false },
    'log-level': { type: 'string', default: 'warn' },
    // Exit when standard input closes: the parent that started this process is gone (even by kill -9).
    'exit-with-stdin': { type: 'boolean', default: false },
  },
});

function usage(message: string): never {
  process.stderr.write(`${message}\n`);
  process.exit(2);
}

const parsed = parseOpcUaMachineArgs({
  kind: values.kind,
  id: values.id,
  port: values.port,
  host: values.host,
  seed: values.seed,
  pkiDir: values['pki-dir'],
  initialState: values['initial-state'],
  items: values.items,
  itemIntervalMs: values['item-interval-ms'],
  securityModes: values['security-modes'],
  securityPolicies: values['security-policies'],
  anonymous: !values['no-anonymous'],
  requireTrustedClients: values['require-trusted-clients'],
});
if (!parsed.ok) usage(parsed.message);
if ((values.username === undefined) !== !values['password-stdin']) {
  usage('--username and --password-stdin go together');
}
if (values['password-stdin'] && values['exit-with-stdin']) {
  usage('--exit-with-stdin needs standard input to itself; it cannot go with --password-stdin');
}
const password = values['password-stdin'] ? readFileSync(0, 'utf8').replace(/\r?\n$/, '') : undefined;
const logger = pino({ level: values['log-level'] }, pino.destination(2));
const machine = await startOpcUaMachine({
  ...parsed.options,
  ...(values.username !== undefined && password !== undefined
    ? { user: { username: values.username, password } }
    : {}),
  logger,
});
process.stdout.write(
  `${JSON.stringify({
    endpointUrl: machine.endpointUrl,
    port: machine.port,
    certificateFile: machine.certificateFile,
    namespaceUri: machine.namespaceUri,
  })}\n`,
);
const stop = (): void => {
  machine.stop().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
if (values['exit-with-stdin']) {
  process.stdin.once('close', stop);
  process.stdin.resume();
}

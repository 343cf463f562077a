/**
 * The simulated oven as a real OPC UA server in its own process (src/sim/opcua-machine-main.ts),
 * against a real node-opcua client. One server process serves every test. Protocol only: no
 * database.
 *
 * The PKI folders live under the OS temp folder and are kept between runs: the first run makes
 * the certificates (a few seconds), later runs reuse them. node-opcua's console output in this
 * process goes where opcua-machine.ts sends it (nowhere, by default).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import {
  AttributeIds,
  DataType,
  MessageSecurityMode,
  OPCUACertificateManager,
  OPCUAClient,
  SecurityPolicy,
  StatusCodes,
  TimestampsToReturn,
  UserTokenType,
  type ClientSession,
  type StatusCode,
  type UserIdentityInfo,
} from 'node-opcua';
import { startOpcUaMachine, type OpcUaMachine } from '../../src/sim/opcua-machine.ts';
import { Press } from '../../src/sim/plant-physics.ts';
import { ROOT } from '../support/loom-process.ts';

const SKIP =
  process.env.LOOM_TEST_PG === 'server'
    ? 'needs no PostgreSQL; already run in the embedded pass (LOOM_TEST_PG=server)'
    : false;

const PKI = path.join(tmpdir(), 'loom-test-opcua-pki');

const USER = { username: 'operator', password: 'oven-secret' };

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(what: string, probe: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 5000) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (ok(v)) return v;
    if (Date.now() > until) assert.fail(`timed out waiting for ${what}; last ${String(v)}`);
    await sleep(50);
  }
}

interface Listening {
  readonly endpointUrl: string;
  readonly certificateFile: string;
  readonly namespaceUri: string;
}

/** Starts the server process and waits for its one JSON line. */
async function startServerProcess(
  args: string[],
  password: string,
): Promise<{ child: ChildProcess } & Listening> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/sim/opcua-machine-main.ts', ...args], {
    cwd: ROOT,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  child.stdin.end(`${password}\n`);
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`server exited with ${code}: ${stderr}`)));
  });
  return { child, ...(JSON.parse(line) as Listening) };
}

/** The client trusts exactly the certificates it was given: here the server's, from its PEM file. */
async function trustingClientPki(serverCertificateFile: string): Promise<OPCUACertificateManager> {
  const cm = new OPCUACertificateManager({
    rootFolder: path.join(PKI, 'client'),
    automaticallyAcceptUnknownCertificate: false,
  });
  await cm.initialize();
  const pem = readFileSync(serverCertificateFile, 'utf8');
  const der = Buffer.from(
    pem.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').replace(/\s+/g, ''),
    'base64',
  );
  await cm.trustCertificate(der);
  return cm;
}

describe('simulated OPC UA oven (separate process)', { skip: SKIP, timeout: 60_000 }, () => {
  let server: { child: ChildProcess } & Listening;
  let clientPki: OPCUACertificateManager;
  const clients: OPCUAClient[] = [];

  async function session(
    security: { mode: MessageSecurityMode; policy: SecurityPolicy } = {
      mode: MessageSecurityMode.None,
      policy: SecurityPolicy.None,
    },
    identity?: UserIdentityInfo,
  ): Promise<ClientSession> {
    const client = OPCUAClient.create({
      applicationName: 'loom-test',
      endpointMustExist: false,
      securityMode: security.mode,
      securityPolicy: security.policy,
      clientCertificateManager: clientPki,
      connectionStrategy: { maxRetry: 0 },
    });
    clients.push(client);
    await client.connect(server.endpointUrl);
    return client.createSession(identity);
  }

  let s: ClientSession;
  const ns1 = (id: string): string => `ns=1;s=${id}`;
  const read = async (id: string) => s.read({ nodeId: ns1(id), attributeId: AttributeIds.Value });
  const value = async (id: string): Promise<unknown> => (await read(id)).value.value;
  const write = async (id: string, dataType: DataType, v: unknown): Promise<StatusCode> =>
    s.write({ nodeId: ns1(id), attributeId: AttributeIds.Value, value: { value: { dataType, value: v } } });
  const call = async (method: string): Promise<StatusCode> =>
    (await s.call({ objectId: ns1('PackML'), methodId: ns1(`PackML/${method}`), inputArguments: [] }))
      .statusCode;
  const stateName = async (): Promise<unknown> => value('PackML/StateName');

  before(async () => {
    server = await startServerProcess(
      [
        '--kind',
        'oven',
        '--id',
        'oven-7',
        '--pki-dir',
        path.join(PKI, 'oven-7'),
        '--initial-state',
        'Idle',
        '--username',
        USER.username,
        '--password-stdin',
      ],
      USER.password,
    );
    clientPki = await trustingClientPki(server.certificateFile);
    s = await session();
  });

  after(async () => {
    for (const c of clients) await c.disconnect();
    await clientPki?.dispose();
    if (server) {
      server.child.kill('SIGTERM');
      const code = await new Promise((r) => server.child.once('exit', r));
      assert.equal(code, 0, 'exits cleanly on SIGTERM');
    }
  });

  it('announces its endpoint and names its namespace 1 after the machine', async () => {
    assert.match(server.endpointUrl, /^opc\.tcp:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(server.namespaceUri, 'urn:loom:sim:oven-7');
    const namespaces = await s.readNamespaceArray();
    assert.equal(namespaces[1], 'urn:loom:sim:oven-7');
    const objects = await s.browse('ns=0;i=85');
    assert.ok(objects.references?.some((r) => r.browseName.toString() === '1:oven-7'));
  });

  it('reads the temperature as a Double with a fresh source timestamp', async () => {
    const dv = await read('Temperature');
    assert.equal(dv.statusCode, StatusCodes.Good);
    assert.equal(dv.value.dataType, DataType.Double);
    assert.ok(Math.abs((dv.value.value as number) - 22) < 1, `ambient, got ${dv.value.value}`);
    assert.ok(Date.now() - dv.sourceTimestamp!.getTime() < 60_000);
  });

  it('reports every Ticks value to a subscription asking for sampling interval 0', async () => {
    const sub = await s.createSubscription2({
      requestedPublishingInterval: 100,
      requestedLifetimeCount: 100,
      requestedMaxKeepAliveCount: 10,
      publishingEnabled: true,
    });
    const seen: number[] = [];
    const item = await sub.monitor(
      { nodeId: ns1('Ticks'), attributeId: AttributeIds.Value },
      { samplingInterval: 0, queueSize: 100, discardOldest: true },
      TimestampsToReturn.Both,
    );
    item.on('changed', (dv) => seen.push(dv.value.value as number));
    await sleep(1200);
    await sub.terminate();
    assert.ok(seen.length >= 8, `saw ${seen.join(',')}`);
    assert.deepEqual(
      seen.slice(1).map((t, i) => t - seen[i]!),
      seen.slice(1).map(() => 1),
      `consecutive: ${seen.join(',')}`,
    );
  });

  it('takes a setpoint and returns it on the next read', async () => {
    assert.equal(await write('Setpoint', DataType.Double, 215.5), StatusCodes.Good);
    assert.equal(await value('Setpoint'), 215.5);
  });

  it('refuses out-of-range, wrongly typed and read-only writes and keeps the value', async () => {
    await write('Setpoint', DataType.Double, 200);
    assert.equal(await write('Setpoint', DataType.Double, 300.5), StatusCodes.BadOutOfRange);
    assert.equal(await write('Setpoint', DataType.String, '250'), StatusCodes.BadTypeMismatch);
    assert.equal(await write('Setpoint', DataType.Int32, 250), StatusCodes.BadTypeMismatch);
    assert.equal(await value('Setpoint'), 200);
    assert.equal(await write('Temperature', DataType.Double, 20), StatusCodes.BadNotWritable);
    assert.equal(await write('Recipe/Id', DataType.String, 'BREAD-7'), StatusCodes.Good);
    assert.equal(await value('Recipe/Id'), 'BREAD-7');
  });

  it('follows PackML through methods and CntrlCmd, and heats only in Execute', async () => {
    assert.equal(await stateName(), 'Idle');
    assert.equal(await value('Power'), 0, 'no heating before Start');
    assert.equal(await call('Hold'), StatusCodes.BadInvalidState, 'Hold is not allowed in Idle');

    assert.equal(await call('Start'), StatusCodes.Good);
    assert.equal(await stateName(), 'Starting');
    await waitFor(
      'Execute',
      () => value('PackML/State'),
      (v) => v === 6,
    );
    const t0 = (await value('Temperature')) as number;
    await waitFor(
      'the oven to heat',
      () => value('Temperature'),
      (t) => (t as number) > t0 + 1,
    );
    assert.ok(((await value('Power')) as number) > 50);

    assert.equal(await write('PackML/CntrlCmd', DataType.Int32, 4), StatusCodes.Good, 'Hold');
    assert.equal(await stateName(), 'Holding');
    await waitFor('Held', stateName, (v) => v === 'Held');
    assert.equal(
      await write('PackML/CntrlCmd', DataType.Int32, 2),
      StatusCodes.BadInvalidState,
      'Start in Held',
    );
    assert.equal(await value('PackML/CntrlCmd'), 4, 'a refused command leaves CntrlCmd as it was');
    assert.equal(await write('PackML/CntrlCmd', DataType.Int32, 12), StatusCodes.BadOutOfRange);
    assert.equal(await value('Power'), 0, 'no heating while held');

    assert.equal(await call('Unhold'), StatusCodes.Good);
    await waitFor('Execute again', stateName, (v) => v === 'Execute');
    assert.equal(await write('PackML/CntrlCmd', DataType.Int32, 3), StatusCodes.Good, 'Stop');
    await waitFor(
      'Stopped',
      () => value('PackML/State'),
      (v) => v === 2,
    );
    assert.equal(await call('Reset'), StatusCodes.Good);
    await waitFor('Idle', stateName, (v) => v === 'Idle');
    assert.equal(await write('PackML/CntrlCmd', DataType.Int32, 2), StatusCodes.Good, 'Start');
    assert.equal(await stateName(), 'Starting');
  });

  it('logs in over SignAndEncrypt Basic256Sha256 with the user name and refuses a wrong password', async () => {
    const secure = { mode: MessageSecurityMode.SignAndEncrypt, policy: SecurityPolicy.Basic256Sha256 };
    const ok = await session(secure, {
      type: UserTokenType.UserName,
      userName: USER.username,
      password: USER.password,
    });
    assert.equal(((await ok.read({ nodeId: ns1('Setpoint') })).value.value as number) >= 0, true);
    await ok.close();
    await assert.rejects(
      session(secure, { type: UserTokenType.UserName, userName: USER.username, password: 'guess' }),
      /BadUserAccessDenied|BadIdentityTokenRejected/,
    );
  });
});

describe('simulated OPC UA press (in process)', { skip: SKIP, timeout: 30_000 }, () => {
  let press: OpcUaMachine;
  let client: OPCUAClient | undefined;

  before(async () => {
    press = await startOpcUaMachine({
      kind: 'press',
      machineId: 'press-7',
      pkiDir: path.join(PKI, 'press-7'),
      requireTrustedClients: true,
      items: 3,
    });
  });

  after(async () => {
    await client?.disconnect();
    await press?.stop();
  });

  it('exposes strokes as UInt32, the jam alarm and the bulk items', async () => {
    client = OPCUAClient.create({ endpointMustExist: false, connectionStrategy: { maxRetry: 0 } });
    await client.connect(press.endpointUrl);
    const s = await client.createSession();
    const read = async (id: string) => s.read({ nodeId: `ns=1;s=${id}` });
    assert.equal((await read('Strokes')).value.dataType, DataType.UInt32);
    assert.ok(press.plc.physics instanceof Press);
    press.plc.physics.jam(10_000);
    await waitFor(
      'the jam alarm',
      async () => (await read('Alarms/Jam')).value.value,
      (v) => v === true,
    );
    assert.equal((await read('State')).value.value, 'Stopped');
    const first = (await read('Load/Value0003')).value;
    assert.equal(first.dataType, DataType.Double);
    await waitFor(
      'a bulk item to change',
      async () => (await read('Load/Value0003')).value.value,
      (v) => v !== first.value,
    );
    assert.equal((await read('Load/Value0004')).statusCode, StatusCodes.BadNodeIdUnknown);
    await s.close();
  });

  it('refuses a secure connection from a client certificate it does not trust', async () => {
    const untrusted = OPCUAClient.create({
      applicationName: 'loom-test',
      endpointMustExist: false,
      securityMode: MessageSecurityMode.SignAndEncrypt,
      securityPolicy: SecurityPolicy.Aes256_Sha256_RsaPss,
      clientCertificateManager: new OPCUACertificateManager({
        rootFolder: path.join(PKI, 'client'),
        automaticallyAcceptUnknownCertificate: true,
      }),
      connectionStrategy: { maxRetry: 0 },
    });
    await assert.rejects(untrusted.connect(press.endpointUrl));
    await untrusted.disconnect();
  });
});

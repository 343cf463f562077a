/**
 * The command gateway (issue #6 item 3) end to end: the HTTP API of a composed Loom with its shop
 * floor running (embedded MQTT broker, Sparkplug host, Modbus poller), against the simulated
 * Modbus press as its own process (src/sim/modbus-device-main.ts: PackML state in holding 7,
 * CntrlCmd in 8, a peak pressure it clamps in 9) and the simulated Sparkplug edge node (DCMD
 * applied, reported in the next DDATA).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import pino from 'pino';
import { loadConfig } from '../../src/config/config.ts';
import { systemClock } from '../../src/domain/shared/clock.ts';
import { sourceTagOf, type SignalSource } from '../../src/domain/signal/signal.ts';
import { composeLoom, type Loom } from '../../src/main/loom.ts';
import { startShopFloor, type ShopFloor } from '../../src/main/shop-floor-feature.ts';
import { SparkplugEdgeNode } from '../../src/sim/sparkplug-edge.ts';
import { cookieOf } from '../support/app.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { freePort, ROOT } from '../support/loom-process.ts';
import { PLANT_YAML } from '../support/plant.ts';

const ADMIN_PASSWORD = 'admin-password-for-tests';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 10_000) {
  const until = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > until) assert.fail(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

async function spawnPress(port: number): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'src/sim/modbus-device-main.ts', '--port', String(port)],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes('listening')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`Modbus press exited with ${code}`)));
  });
  return child;
}

const modbus = (port: number, address: number, extra: object = {}): SignalSource => ({
  modbus: {
    host: '127.0.0.1',
    port,
    unitId: 1,
    table: 'holding',
    address,
    type: 'uint16',
    wordOrder: 'big',
    byteOrder: 'big',
    scale: 1,
    offset: 0,
    pollMs: 200,
    ...extra,
  },
});
const sparkplug = (device: string, metric: string): SignalSource => ({
  sparkplug: { group: 'plant1', edgeNode: 'paint-edge', device, metric },
});

let database: TestDatabase;
let loom: Loom;
let floor: ShopFloor;
let edge: SparkplugEdgeNode;
let press: ChildProcess;
let pressPort = 0;
const cookies: Record<'admin' | 'eng' | 'op', string> = { admin: '', eng: '', op: '' };
const passwords = { eng: 'staple horse battery 42', op: 'staple horse battery 43' };

interface Result {
  signal: string;
  requested: unknown;
  before: unknown;
  readBack: unknown;
  difference: number | null;
  status: string;
  readBackVia: string | null;
}
interface Command {
  id: string;
  outcome: string;
  kind: string;
  results: Result[];
  state: { signal: string; value: unknown; state: string | null; via: string } | null;
  signature: { signerName: string; meaning: string } | null;
  error: { code: string; message: string } | null;
}

function send(
  equipment: string,
  who: keyof typeof cookies,
  body: object,
  headers: Record<string, string> = {},
): Promise<LightMyRequestResponse> {
  return loom.app.inject({
    method: 'POST',
    url: `/api/equipment/${equipment}/commands`,
    headers: { cookie: cookies[who], ...headers },
    payload: body,
  });
}

async function audit(entityType: string, entityId: string) {
  const r = await loom.app.inject({
    method: 'GET',
    url: `/api/audit?entityType=${entityType}&entityId=${entityId}`,
    headers: { cookie: cookies.admin },
  });
  return r.json<{
    entries: {
      action: string;
      actorName: string;
      reason: string | null;
      oldValue: { values: unknown[] } & Record<string, unknown>;
      newValue: {
        commandId: string;
        outcome: string;
        values: { readBack: unknown }[];
        error: { code: string } | null;
      };
      signature: { meaning: string; signerName: string } | null;
    }[];
  }>().entries;
}

const commandCount = async () =>
  (await database.db.query<{ n: number }>('SELECT count(*)::int AS n FROM equipment_commands')).rows[0]!.n;

/** The latest live value of a signal (the live hub's snapshot). */
function live(signal: string): unknown {
  let value: unknown;
  const sub = loom.telemetry.live.subscribe(
    { signals: [signal] },
    {
      bufferedBytes: () => 0,
      deliver: (events) => {
        for (const e of events) if (e.type === 'sample') value = e.value;
      },
      heartbeat: () => undefined,
      close: () => undefined,
    },
    { internal: true },
  );
  loom.telemetry.live.tick();
  sub.unsubscribe();
  return value;
}

const PRESS_TAG = (address: number) => sourceTagOf(modbus(pressPort, address));

before(async () => {
  pressPort = await freePort();
  press = await spawnPress(pressPort);
  database = await createTestDatabase();
  const config = loadConfig({
    env: {
      LOOM_ADMIN_PASSWORD: ADMIN_PASSWORD,
      LOOM_LOG_LEVEL: 'silent',
      LOOM_MQTT_PORT: '0',
      LOOM_SPARKPLUG_HOST_ID: `loom-commands-${process.pid}`,
      LOOM_INGEST_FLUSH_MS: '100',
    },
  });
  const logger = pino({ level: 'silent' });
  loom = await composeLoom({ config, db: database.db, logger, clock: systemClock });
  await loom.auth.bootstrapAdmin(ADMIN_PASSWORD);
  await loom.app.ready();
  floor = await startShopFloor({
    config,
    telemetry: loom.telemetry,
    auth: loom.auth,
    clock: systemClock,
    logger,
  });
  loom.commands.connect(floor);

  const login = async (username: string, password: string) =>
    cookieOf(
      await loom.app.inject({ method: 'POST', url: '/api/auth/login', payload: { username, password } }),
    );
  cookies.admin = await login('admin', ADMIN_PASSWORD);
  for (const [username, role] of [
    ['eng', 'engineer'],
    ['op', 'operator'],
  ] as const) {
    const res = await loom.app.inject({
      method: 'POST',
      url: '/api/users',
      headers: { cookie: cookies.admin },
      payload: {
        username,
        displayName: username,
        password: passwords[username],
        roles: [role],
        mustChangePassword: false,
      },
    });
    assert.equal(res.statusCode, 201, res.body);
    cookies[username] = await login(username, passwords[username]);
  }

  const plant = await loom.app.inject({
    method: 'POST',
    url: '/api/plant/import',
    headers: { cookie: cookies.admin, 'content-type': 'application/yaml' },
    payload: PLANT_YAML,
  });
  assert.equal(plant.statusCode, 200, plant.body);
  // press-1 moves to this test's press; press-3 is a Sparkplug press on the paint edge node.
  const signals = await loom.app.inject({
    method: 'POST',
    url: '/api/plant/import',
    headers: { cookie: cookies.admin },
    payload: {
      equipment: [{ id: 'press-3', name: 'Press 3', level: 'WorkUnit', parent: 'press-line-1' }],
      signals: [
        {
          id: 'press-1.strokes',
          equipment: 'press-1',
          dataType: 'number',
          source: modbus(pressPort, 0, { type: 'uint32' }),
        },
        {
          id: 'press-1.cycle-time',
          equipment: 'press-1',
          dataType: 'number',
          source: modbus(pressPort, 2, { type: 'float32' }),
        },
        {
          id: 'press-1.pressure',
          equipment: 'press-1',
          dataType: 'number',
          source: modbus(pressPort, 4, { type: 'int16', scale: 0.1 }),
        },
        { id: 'press-1.state-code', equipment: 'press-1', dataType: 'number', source: modbus(pressPort, 5) },
        {
          id: 'press-1.running',
          equipment: 'press-1',
          dataType: 'boolean',
          source: modbus(pressPort, 0, { table: 'coil', type: 'bool' }),
        },
        {
          id: 'press-1.target-spm',
          equipment: 'press-1',
          dataType: 'number',
          writable: true,
          limits: { low: 0, high: 120 },
          source: modbus(pressPort, 6),
        },
        {
          id: 'press-1.packml-state',
          equipment: 'press-1',
          dataType: 'number',
          packml: 'state',
          source: modbus(pressPort, 7),
        },
        {
          id: 'press-1.packml-command',
          equipment: 'press-1',
          dataType: 'number',
          writable: true,
          packml: 'command',
          source: modbus(pressPort, 8),
        },
        // The plant model allows up to 400 bar; the press runs at most 250 (it clamps).
        {
          id: 'press-1.peak-pressure',
          equipment: 'press-1',
          dataType: 'number',
          writable: true,
          limits: { low: 0, high: 400 },
          source: modbus(pressPort, 9),
        },
        {
          id: 'paint-oven-1.setpoint',
          equipment: 'paint-oven-1',
          dataType: 'number',
          writable: true,
          limits: { low: 0, high: 300 },
          source: sparkplug('oven-1', 'Setpoint'),
        },
        {
          id: 'press-3.state',
          equipment: 'press-3',
          dataType: 'string',
          packml: 'state',
          source: sparkplug('press-3', 'State'),
        },
        {
          id: 'press-3.target-spm',
          equipment: 'press-3',
          dataType: 'number',
          writable: true,
          source: sparkplug('press-3', 'TargetStrokesPerMinute'),
        },
        {
          id: 'press-3.peak-pressure',
          equipment: 'press-3',
          dataType: 'number',
          writable: true,
          source: sparkplug('press-3', 'Recipe/PeakPressure'),
        },
      ],
    },
  });
  assert.equal(signals.statusCode, 200, signals.body);

  edge = new SparkplugEdgeNode({
    url: floor.brokerUrl!,
    ...(floor.embeddedBrokerLogin ?? {}),
    groupId: 'plant1',
    edgeNodeId: 'paint-edge',
    primaryHostId: config.sparkplugHostId,
    devices: [
      { id: 'oven-1', kind: 'oven' },
      { id: 'press-3', kind: 'press' },
    ],
    intervalMs: 200,
  });
  await edge.start();
  await waitFor('the press polled', async () => (await floor.modbus!.read(PRESS_TAG(7))).ok);
  await waitFor('the oven setpoint live', () => typeof live('paint-oven-1.setpoint') === 'number');
  await waitFor('the Sparkplug press state live', () => live('press-3.state') === 'Execute');
});

after(async () => {
  await edge?.stop().catch(() => undefined);
  loom?.commands.disconnect();
  await floor?.stop();
  await loom?.app.close();
  await database?.drop();
  if (press && press.exitCode === null && press.signalCode === null) press.kill('SIGKILL');
});

describe('command gateway on Modbus', () => {
  it('confirms a setpoint by reading it back, and audits who, why, the old and the new value', async () => {
    const res = await send('press-1', 'eng', {
      kind: 'setpoint',
      signal: 'press-1.target-spm',
      value: 60,
      reason: 'speed up for the service-part run',
    });
    assert.equal(res.statusCode, 201, res.body);
    const c = res.json<Command>();
    assert.equal(res.headers.location, `/api/equipment-commands/${c.id}`);
    assert.equal(c.outcome, 'confirmed');
    assert.deepEqual(
      { ...c.results[0], error: undefined },
      {
        signal: 'press-1.target-spm',
        requested: 60,
        before: 30,
        readBack: 60,
        difference: 0,
        status: 'confirmed',
        readBackVia: 'device',
        error: undefined,
      },
    );
    const stored = await loom.app.inject({
      method: 'GET',
      url: `/api/equipment-commands/${c.id}`,
      headers: { cookie: cookies.op },
    });
    assert.deepEqual(stored.json(), c);

    const entries = await audit('equipment-command', c.id);
    assert.deepEqual(
      entries.map((e) => e.action),
      ['equipment-command.requested', 'equipment-command.confirmed'],
    );
    const done = entries[1]!;
    assert.equal(done.actorName, 'eng');
    assert.equal(done.reason, 'speed up for the service-part run');
    assert.deepEqual(done.oldValue.values, [{ signal: 'press-1.target-spm', value: 30 }]);
    assert.equal(done.newValue.commandId, c.id);
    assert.equal(done.newValue.values[0]?.readBack, 60);
  });

  it('refuses a wrong role (403, naming the roles) and a bad command (422/404, naming the field), recording nothing', async () => {
    const count = await commandCount();
    const setpoint = { kind: 'setpoint', signal: 'press-1.target-spm', value: 50, reason: 'r' };
    const forbidden = await send('press-1', 'op', setpoint);
    assert.equal(forbidden.statusCode, 403);
    assert.match(
      forbidden.json().detail,
      /needs one of the roles engineer, supervisor, admin; you have operator/,
    );

    const cases: [string, object, number, string, RegExp][] = [
      [
        'press-1',
        { kind: 'setpoint', signal: 'press-1.target-spm', value: 50 },
        422,
        'reason',
        /reason is required/,
      ],
      ['press-9', setpoint, 404, '', /No equipment 'press-9'/],
      ['press-1', { ...setpoint, signal: 'paint-oven-1.setpoint' }, 422, 'signal', /not a signal of press-1/],
      ['press-1', { ...setpoint, signal: 'press-1.strokes' }, 422, 'signal', /read-only/],
      ['press-1', { ...setpoint, value: '50' }, 422, 'value', /must be a number/],
      ['press-1', { ...setpoint, value: 150 }, 422, 'value', /must be from 0 to 120/],
      ['press-1', { ...setpoint, value: 1.5 }, 422, 'value', /not a whole number of 1 steps/],
      [
        'press-1',
        {
          kind: 'recipe',
          recipe: 'R',
          reason: 'r',
          parameters: [{ signal: 'press-1.target-spm', value: 1 }],
        },
        422,
        'signature',
        /signature is required: a recipe download is a recipe change/,
      ],
      [
        'press-1',
        {
          kind: 'recipe',
          recipe: 'R',
          reason: 'r',
          signature: { password: passwords.eng, meaning: 'm' },
          parameters: [
            { signal: 'press-1.target-spm', value: 1 },
            { signal: 'press-1.target-spm', value: 2 },
          ],
        },
        422,
        'parameters[1].signal',
        /repeats parameters\[0\]/,
      ],
      ['paint-oven-1', { kind: 'start', reason: 'r' }, 422, '', /no PackML command signal/],
    ];
    for (const [equipment, body, status, path, message] of cases) {
      const res = await send(equipment, 'eng', body);
      assert.equal(res.statusCode, status, `${JSON.stringify(body)}: ${res.body}`);
      const p = res.json();
      assert.match(p.detail, message);
      if (path)
        assert.ok(
          p.issues.some((i: { path: string }) => i.path === path),
          res.body,
        );
    }
    const wrongPassword = await send('press-1', 'eng', {
      kind: 'recipe',
      recipe: 'R',
      reason: 'r',
      signature: { password: 'not my password', meaning: 'm' },
      parameters: [{ signal: 'press-1.peak-pressure', value: 200 }],
    });
    assert.equal(wrongPassword.statusCode, 401);
    assert.equal(wrongPassword.json().code, 'LOOM_SIGNATURE_INVALID');
    assert.equal(await commandCount(), count, 'nothing refused before the machine is touched is recorded');
  });

  it('refuses a recipe download while the press runs, naming the state it read from the device', async () => {
    const res = await send('press-1', 'eng', {
      kind: 'recipe',
      recipe: 'DOOR-OUTER-LH',
      reason: 'die change',
      signature: { password: passwords.eng, meaning: 'Recipe approved for download' },
      parameters: [{ signal: 'press-1.peak-pressure', value: 200 }],
    });
    assert.equal(res.statusCode, 409, res.body);
    const p = res.json();
    assert.equal(p.code, 'LOOM_COMMAND_INTERLOCK');
    assert.equal(
      p.detail,
      'press-1 is in PackML state Execute; a recipe download needs it Idle or Stopped. Bring it to Idle or Stopped first.',
    );
    assert.equal(p.currentState, 'Execute');
    assert.deepEqual(p.permittedStates, ['Idle', 'Stopped']);
    assert.equal(p.command.outcome, 'refused');
    assert.deepEqual(p.command.state, {
      ...p.command.state,
      signal: 'press-1.packml-state',
      value: 6,
      state: 'Execute',
      via: 'device',
    });
    assert.equal(p.command.results[0].status, 'not-sent');
    const read = await floor.modbus!.read(PRESS_TAG(9));
    assert.ok(read.ok && read.value === 180, 'the peak pressure was not written');
    const entries = await audit('equipment-command', p.commandId);
    assert.deepEqual(
      entries.map((e) => e.action),
      ['equipment-command.requested', 'equipment-command.refused'],
    );
    assert.equal(entries[0]!.signature?.meaning, 'Recipe approved for download');

    const start = await send('press-1', 'op', { kind: 'start', reason: 'shift start' });
    assert.equal(start.statusCode, 409);
    assert.equal(start.json().code, 'LOOM_COMMAND_TRANSITION_REFUSED');
    assert.match(
      start.json().detail,
      /^press-1 is in PackML state Execute; start is accepted only in Idle\.$/,
    );
  });

  it('stops the press, then downloads a signed recipe for an operation and records what the press clamped', async () => {
    const stop = await send('press-1', 'op', { kind: 'stop', reason: 'die change' });
    assert.equal(stop.statusCode, 201, stop.body);
    assert.equal(stop.json<Command>().results[0]!.readBack, 3, 'CntrlCmd 3 (Stop) read back');
    assert.equal(stop.json<Command>().state?.state, 'Execute');
    await waitFor('the press Stopped', async () => {
      const r = await floor.modbus!.read(PRESS_TAG(7));
      return r.ok && r.value === 2;
    });

    const order = await loom.app.inject({
      method: 'POST',
      url: '/api/orders',
      headers: { cookie: cookies.admin },
      payload: { product: 'service-door-panel', quantity: 1 },
    });
    assert.equal(order.statusCode, 201, order.body);
    const operation = order.json<{ operations: { id: number }[] }>().operations[0]!.id;

    const res = await send('press-1', 'eng', {
      kind: 'recipe',
      recipe: 'DOOR-OUTER-LH',
      operation,
      reason: 'die change to door outer',
      signature: { password: passwords.eng, meaning: 'Recipe approved for download' },
      parameters: [
        { signal: 'press-1.target-spm', value: 40 },
        { signal: 'press-1.peak-pressure', value: 300 },
      ],
    });
    assert.equal(res.statusCode, 201, res.body);
    const c = res.json<Command>();
    assert.equal(c.outcome, 'variance');
    assert.equal(c.state?.state, 'Stopped');
    assert.equal(c.signature?.meaning, 'Recipe approved for download');
    assert.match(String(c.signature?.signerName), /eng/);
    assert.deepEqual(
      c.results.map((r) => [r.signal, r.requested, r.readBack, r.difference, r.status]),
      [
        ['press-1.target-spm', 40, 40, 0, 'confirmed'],
        ['press-1.peak-pressure', 300, 250, -50, 'variance'],
      ],
    );
    const entries = await audit('equipment-command', c.id);
    assert.deepEqual(
      entries.map((e) => e.action),
      ['equipment-command.requested', 'equipment-command.variance'],
    );
    assert.ok(entries[0]!.signature);
    const onOperation = await audit('order-operation', String(operation));
    const download = onOperation.find((e) => e.action === 'operation.recipe-downloaded');
    assert.equal(download?.newValue.commandId, c.id);
    assert.equal(download?.newValue.outcome, 'variance');
    assert.equal(download?.signature?.meaning, 'Recipe approved for download');

    const page = await loom.app.inject({
      method: 'GET',
      url: '/api/equipment/press-1/commands?limit=2',
      headers: { cookie: cookies.op },
    });
    const listed = page.json<{ commands: Command[]; nextBefore: number | null }>();
    assert.deepEqual(
      listed.commands.map((x) => x.id),
      [c.id, stop.json<Command>().id],
      'newest first',
    );
    assert.ok(listed.nextBefore !== null);
    const rest = await loom.app.inject({
      method: 'GET',
      url: `/api/equipment/press-1/commands?limit=50&before=${listed.nextBefore}`,
      headers: { cookie: cookies.op },
    });
    assert.deepEqual(
      rest.json<{ commands: Command[] }>().commands.map((x) => [x.kind, x.outcome]),
      [
        ['start', 'refused'],
        ['recipe', 'refused'],
        ['setpoint', 'confirmed'],
      ],
    );
  });

  it('replays a retry with the same Idempotency-Key, and refuses the key with another body', async () => {
    const body = { kind: 'setpoint', signal: 'press-1.target-spm', value: 45, reason: 'retry test' };
    const headers = { 'idempotency-key': `setpoint-${process.pid}` };
    const first = await send('press-1', 'eng', body, headers);
    assert.equal(first.statusCode, 201, first.body);
    const count = await commandCount();
    const again = await send('press-1', 'eng', body, headers);
    assert.equal(again.statusCode, 201);
    assert.equal(again.headers['idempotent-replayed'], 'true');
    assert.deepEqual(again.json(), first.json());
    assert.equal(await commandCount(), count, 'the retry wrote nothing');
    const other = await send('press-1', 'eng', { ...body, value: 46 }, headers);
    assert.equal(other.statusCode, 422);
    assert.equal(other.json().code, 'LOOM_IDEMPOTENCY_KEY_REUSED');
  });
});

describe('command gateway on Sparkplug', () => {
  it('sends a setpoint as a DCMD and confirms it by the DDATA that reports it; a retry meanwhile is told it runs', async () => {
    const body = { kind: 'setpoint', signal: 'paint-oven-1.setpoint', value: 200, reason: 'clearcoat cure' };
    const headers = { 'idempotency-key': `oven-${process.pid}` };
    const [res, retry] = await Promise.all([
      send('paint-oven-1', 'eng', body, headers),
      sleep(50).then(() => send('paint-oven-1', 'eng', body, headers)),
    ]);
    assert.equal(res.statusCode, 201, res.body);
    const c = res.json<Command>();
    assert.equal(c.outcome, 'confirmed');
    assert.deepEqual(
      [c.results[0]!.before, c.results[0]!.readBack, c.results[0]!.readBackVia],
      [180, 200, 'live'],
    );
    assert.equal(retry.statusCode, 409, retry.body);
    assert.equal(retry.json().code, 'LOOM_COMMAND_IN_PROGRESS');
    const entries = await audit('equipment-command', c.id);
    assert.deepEqual(
      entries.map((e) => e.action),
      ['equipment-command.requested', 'equipment-command.confirmed'],
    );
  });

  it('interlocks a recipe on the latest live state (Sparkplug has no read) and says so', async () => {
    const recipe = {
      kind: 'recipe',
      recipe: 'P2-HEAVY',
      reason: 'heavier gauge',
      signature: { password: passwords.eng, meaning: 'Recipe approved for download' },
      parameters: [{ signal: 'press-3.peak-pressure', value: 220 }],
    };
    const refused = await send('press-3', 'eng', recipe);
    assert.equal(refused.statusCode, 409, refused.body);
    assert.match(
      refused.json().detail,
      /^press-3 is in PackML state Execute \(the latest value Loom received from 'press-3\.state' at .*: its source offers no read\); a recipe download needs it Idle or Stopped/,
    );
    assert.equal(refused.json().command.state.via, 'live');

    const idle = await send('press-3', 'eng', {
      kind: 'setpoint',
      signal: 'press-3.target-spm',
      value: 0,
      reason: 'stop stroking',
    });
    assert.equal(idle.statusCode, 201, idle.body);
    await waitFor('press-3 Idle', () => live('press-3.state') === 'Idle');
    const done = await send('press-3', 'eng', recipe);
    assert.equal(done.statusCode, 201, done.body);
    assert.equal(done.json<Command>().outcome, 'confirmed');
    assert.equal(done.json<Command>().results[0]!.readBack, 220);
  });
});

describe('a disconnected machine', () => {
  it('fails at once with 503, records the failed command, and sends nothing', async () => {
    const exited = new Promise((r) => press.once('exit', r));
    press.kill('SIGKILL');
    await exited;
    await waitFor('the poller to notice', async () => !(await floor.modbus!.read(PRESS_TAG(6))).ok);
    const t0 = performance.now();
    const res = await send('press-1', 'eng', {
      kind: 'setpoint',
      signal: 'press-1.target-spm',
      value: 20,
      reason: 'slow down',
    });
    assert.ok(performance.now() - t0 < 1000, 'no waiting for a dead device');
    assert.equal(res.statusCode, 503, res.body);
    const p = res.json();
    assert.equal(p.code, 'LOOM_COMMAND_DISCONNECTED');
    assert.equal(p.connectorCode, 'LOOM_MODBUS_DISCONNECTED');
    assert.match(p.detail, /^press-1 is not reachable .* Nothing was written\.$/);
    assert.equal(p.command.outcome, 'failed');
    assert.equal(p.command.results[0].status, 'not-sent');
    const row = await database.db.query<{ outcome: string; error_code: string }>(
      'SELECT outcome, error_code FROM equipment_commands WHERE id = $1',
      [p.commandId],
    );
    assert.deepEqual(row.rows[0], { outcome: 'failed', error_code: 'LOOM_COMMAND_DISCONNECTED' });
    const entries = await audit('equipment-command', p.commandId);
    assert.equal(entries.at(-1)?.action, 'equipment-command.failed');
    assert.equal(entries.at(-1)?.newValue.error?.code, 'LOOM_COMMAND_DISCONNECTED');

    const tamper = await database.db
      .query("UPDATE equipment_commands SET outcome = 'confirmed' WHERE id = $1", [p.commandId])
      .catch((e: Error) => e);
    assert.ok(
      tamper instanceof Error && /is finished/.test(tamper.message),
      'a finished command never changes',
    );
  });
});

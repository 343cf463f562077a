/**
 * `loom start` on the embedded PostgreSQL, as real processes: first start, restart, a second Loom
 * on the same folder, and crashes (Loom killed; Loom and its janitor killed). Each test has its own
 * data folder and port, and `after` kills whatever is left, even when an assertion failed.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, afterEach, before, describe, it } from 'node:test';
import { freePort, loomEnv } from '../support/loom-process.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const ADMIN_PASSWORD = 'lifecycle-admin-password';
/** initdb plus migrations on a busy 2-core CI machine, with the rest of the suite running beside. */
const START_TIMEOUT_MS = 90_000;

interface LoomProcess {
  readonly child: ChildProcess;
  readonly port: number;
  readonly url: string;
  readonly stdout: () => string;
  readonly stderr: () => string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const children = new Set<ChildProcess>();
const dataDirs = new Set<string>();

async function newDataDir(): Promise<string> {
  // mkdtemp makes the folder 0700: as root this also checks that Loom opens its own data folder to
  // the `postgres` user that runs the embedded PostgreSQL.
  const dir = await mkdtemp(path.join(tmpdir(), 'loom-lifecycle-'));
  dataDirs.add(dir);
  return dir;
}

function spawnLoom(dataDir: string, port: number): LoomProcess {
  const child = spawn(process.execPath, ['bin/loom.js', 'start', '--no-sim'], {
    cwd: ROOT,
    env: loomEnv({
      LOOM_DATA_DIR: dataDir,
      LOOM_PORT: String(port),
      LOOM_ADMIN_PASSWORD: ADMIN_PASSWORD,
      LOOM_LOG_LEVEL: 'warn',
    }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => {
      children.delete(child);
      resolve({ code, signal });
    }),
  );
  return {
    child,
    port,
    url: `http://127.0.0.1:${port}`,
    stdout: () => stdout,
    stderr: () => stderr,
    exited,
  };
}

/** Waits for `Loom is serving on http://…`; fails with Loom's output if it exits or times out. */
async function waitServing(loom: LoomProcess): Promise<string> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  void loom.exited.then((e) => (exit = e));
  for (;;) {
    const m = /Loom is serving on (http:\/\/\S+)/.exec(loom.stdout());
    if (m) return m[1]!;
    if (exit) {
      throw new Error(
        `loom exited (${exit.code ?? exit.signal}) before serving:\n${loom.stdout()}\n${loom.stderr()}`,
      );
    }
    if (Date.now() > deadline) {
      throw new Error(
        `loom did not serve within ${START_TIMEOUT_MS} ms:\n${loom.stdout()}\n${loom.stderr()}`,
      );
    }
    await sleep(25);
  }
}

async function startLoom(dataDir: string): Promise<LoomProcess & { startupMs: number }> {
  const t0 = performance.now();
  const loom = spawnLoom(dataDir, await freePort());
  const url = await waitServing(loom);
  assert.equal(url, loom.url);
  return { ...loom, startupMs: Math.round(performance.now() - t0) };
}

async function stopLoom(loom: LoomProcess): Promise<number | null> {
  loom.child.kill('SIGTERM');
  const { code } = await withTimeout(loom.exited, 30_000, 'loom did not exit within 30 s of SIGTERM');
  return code;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

async function waitFor(cond: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (cond()) return true;
    await sleep(100);
  }
  return cond();
}

function processes(): { pid: number; argv: string[] }[] {
  const out: { pid: number; argv: string[] }[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const argv = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').filter(Boolean);
      if (argv.length) out.push({ pid: Number(name), argv });
    } catch {
      // The process ended while we listed /proc.
    }
  }
  return out;
}

/** Postmasters started with `-D <dataDir>/pg` (backends rename themselves and die with it). */
function postmastersOf(dataDir: string): number[] {
  const pgData = path.join(dataDir, 'pg');
  return processes()
    .filter(
      (p) =>
        path.basename(p.argv[0]!) === 'postgres' &&
        p.argv.some((a, i) => a === '-D' && p.argv[i + 1] === pgData),
    )
    .map((p) => p.pid);
}

function janitorsOf(dataDir: string): number[] {
  const pgData = path.join(dataDir, 'pg');
  return processes()
    .filter((p) => p.argv.some((a) => a.endsWith('postgres-janitor.js')) && p.argv.includes(pgData))
    .map((p) => p.pid);
}

function kill(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // Already gone.
  }
}

async function getJson(url: string): Promise<{ status: number; body: unknown }> {
  const res = await fetch(url);
  return { status: res.status, body: await res.json() };
}

async function login(
  base: string,
  username: string,
  password: string,
): Promise<{ status: number; cookie: string }> {
  const res = await fetch(`${base}/api/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password }),
  });
  const cookie = /loom_session=[^;]+/.exec(res.headers.get('set-cookie') ?? '')?.[0] ?? '';
  await res.arrayBuffer();
  return { status: res.status, cookie };
}

/** Kills every Loom, janitor and postmaster a test left behind, then removes its data folders. */
async function cleanUp(): Promise<void> {
  for (const child of children) child.kill('SIGKILL');
  for (const dir of dataDirs) {
    for (const pid of janitorsOf(dir)) kill(pid, 'SIGKILL');
    // SIGQUIT: PostgreSQL's immediate shutdown, which also ends its backends.
    for (const pid of postmastersOf(dir)) kill(pid, 'SIGQUIT');
  }
  await waitFor(() => [...dataDirs].every((d) => postmastersOf(d).length === 0), 10_000);
  for (const dir of dataDirs) {
    for (const pid of postmastersOf(dir)) kill(pid, 'SIGKILL');
    await rm(dir, { recursive: true, force: true });
  }
  dataDirs.clear();
}

describe('loom start on the embedded PostgreSQL', { timeout: 10 * 60_000 }, () => {
  before(() => {
    assert.ok(existsSync(path.join(ROOT, 'bin/loom.js')), 'bin/loom.js missing');
  });
  afterEach(cleanUp);
  after(cleanUp);

  it('serves /ready on an empty folder, and SIGTERM exits 0 leaving no PostgreSQL and no lock', async () => {
    const dir = await newDataDir();
    const loom = await startLoom(dir);
    console.log(`# loom start on an empty data folder: ${loom.startupMs} ms from spawn to "Loom is serving"`);

    const ready = await getJson(`${loom.url}/ready`);
    assert.equal(ready.status, 200);
    assert.equal((ready.body as { status: string }).status, 'ready');
    assert.equal(postmastersOf(dir).length, 1, 'one embedded postmaster while serving');
    assert.ok(existsSync(path.join(dir, 'loom.lock')), 'loom.lock while serving');

    assert.equal(await stopLoom(loom), 0, `exit code 0 on SIGTERM; stderr:\n${loom.stderr()}`);
    assert.deepEqual(postmastersOf(dir), [], 'no postgres left for the data folder');
    assert.equal(existsSync(path.join(dir, 'loom.lock')), false, 'loom.lock removed');
    assert.deepEqual(janitorsOf(dir), [], 'janitor gone');
  });

  it('keeps users and the admin password across a restart on the same folder', async () => {
    const dir = await newDataDir();
    const first = await startLoom(dir);
    const admin = await login(first.url, 'admin', ADMIN_PASSWORD);
    assert.equal(admin.status, 200);
    const created = await fetch(`${first.url}/api/users`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', cookie: admin.cookie },
      body: JSON.stringify({
        username: 'olga',
        displayName: 'Olga Operator',
        password: 'tractor-blue-42-seven',
        roles: ['operator'],
      }),
    });
    assert.equal(created.status, 201, await created.text());
    assert.equal(await stopLoom(first), 0);

    const second = await startLoom(dir);
    console.log(`# loom start on an existing data folder: ${second.startupMs} ms`);
    const again = await login(second.url, 'admin', ADMIN_PASSWORD);
    assert.equal(again.status, 200, 'admin logs in after the restart');
    const res = await fetch(`${second.url}/api/users`, { headers: { cookie: again.cookie } });
    assert.equal(res.status, 200);
    const users = (await res.json()) as { username: string; roles: string[] }[];
    const olga = users.find((u) => u.username === 'olga');
    assert.ok(olga, `olga survives the restart; users: ${users.map((u) => u.username).join(', ')}`);
    assert.deepEqual(olga.roles, ['operator']);
    assert.equal((await login(second.url, 'olga', 'tractor-blue-42-seven')).status, 200);
    assert.equal(await stopLoom(second), 0);
  });

  it('refuses a second Loom on the same folder while the first keeps serving', async () => {
    const dir = await newDataDir();
    const first = await startLoom(dir);
    const second = spawnLoom(dir, await freePort());
    const { code } = await withTimeout(second.exited, 20_000, 'the second loom did not exit within 20 s');
    assert.notEqual(code, 0);
    assert.match(second.stderr(), /in use by another Loom process/);
    assert.match(second.stderr(), new RegExp(`pid ${first.child.pid}`), 'names the owner');

    const ready = await getJson(`${first.url}/ready`);
    assert.equal(ready.status, 200);
    assert.equal((ready.body as { status: string }).status, 'ready');
    assert.equal(await stopLoom(first), 0);
  });

  it('stops PostgreSQL within 5 s when Loom is killed -9, and starts again afterwards', async () => {
    const dir = await newDataDir();
    const first = await startLoom(dir);
    assert.equal(postmastersOf(dir).length, 1);
    first.child.kill('SIGKILL');
    await first.exited;

    assert.ok(
      await waitFor(() => postmastersOf(dir).length === 0, 5_000),
      'the janitor stopped PostgreSQL within 5 s',
    );
    assert.ok(await waitFor(() => janitorsOf(dir).length === 0, 5_000), 'the janitor exited');

    const second = await startLoom(dir);
    assert.equal((await getJson(`${second.url}/ready`)).status, 200);
    assert.equal(await stopLoom(second), 0);
    assert.deepEqual(postmastersOf(dir), []);
  });

  it('recovers a PostgreSQL orphaned by killing -9 both Loom and its janitor', async () => {
    const dir = await newDataDir();
    const first = await startLoom(dir);
    const janitors = janitorsOf(dir);
    assert.equal(janitors.length, 1, 'one janitor per running Loom');
    const [orphan] = postmastersOf(dir);
    assert.ok(orphan, 'a postmaster is running');
    // The janitor first: it would otherwise notice Loom's death and stop PostgreSQL itself.
    for (const pid of janitors) kill(pid, 'SIGKILL');
    assert.ok(await waitFor(() => janitorsOf(dir).length === 0, 5_000));
    first.child.kill('SIGKILL');
    await first.exited;
    await sleep(1_000);
    assert.deepEqual(postmastersOf(dir), [orphan], 'PostgreSQL is orphaned and still running');

    const second = await startLoom(dir);
    const ready = await getJson(`${second.url}/ready`);
    assert.equal(ready.status, 200);
    assert.equal((ready.body as { status: string }).status, 'ready');
    const now = postmastersOf(dir);
    assert.equal(now.length, 1);
    assert.notEqual(now[0], orphan, 'the orphan was stopped and a new postmaster started');
    assert.equal(await stopLoom(second), 0);
    assert.deepEqual(postmastersOf(dir), []);
  });
});

/**
 * The `loom` command as a user runs it: a real process, real exit codes, real output. The parts
 * that need a database use a fresh database on the PostgreSQL the test runner chose
 * (LOOM_TEST_DATABASE_URL: the embedded cluster's socket, or a server), or the system server.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { ROOT, runLoom as loom } from '../support/loom-process.ts';

const SERVER_URL = process.env.LOOM_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** The same server URL with another database name; works for TCP and Unix-socket URLs. */
function withDatabase(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

async function connect(url: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3_000 });
  c.on('error', () => undefined);
  await c.connect();
  return c;
}

describe('loom config', () => {
  it('prints the effective configuration as JSON with secrets masked', async () => {
    const r = await loom(['config'], {
      LOOM_ADMIN_PASSWORD: 'admin-password-not-to-print',
      LOOM_DATABASE_URL: 'postgres://loom:db-password-not-to-print@db.example:5432/loom',
      LOOM_PORT: '9090',
    });
    assert.equal(r.code, 0, r.stderr);
    const cfg = JSON.parse(r.stdout) as Record<string, unknown>;
    assert.equal(cfg.adminPassword, '***');
    assert.equal(cfg.databaseUrl, 'postgres://loom:***@db.example:5432/loom');
    assert.equal(cfg.port, 9090);
    assert.equal(cfg.host, '127.0.0.1');
    assert.doesNotMatch(r.stdout + r.stderr, /not-to-print/);
  });

  const bad: { name: string; env: Record<string, string>; key: string; value: string; allowed: RegExp }[] = [
    {
      name: 'a port that is not a number',
      env: { LOOM_PORT: 'abc' },
      key: 'LOOM_PORT',
      value: 'abc',
      allowed: /1 to 65535/,
    },
    {
      name: 'a port above 65535',
      env: { LOOM_PORT: '70000' },
      key: 'LOOM_PORT',
      value: '70000',
      allowed: /1 to 65535/,
    },
    {
      name: 'an unknown log level',
      env: { LOOM_LOG_LEVEL: 'loud' },
      key: 'LOOM_LOG_LEVEL',
      value: 'loud',
      allowed: /"fatal".*"error".*"warn".*"info".*"debug".*"trace".*"silent"/,
    },
    {
      name: 'an unknown LOOM_ setting',
      env: { LOOM_FOO: 'bar' },
      key: 'LOOM_FOO',
      value: 'bar',
      allowed: /unknown setting; known: LOOM_HOST, LOOM_PORT/,
    },
  ];
  for (const b of bad) {
    it(`exits 2 naming the key, the value and what is allowed for ${b.name}`, async () => {
      const r = await loom(['config'], b.env);
      assert.equal(r.code, 2, `stdout: ${r.stdout}\nstderr: ${r.stderr}`);
      assert.equal(r.stdout, '');
      const line = r.stderr.split('\n').find((l) => l.includes(b.key));
      assert.ok(line, `stderr names ${b.key}:\n${r.stderr}`);
      assert.ok(line.includes(JSON.stringify(b.value)), `stderr shows the value ${b.value}:\n${line}`);
      assert.match(line, b.allowed);
    });
  }

  it('lists every bad key at once', async () => {
    const r = await loom(['config'], { LOOM_PORT: 'abc', LOOM_LOG_LEVEL: 'loud', LOOM_FOO: 'bar' });
    assert.equal(r.code, 2);
    for (const k of ['LOOM_PORT', 'LOOM_LOG_LEVEL', 'LOOM_FOO']) assert.match(r.stderr, new RegExp(k));
  });

  it('never echoes a rejected admin password', async () => {
    const r = await loom(['config'], { LOOM_ADMIN_PASSWORD: 'short-pw' });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /LOOM_ADMIN_PASSWORD="\*\*\*": must be at least 12 characters/);
    assert.doesNotMatch(r.stderr, /short-pw/);
  });

  it('never echoes the password of a rejected database URL', async () => {
    const r = await loom(['config'], { LOOM_DATABASE_URL: 'mysql://loom:db-secret-pw@db.example/loom' });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /LOOM_DATABASE_URL=.*must be a postgres:\/\//);
    assert.doesNotMatch(r.stderr, /db-secret-pw/);
  });
});

describe('loom audit verify and loom user add on a PostgreSQL server', () => {
  const name = `loom_test_${randomBytes(6).toString('hex')}`;
  const url = withDatabase(SERVER_URL, name);
  let unreachable: string | undefined;
  let created = false;

  before(async () => {
    let admin: pg.Client;
    try {
      admin = await connect(SERVER_URL);
    } catch (e) {
      unreachable = `no PostgreSQL at ${SERVER_URL.replace(/:[^:@/]*@/, ':***@')}: ${(e as Error).message}`;
      return;
    }
    try {
      await admin.query(`CREATE DATABASE ${name}`);
      created = true;
    } finally {
      await admin.end();
    }
  });

  after(async () => {
    if (!created) return;
    const admin = await connect(SERVER_URL);
    try {
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    } finally {
      await admin.end();
    }
  });

  it('loom migrate applies the migrations to a fresh database, then reports it up to date', async (t) => {
    if (unreachable) return t.skip(unreachable);
    const first = await loom(['migrate'], { LOOM_DATABASE_URL: url });
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /applied: 0001_core/);
    const second = await loom(['migrate'], { LOOM_DATABASE_URL: url });
    assert.match(second.stdout, /database is up to date/);
  });

  it('migrates a fresh database on open and reports an intact, empty audit trail', async (t) => {
    if (unreachable) return t.skip(unreachable);
    const r = await loom(['audit', 'verify'], { LOOM_DATABASE_URL: url });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /audit trail intact: 0 entries, head \(empty\)/);
    const c = await connect(url);
    try {
      const m = await c.query<{ name: string }>('SELECT name FROM schema_migrations ORDER BY version');
      assert.ok(
        m.rows.some((row) => row.name === '0001_core'),
        'migration 0001_core applied',
      );
    } finally {
      await c.end();
    }
  });

  it('adds a user with the password from stdin, writing one audit entry', async (t) => {
    if (unreachable) return t.skip(unreachable);
    const r = await loom(
      ['user', 'add', 'bob', '--role', 'operator', '--password-stdin'],
      { LOOM_DATABASE_URL: url },
      'correct-horse-battery-9\n',
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /created user 'bob' \(id \d+, roles operator\)/);
    assert.doesNotMatch(r.stdout, /one-time password/);

    const v = await loom(['audit', 'verify'], { LOOM_DATABASE_URL: url });
    assert.equal(v.code, 0, v.stderr);
    assert.match(v.stdout, /audit trail intact: 1 entries, head [0-9a-f]{64}/);
  });

  it('refuses a role that does not exist with exit 2', async (t) => {
    if (unreachable) return t.skip(unreachable);
    const r = await loom(
      ['user', 'add', 'carl', '--role', 'wizard', '--password-stdin'],
      { LOOM_DATABASE_URL: url },
      'x',
    );
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--role wizard: not a role; allowed: operator, supervisor/);
  });

  it('exits 3 naming entry 1 after a superuser rewrote it behind the guard', async (t) => {
    if (unreachable) return t.skip(unreachable);
    const c = await connect(url);
    try {
      await c.query('SET session_replication_role = replica');
      const u = await c.query(`UPDATE audit_log SET reason = 'x' WHERE id = 1`);
      assert.equal(u.rowCount, 1, 'the tamper needs entry 1 (written by `loom user add`)');
    } finally {
      await c.end();
    }
    const r = await loom(['audit', 'verify'], { LOOM_DATABASE_URL: url });
    assert.equal(r.code, 3, `stdout: ${r.stdout}\nstderr: ${r.stderr}`);
    assert.match(r.stdout, /AUDIT TRAIL BROKEN at entry 1 \(hash-mismatch\)/);
    assert.match(r.stdout, /audit entry 1 was altered/);
  });

  it('loom deliver --once writes the due actuals to the outbound folder and prints what it did', async (t) => {
    if (unreachable) return t.skip(unreachable);
    const none = await loom(['deliver', '--once'], { LOOM_DATABASE_URL: url });
    assert.equal(none.code, 2, 'nothing to deliver to');
    assert.match(none.stderr, /outbound delivery is not configured/);

    const c = await connect(url);
    try {
      await c.query(
        `INSERT INTO outbox_events (aggregate_type, aggregate_id, event_type, payload)
         VALUES ('production-order', 'PO-CLI-1', 'OperationCompleted',
                 '{"order": "PO-CLI-1", "operation": 10, "good": "3", "scrap": "0", "unit": "pcs", "at": "2026-11-25T10:00:00.000Z"}')`,
      );
    } finally {
      await c.end();
    }
    const dir = await mkdtemp(path.join(tmpdir(), 'loom-cli-outbox-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const r = await loom(['deliver', '--once'], { LOOM_DATABASE_URL: url, LOOM_ERP_OUTBOX_DIR: dir });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /outbox: 1 due, 1 delivered, 0 failed \(retried later\), 0 dead-lettered/);
    assert.equal(readdirSync(dir).filter((f) => f.endsWith('.csv')).length, 1);
  });
});

describe('loom sim erp', () => {
  it('serves the ERP stand-in on the port given, prints its URL, and stops on SIGINT', async () => {
    const child = spawn(process.execPath, ['bin/loom.js', 'sim', 'erp', '--port', '0'], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    let stdout = '';
    const url = await new Promise<string>((resolve, reject) => {
      child.stdout.on('data', (b: Buffer) => {
        stdout += b.toString();
        const m = /ERP stand-in on (http:\/\/127\.0\.0\.1:\d+)/.exec(stdout);
        if (m) resolve(m[1]!);
      });
      child.on('close', () => reject(new Error(`exited before serving: ${stdout}`)));
    });
    assert.match(stdout, /LOOM_ERP_OUTBOUND_URL=http:\/\/127\.0\.0\.1:\d+\//);
    const res = await fetch(url);
    assert.ok(res.status < 500, `the stand-in answers (${res.status})`);
    await res.arrayBuffer();
    const closed = new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    child.kill('SIGINT');
    assert.equal(await closed, 0);
    clearTimeout(timer);
  });
});

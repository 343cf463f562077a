import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { loadConfig } from '../../src/config/config.ts';
import { composeLoom, type Loom } from '../../src/main/loom.ts';
import { ADMIN_PASSWORD, createTestApp, type TestApp } from '../support/app.ts';

/**
 * ADR 0013: two Loom instances on one database, as in a scale-out; each keeps sessions and API
 * tokens in memory between changes. A change made through one must end or alter the credential in
 * the other as well, within the time a notification takes, and at once in the one that made it.
 */
let a: TestApp;
let b: Loom;

before(async () => {
  a = await createTestApp();
  const config = loadConfig({ env: { LOOM_ADMIN_PASSWORD: ADMIN_PASSWORD, LOOM_LOG_LEVEL: 'silent' } });
  b = await composeLoom({ config, db: a.database.db, logger: pino({ level: 'silent' }), clock: a.clock });
  await b.app.ready();
  await a.loom.credentials.start();
  await b.credentials.start();
});
after(async () => {
  await b?.credentials.stop();
  await b?.app.close();
  await a?.loom.credentials.stop();
  await a?.close();
});

const me = async (loom: Loom, headers: Record<string, string>) =>
  (await loom.app.inject({ method: 'GET', url: '/api/auth/me', headers })).statusCode;

/** Polls until `check` holds (a notification crossing to the other instance), at most 5 s. */
async function eventually(what: string, check: () => Promise<boolean>): Promise<number> {
  const started = performance.now();
  while (performance.now() - started < 5000) {
    if (await check()) return performance.now() - started;
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.fail(`${what}: not within 5 s`);
}

/** Runs `check` with the shared clock `ms` later, then puts the clock back. */
async function later(ms: number, check: () => Promise<void>): Promise<void> {
  const now = a.clock.now();
  a.clock.set(new Date(now.getTime() + ms));
  try {
    await check();
  } finally {
    a.clock.set(now);
  }
}

/** Changes a credential's row without the change being announced (as a missed notification would). */
async function silently(sql: string, params: unknown[]): Promise<void> {
  const c = await a.database.superuser();
  try {
    await c.query('SET session_replication_role = replica'); // triggers off for this connection
    await c.query(sql, params);
  } finally {
    await c.end();
  }
}

describe('credential cache (ADR 0013)', () => {
  it('serves a session from memory once read: an unannounced revoke is not seen until the next read', async () => {
    const u = await a.userWithRoles('cached-anna', ['operator']);
    const cookie = { cookie: u.cookie };
    assert.equal(await me(b, cookie), 200);
    await silently('UPDATE sessions SET revoked_at = now() WHERE user_id = $1', [u.id]);
    // b read the session before: it answers from memory. a has made no request with it since the
    // login, so it reads the database.
    assert.equal(await me(b, cookie), 200, 'b serves the session it read before from memory');
    assert.equal(await me(a.loom, cookie), 401, 'a reads the database and finds it revoked');
    // A minute later the session would be touched: b reads the database again and refuses it.
    await later(61_000, async () => assert.equal(await me(b, cookie), 401));
  });

  it('a logout ends the session at once where it happened and within a notification elsewhere', async () => {
    const u = await a.userWithRoles('cached-ben', ['operator']);
    const cookie = { cookie: u.cookie };
    assert.equal(await me(a.loom, cookie), 200);
    assert.equal(await me(b, cookie), 200);
    assert.ok(a.loom.credentials.cache.size > 0 && b.credentials.cache.size > 0);
    const out = await a.app.inject({ method: 'POST', url: '/api/auth/logout', headers: cookie });
    assert.ok(out.statusCode < 300, `logout: ${out.statusCode} ${out.body}`);
    assert.equal(await me(a.loom, cookie), 401, 'the instance that logged out refuses at once');
    const ms = await eventually(
      'b refuses the logged-out session',
      async () => (await me(b, cookie)) === 401,
    );
    console.log(`logout reached the other instance after ${ms.toFixed(0)} ms`);
  });

  it('a role taken away or a user disabled on one instance applies on the other', async () => {
    const u = await a.userWithRoles('cached-carla', ['supervisor', 'quality']);
    const cookie = { cookie: u.cookie };
    const roles = async () =>
      (await b.app.inject({ method: 'GET', url: '/api/auth/me', headers: cookie })).json<{
        roles: string[];
      }>().roles;
    assert.deepEqual((await roles()).sort(), ['quality', 'supervisor']);
    const admin = { cookie: await a.adminCookie() };
    const patch = (payload: object) =>
      a.app.inject({ method: 'PATCH', url: `/api/users/${u.id}`, headers: admin, payload });
    assert.equal((await patch({ roles: ['operator'], reason: 'moved to the line' })).statusCode, 200);
    await eventually('b sees the new roles', async () => (await roles()).join() === 'operator');
    assert.equal((await patch({ disabled: true, reason: 'left the company' })).statusCode, 200);
    await eventually('b refuses the disabled user', async () => (await me(b, cookie)) === 401);
  });

  it('a revoked API token is refused on the other instance', async () => {
    const u = await a.userWithRoles('cached-erp', ['integration']);
    const admin = { cookie: await a.adminCookie() };
    const created = await a.app.inject({
      method: 'POST',
      url: '/api/tokens',
      headers: admin,
      payload: { userId: u.id, name: 'erp connector' },
    });
    assert.equal(created.statusCode, 201, created.body);
    const { token, id } = created.json<{ token: string; id: number }>();
    const bearer = { authorization: `Bearer ${token}` };
    assert.equal(await me(b, bearer), 200);
    assert.equal(await me(b, bearer), 200);
    const revoked = await a.app.inject({
      method: 'DELETE',
      url: `/api/tokens/${id}?reason=rotated`,
      headers: admin,
    });
    assert.equal(revoked.statusCode, 200, revoked.body);
    assert.equal(await me(a.loom, bearer), 401);
    await eventually('b refuses the revoked token', async () => (await me(b, bearer)) === 401);
  });

  it('an idle session ends although it is cached', async () => {
    const u = await a.userWithRoles('cached-idle', ['operator']);
    const cookie = { cookie: u.cookie };
    assert.equal(await me(b, cookie), 200);
    await later(31 * 60_000, async () => assert.equal(await me(b, cookie), 401));
  });

  it('serves nothing from memory while the LISTEN connection is lost, and resumes when it is back', async () => {
    const u = await a.userWithRoles('cached-dora', ['operator']);
    const cookie = { cookie: u.cookie };
    assert.equal(await me(b, cookie), 200);
    // End both instances' LISTEN connections (pg_terminate_backend): neither can hear of changes now.
    const killer = await a.database.superuser();
    try {
      const killed = await killer.query<{ n: number }>(
        `SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity
          WHERE datname = current_database() AND query = 'LISTEN "loom_credentials_changed"'`,
      );
      assert.equal(killed.rows[0]!.n, 2);
    } finally {
      await killer.end();
    }
    await eventually('b turns its cache off', async () => !b.credentials.cache.enabled);
    // A change nobody announces, made while b is deaf: b must read it from the database.
    await silently('UPDATE sessions SET revoked_at = now() WHERE user_id = $1', [u.id]);
    assert.equal(await me(b, cookie), 401);
    await eventually('b listens again and turns its cache back on', async () => b.credentials.cache.enabled);
    const v = await a.userWithRoles('cached-emil', ['operator']);
    assert.equal(await me(b, { cookie: v.cookie }), 200);
    assert.ok(b.credentials.cache.size > 0, 'b caches again');
  });
});

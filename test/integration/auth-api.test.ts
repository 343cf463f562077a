import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ADMIN_PASSWORD, cookieOf, createTestApp, type TestApp } from '../support/app.ts';

let t: TestApp;
before(async () => {
  t = await createTestApp();
});
after(async () => {
  await t?.close();
});

async function counts() {
  const r = await t.database.db.query<{ users: number; audit: number; tokens: number }>(
    `SELECT (SELECT count(*) FROM users)::int AS users, (SELECT count(*) FROM audit_log)::int AS audit,
            (SELECT count(*) FROM api_tokens)::int AS tokens`,
  );
  return r.rows[0]!;
}

describe('login and sessions', () => {
  it('logs the admin in with a session cookie that is HttpOnly and SameSite=Strict', async () => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/auth/login',
      payload: { username: 'admin', password: ADMIN_PASSWORD },
    });
    assert.equal(res.statusCode, 200);
    const c = res.cookies.find((x) => x.name === 'loom_session')!;
    assert.equal(c.httpOnly, true);
    assert.equal(c.sameSite, 'Strict');
    const me = await t.app.inject({ method: 'GET', url: '/api/auth/me', headers: { cookie: cookieOf(res) } });
    assert.equal(me.json().username, 'admin');
  });

  it('refuses a wrong password with the same answer as an unknown user', async () => {
    const a = await t.app.inject({
      method: 'POST',
      url: '/api/auth/login',
      payload: { username: 'admin', password: 'wrong-password-1' },
    });
    const b = await t.app.inject({
      method: 'POST',
      url: '/api/auth/login',
      payload: { username: 'nobody', password: 'wrong-password-1' },
    });
    assert.equal(a.statusCode, 401);
    assert.equal(b.statusCode, 401);
    assert.equal(a.json().detail, b.json().detail);
    assert.match(a.headers['content-type'] as string, /application\/problem\+json/);
  });

  it('locks an account after five failed logins, even for the right password', async () => {
    const u = await t.userWithRoles('locky', ['operator']);
    for (let i = 0; i < 5; i++) {
      await t.app.inject({
        method: 'POST',
        url: '/api/auth/login',
        payload: { username: 'locky', password: 'not-the-password' },
      });
    }
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/auth/login',
      payload: { username: 'locky', password: u.password },
    });
    assert.equal(res.statusCode, 423);
    assert.equal(res.json().code, 'LOOM_AUTH_LOCKED');
  });

  it('rejects an expired (idle) session', async () => {
    const u = await t.userWithRoles('idler', ['operator']);
    const now = t.clock.now();
    t.clock.set(new Date(now.getTime() + 31 * 60_000));
    const res = await t.app.inject({ method: 'GET', url: '/api/auth/me', headers: { cookie: u.cookie } });
    t.clock.set(now);
    assert.equal(res.statusCode, 401);
    assert.equal(res.json().code, 'LOOM_AUTH_UNAUTHENTICATED');
  });

  it('ends the session at logout', async () => {
    const u = await t.userWithRoles('leaver', ['operator']);
    const out = await t.app.inject({
      method: 'POST',
      url: '/api/auth/logout',
      headers: { cookie: u.cookie },
    });
    assert.equal(out.statusCode, 204);
    const res = await t.app.inject({ method: 'GET', url: '/api/auth/me', headers: { cookie: u.cookie } });
    assert.equal(res.statusCode, 401);
  });

  it('confines a user who must change their password to changing it, then issues a new session', async () => {
    const admin = await t.adminCookie();
    const create = await t.app.inject({
      method: 'POST',
      url: '/api/users',
      headers: { cookie: admin },
      payload: { username: 'newbie', displayName: 'New', password: 'initial-password-1', roles: ['admin'] },
    });
    assert.equal(create.statusCode, 201);
    const cookie = await t.login('newbie', 'initial-password-1');
    const blocked = await t.app.inject({ method: 'GET', url: '/api/users', headers: { cookie } });
    assert.equal(blocked.statusCode, 403);
    assert.equal(blocked.json().code, 'LOOM_AUTH_PASSWORD_CHANGE_REQUIRED');
    const change = await t.app.inject({
      method: 'POST',
      url: '/api/auth/password',
      headers: { cookie },
      payload: { currentPassword: 'initial-password-1', newPassword: 'a-much-better-passphrase' },
    });
    assert.equal(change.statusCode, 204);
    const fresh = cookieOf(change);
    assert.notEqual(fresh, cookie);
    assert.equal(
      (await t.app.inject({ method: 'GET', url: '/api/users', headers: { cookie } })).statusCode,
      401,
    );
    assert.equal(
      (await t.app.inject({ method: 'GET', url: '/api/users', headers: { cookie: fresh } })).statusCode,
      200,
    );
  });
});

describe('roles and tokens', () => {
  it('forbids an operator from calling an admin route, naming the roles needed', async () => {
    const op = await t.userWithRoles('op1', ['operator']);
    const before = await counts();
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/users',
      headers: { cookie: op.cookie },
      payload: { username: 'evil', displayName: 'x', password: 'some-long-password', roles: ['admin'] },
    });
    assert.equal(res.statusCode, 403);
    assert.equal(res.json().code, 'LOOM_AUTH_FORBIDDEN');
    assert.match(res.json().detail, /admin/);
    assert.deepEqual(await counts(), before);
  });

  it('accepts a bearer token and refuses it once its user is disabled, and once revoked', async () => {
    const admin = await t.adminCookie();
    const erp = await t.userWithRoles('erp-bot', ['integration']);
    const created = await t.app.inject({
      method: 'POST',
      url: '/api/tokens',
      headers: { cookie: admin },
      payload: { userId: erp.id, name: 'SAP' },
    });
    assert.equal(created.statusCode, 201);
    const { token, id } = created.json<{ token: string; id: number }>();
    assert.match(token, /^loom_[0-9a-f]{8}_/);
    const stored = await t.database.db.query('SELECT token_hash FROM api_tokens WHERE id = $1', [id]);
    assert.notEqual(stored.rows[0]!.token_hash, token, 'tokens are stored hashed');
    const bearer = { authorization: `Bearer ${token}` };
    assert.equal(
      (await t.app.inject({ method: 'GET', url: '/api/auth/me', headers: bearer })).statusCode,
      200,
    );

    await t.app.inject({
      method: 'PATCH',
      url: `/api/users/${erp.id}`,
      headers: { cookie: admin },
      payload: { disabled: true, reason: 'left' },
    });
    const disabled = await t.app.inject({ method: 'GET', url: '/api/auth/me', headers: bearer });
    assert.equal(disabled.statusCode, 401);
    const sessionGone = await t.app.inject({
      method: 'GET',
      url: '/api/auth/me',
      headers: { cookie: erp.cookie },
    });
    assert.equal(sessionGone.statusCode, 401, 'disabling a user ends their sessions');

    await t.app.inject({
      method: 'PATCH',
      url: `/api/users/${erp.id}`,
      headers: { cookie: admin },
      payload: { disabled: false },
    });
    assert.equal(
      (await t.app.inject({ method: 'GET', url: '/api/auth/me', headers: bearer })).statusCode,
      200,
    );
    const revoked = await t.app.inject({
      method: 'DELETE',
      url: `/api/tokens/${id}?reason=rotated`,
      headers: { cookie: admin },
    });
    assert.equal(revoked.statusCode, 200);
    assert.equal(
      (await t.app.inject({ method: 'GET', url: '/api/auth/me', headers: bearer })).statusCode,
      401,
    );
  });

  it('refuses a malformed Authorization header', async () => {
    const res = await t.app.inject({
      method: 'GET',
      url: '/api/users',
      headers: { authorization: 'Basic YWRtaW46eA==' },
    });
    assert.equal(res.statusCode, 401);
  });

  it('stores passwords as argon2id hashes', async () => {
    const r = await t.database.db.query<{ password_hash: string }>(
      "SELECT password_hash FROM users WHERE username = 'admin'",
    );
    assert.match(r.rows[0]!.password_hash, /^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
  });
});

describe('bad input changes nothing', () => {
  const cases: [string, Record<string, unknown>][] = [
    ['malformed JSON', { payload: '{"username": "x",', headers: { 'content-type': 'application/json' } }],
    [
      'a wrong type',
      { payload: { username: 'x1', displayName: 'X', password: 'long-enough-password', roles: 'admin' } },
    ],
    [
      'an unknown field',
      {
        payload: {
          username: 'x2',
          displayName: 'X',
          password: 'long-enough-password',
          roles: ['operator'],
          isRoot: true,
        },
      },
    ],
    [
      'a missing required field',
      { payload: { username: 'x3', password: 'long-enough-password', roles: ['operator'] } },
    ],
    [
      'an unknown role',
      { payload: { username: 'x4', displayName: 'X', password: 'long-enough-password', roles: ['god'] } },
    ],
    [
      'a SQL-looking username',
      {
        payload: {
          username: "x'; DROP TABLE users;--",
          displayName: 'X',
          password: 'long-enough-password',
          roles: ['operator'],
        },
      },
    ],
    [
      'a too-short password',
      { payload: { username: 'x5', displayName: 'X', password: 'short', roles: ['operator'] } },
    ],
    [
      'an oversized body',
      {
        payload: {
          username: 'x6',
          displayName: 'X'.repeat(2 * 1024 * 1024),
          password: 'long-enough-password',
          roles: ['operator'],
        },
      },
    ],
  ];
  for (const [name, req] of cases) {
    it(`answers ${name} with a 4xx problem naming the field, and creates nothing`, async () => {
      const admin = await t.adminCookie();
      const before = await counts();
      const res = await t.app.inject({
        method: 'POST',
        url: '/api/users',
        ...req,
        headers: { cookie: admin, ...((req.headers as Record<string, string>) ?? {}) },
      } as never);
      assert.ok(res.statusCode >= 400 && res.statusCode < 500, `${res.statusCode} ${res.body}`);
      assert.match(res.headers['content-type'] as string, /application\/problem\+json/);
      const body = res.json<{ code: string; detail: string; issues?: { path: string }[] }>();
      assert.match(body.code, /^LOOM_/);
      if (res.statusCode === 400 && body.code === 'LOOM_VALIDATION_FAILED') {
        assert.ok(body.issues?.length, 'names the field');
      }
      assert.deepEqual(await counts(), before);
    });
  }

  it('names the unknown field', async () => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/users',
      headers: { cookie: await t.adminCookie() },
      payload: {
        username: 'x7',
        displayName: 'X',
        password: 'long-enough-password',
        roles: ['operator'],
        isRoot: true,
      },
    });
    assert.equal(res.statusCode, 400);
    assert.match(JSON.stringify(res.json().issues), /isRoot/);
  });

  it('answers an unknown route with a problem, and the OpenAPI document is served', async () => {
    assert.equal((await t.app.inject({ method: 'GET', url: '/api/nope' })).statusCode, 401);
    const spec = await t.app.inject({ method: 'GET', url: '/api/openapi.json' });
    assert.equal(spec.statusCode, 200);
    assert.ok(spec.json().paths['/api/users']);
  });
});

describe('login throttling', () => {
  it('rate-limits repeated logins for one username from one address', async () => {
    const codes: number[] = [];
    for (let i = 0; i < 11; i++) {
      const r = await t.app.inject({
        method: 'POST',
        url: '/api/auth/login',
        payload: { username: 'throttled', password: 'whatever-password' },
      });
      codes.push(r.statusCode);
    }
    assert.deepEqual(codes.slice(0, 10), Array(10).fill(401));
    assert.equal(codes[10], 429);
  });
});

describe('API documentation', () => {
  it('serves the docs page to anyone, and every API route in the OpenAPI document', async () => {
    const page = await t.app.inject({ method: 'GET', url: '/api/docs/' });
    assert.equal(page.statusCode, 200);
    assert.match(page.headers['content-type'] as string, /text\/html/);
    const spec = (await t.app.inject({ method: 'GET', url: '/api/openapi.json' })).json();
    assert.equal(spec.openapi, '3.0.3');
    for (const path of [
      '/api/auth/login',
      '/api/plant/import',
      '/api/orders',
      '/api/operations/{id}/start',
      '/api/audit/verify',
    ]) {
      assert.ok(spec.paths[path], `${path} is documented`);
    }
  });
});

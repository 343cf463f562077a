import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createTestApp, type TestApp } from '../support/app.ts';

let t: TestApp;
before(async () => {
  t = await createTestApp();
});
after(async () => {
  await t?.close();
});

describe('audit trail', () => {
  it('records who, what, old and new values in the same transaction as the change', async () => {
    const admin = await t.adminCookie();
    const u = await t.userWithRoles('audited', ['operator']);
    await t.app.inject({
      method: 'PATCH',
      url: `/api/users/${u.id}`,
      headers: { cookie: admin },
      payload: { roles: ['operator', 'supervisor'], reason: 'promoted to shift lead' },
    });
    const res = await t.app.inject({
      method: 'GET',
      url: `/api/audit?entityType=user&entityId=${u.id}`,
      headers: { cookie: admin },
    });
    assert.equal(res.statusCode, 200);
    const entries = res.json().entries as {
      action: string;
      actorName: string;
      reason: string;
      oldValue: { roles: string[] };
      newValue: { roles: string[] };
      at: string;
    }[];
    assert.deepEqual(
      entries.map((e) => e.action),
      ['user.created', 'user.updated'],
    );
    const upd = entries[1]!;
    assert.equal(upd.actorName, 'admin');
    assert.equal(upd.reason, 'promoted to shift lead');
    assert.deepEqual(upd.oldValue.roles, ['operator']);
    assert.deepEqual(upd.newValue.roles, ['operator', 'supervisor']);
    assert.match(upd.at, /Z$/);
  });

  it('filters by user', async () => {
    const admin = await t.adminCookie();
    const res = await t.app.inject({
      method: 'GET',
      url: '/api/audit?user=admin&limit=1000',
      headers: { cookie: admin },
    });
    assert.ok((res.json().entries as { actorName: string }[]).every((e) => e.actorName === 'admin'));
  });

  it('rejects UPDATE, DELETE and TRUNCATE at the database', async () => {
    for (const sql of [
      'UPDATE audit_log SET reason = $1',
      'DELETE FROM audit_log WHERE reason = $1 OR true',
      'TRUNCATE audit_log',
    ]) {
      await assert.rejects(t.database.db.query(sql, sql.includes('$1') ? ['x'] : []), /append-only/);
    }
  });

  it('keeps one unbroken chain when many transactions append at once', async () => {
    const admin = await t.adminCookie();
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        t.app.inject({
          method: 'POST',
          url: '/api/users',
          headers: { cookie: admin },
          payload: {
            username: `par${i}`,
            displayName: 'P',
            password: 'parallel-password-1',
            roles: ['operator'],
          },
        }),
      ),
    );
    const v = await t.app.inject({ method: 'GET', url: '/api/audit/verify', headers: { cookie: admin } });
    assert.equal(v.json().ok, true, v.body);
    assert.ok(v.json().entries >= 21);
  });

  it('names the tampered entry when a row is changed behind the guard', async () => {
    const admin = await t.adminCookie();
    const su = await t.database.superuser();
    try {
      await su.query('SET session_replication_role = replica');
      await su.query("UPDATE audit_log SET reason = 'nothing to see' WHERE seq = 2");
    } finally {
      await su.end();
    }
    const v = await t.app.inject({ method: 'GET', url: '/api/audit/verify', headers: { cookie: admin } });
    const body = v.json();
    assert.equal(body.ok, false);
    assert.equal(body.brokenAt, 2);
    assert.equal(body.reason, 'hash-mismatch');
  });
});

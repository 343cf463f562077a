import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createTestApp, type TestApp } from '../support/app.ts';

/**
 * Waits until every audit entry is chained. An entry is chained once its transaction is older
 * than every running one in the whole PostgreSQL cluster (ADR 0005), and other test files share
 * the cluster: a tamper test that changed an entry not yet chained would prove nothing.
 */
async function allChained(app: TestApp): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    await app.loom.audit.chainPending();
    const r = await app.database.db.query<{ pending: number }>(
      `SELECT count(*)::int AS pending FROM audit_log l
        WHERE NOT EXISTS (SELECT 1 FROM audit_chain c WHERE c.entry_id = l.id)`,
    );
    if (r.rows[0]?.pending === 0) return;
    if (Date.now() > deadline)
      throw new Error(`${r.rows[0]?.pending} audit entries still unchained after 30 s`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

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
    await allChained(t);
    const v = await t.app.inject({ method: 'GET', url: '/api/audit/verify', headers: { cookie: admin } });
    assert.equal(v.json().ok, true, v.body);
    assert.ok(v.json().entries >= 21, v.body);
  });

  it('chains an entry whose transaction commits late, after later ones, and never skips it', async () => {
    const slow = await t.database.db.pool.connect();
    try {
      await slow.query('BEGIN');
      await slow.query(
        `INSERT INTO audit_log (txid, at, actor_name, action, entity_type, entity_id) VALUES ('0', now(), 'slow', 'test.slow', 'test', 'slow')`,
      );
      const admin = await t.adminCookie();
      await t.app.inject({
        method: 'POST',
        url: '/api/users',
        headers: { cookie: admin },
        payload: {
          username: 'after-slow',
          displayName: 'A',
          password: 'a-password-for-the-later-user',
          roles: ['operator'],
        },
      });
      const during = await t.loom.audit.verify();
      assert.ok(during.ok);
      assert.ok(
        during.ok && during.pending >= 1,
        'the running transaction holds its entry and later ones pending',
      );
      await slow.query('COMMIT');
    } finally {
      slow.release();
    }
    // The chain horizon is cluster-wide (ADR 0005): another test file's open transaction may hold
    // it back for a moment, so wait for the chainer rather than expect it done at once.
    await allChained(t);
    const after = await t.loom.audit.verify();
    assert.ok(after.ok && after.pending === 0, JSON.stringify(after));
    const [slowEntry] = await t.loom.audit.list({ entityType: 'test', entityId: 'slow', limit: 1 });
    assert.ok(slowEntry?.chain, 'the late entry is in the chain');
  });

  it('writers do not wait for each other: an open transaction with an entry does not block another writer', async () => {
    const open = await t.database.db.pool.connect();
    try {
      await open.query('BEGIN');
      await open.query(
        `INSERT INTO audit_log (txid, at, actor_name, action, entity_type, entity_id) VALUES ('0', now(), 'x', 'test.open', 'test', 'open')`,
      );
      await t.database.db.query("SET statement_timeout = '2s'");
      await t.loom.uow.run((tx) =>
        t.loom.audit.append(tx, {
          actor: { userId: null, username: 'y', roles: [] },
          action: 'test.other',
          entityType: 'test',
          entityId: 'other',
        }),
      );
    } finally {
      await open.query('ROLLBACK');
      open.release();
    }
  });

  it('names the tampered entry when a row is changed behind the guard', async () => {
    const admin = await t.adminCookie();
    await allChained(t);
    const su = await t.database.superuser();
    try {
      await su.query('SET session_replication_role = replica');
      await su.query("UPDATE audit_log SET reason = 'nothing to see' WHERE id = 2");
    } finally {
      await su.end();
    }
    const v = await t.app.inject({ method: 'GET', url: '/api/audit/verify', headers: { cookie: admin } });
    const body = v.json();
    assert.equal(body.ok, false);
    assert.equal(body.brokenAt, 2);
    assert.equal(body.reason, 'hash-mismatch');
  });

  it('names a deleted entry', async () => {
    const d = await createTestApp();
    try {
      const admin = await d.adminCookie();
      await d.userWithRoles('del1', ['operator']);
      assert.equal((await d.loom.audit.verify()).ok, true);
      await allChained(d);
      const su = await d.database.superuser();
      try {
        await su.query('SET session_replication_role = replica');
        await su.query('DELETE FROM audit_log WHERE id = 1');
      } finally {
        await su.end();
      }
      const v = await d.app.inject({ method: 'GET', url: '/api/audit/verify', headers: { cookie: admin } });
      assert.equal(v.json().ok, false);
      assert.equal(v.json().brokenAt, 1);
      assert.equal(v.json().reason, 'entry-missing');
    } finally {
      await d.close();
    }
  });
});

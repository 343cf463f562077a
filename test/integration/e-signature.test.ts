import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Principal } from '../../src/app/auth/auth-service.ts';
import { contentHash } from '../../src/app/auth/tokens.ts';
import { createTestApp, type TestApp } from '../support/app.ts';

let t: TestApp;
before(async () => {
  t = await createTestApp();
});
after(async () => {
  await t?.close();
});

describe('electronic signature helper', () => {
  it('signs with the re-entered password and a meaning, bound to the record content, and records it with the audit entry', async () => {
    const q = await t.userWithRoles('qe1', ['quality']);
    const principal: Principal = {
      userId: q.id,
      username: 'qe1',
      roles: ['quality'],
      via: 'session',
      mustChangePassword: false,
    };
    const record = { lot: 'L-1', status: 'Released' };
    const wrong = await t.loom.auth.sign(
      principal,
      { password: 'not-my-password', meaning: 'Released' },
      record,
    );
    assert.equal(wrong.ok, false);
    assert.equal(!wrong.ok && wrong.error.code, 'LOOM_SIGNATURE_INVALID');

    const signed = await t.loom.auth.sign(
      principal,
      { password: q.password, meaning: 'Approved for release' },
      record,
    );
    assert.ok(signed.ok);
    assert.equal(
      signed.value.recordHash,
      contentHash({ status: 'Released', lot: 'L-1' }),
      'key order does not matter',
    );
    assert.match(signed.value.signerName, /qe1/);
    await t.loom.uow.run((tx) =>
      t.loom.audit.append(tx, {
        actor: principal,
        action: 'lot.released',
        entityType: 'lot',
        entityId: 'L-1',
        newValue: record,
        signature: signed.value,
      }),
    );
    const [entry] = await t.loom.audit.list({ entityType: 'lot', entityId: 'L-1', limit: 10 });
    assert.equal(entry?.signature?.meaning, 'Approved for release');
    assert.equal(entry?.signature?.signerId, q.id);
    assert.equal((await t.loom.audit.verify()).ok, true);
  });

  it('refuses to sign with an API token: a signature is a person’s act', async () => {
    const principal: Principal = {
      userId: 1,
      username: 'admin',
      roles: ['admin'],
      via: 'token',
      mustChangePassword: false,
    };
    const r = await t.loom.auth.sign(principal, { password: 'x', meaning: 'y' }, {});
    assert.equal(!r.ok && r.error.code, 'LOOM_SIGNATURE_REQUIRES_PERSON');
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkPasswordPolicy, lockoutAfterFailure, LOCKOUT_THRESHOLD } from './password-policy.ts';

describe('password policy', () => {
  it('refuses a password shorter than 12 characters and names the field', () => {
    assert.deepEqual(checkPasswordPolicy('short', 'ann'), [
      { path: 'password', message: 'must be at least 12 characters' },
    ]);
  });
  it('refuses a password that contains the username', () => {
    assert.equal(
      checkPasswordPolicy('xx-operator1-xx', 'operator1')[0]?.message,
      'must not contain the username',
    );
  });
  it('accepts a long passphrase', () => {
    assert.deepEqual(checkPasswordPolicy('correct horse battery staple', 'ann'), []);
  });
  it('locks an account only once the failure threshold is reached', () => {
    const now = new Date('2026-01-01T00:00:00Z');
    assert.equal(lockoutAfterFailure(LOCKOUT_THRESHOLD - 1, now), null);
    assert.equal(lockoutAfterFailure(LOCKOUT_THRESHOLD, now)?.toISOString(), '2026-01-01T00:15:00.000Z');
  });
});

import type { FieldIssue } from '../shared/result.ts';

/** OWASP ASVS 5.0 §6.2: length over composition rules; at least 12 characters, at most 128. */
export const PASSWORD_MIN = 12;
export const PASSWORD_MAX = 128;

export function checkPasswordPolicy(password: string, username: string, field = 'password'): FieldIssue[] {
  const issues: FieldIssue[] = [];
  if ([...password].length < PASSWORD_MIN) {
    issues.push({ path: field, message: `must be at least ${PASSWORD_MIN} characters` });
  }
  if ([...password].length > PASSWORD_MAX) {
    issues.push({ path: field, message: `must be at most ${PASSWORD_MAX} characters` });
  }
  if (password.toLowerCase().includes(username.toLowerCase())) {
    issues.push({ path: field, message: 'must not contain the username' });
  }
  return issues;
}

/** Lockout after repeated failures: 5 failures lock for 15 minutes (ASVS 5.0 §6.3.1 throttling). */
export const LOCKOUT_THRESHOLD = 5;
export const LOCKOUT_MINUTES = 15;

export function lockoutAfterFailure(failedLogins: number, now: Date): Date | null {
  return failedLogins >= LOCKOUT_THRESHOLD ? new Date(now.getTime() + LOCKOUT_MINUTES * 60_000) : null;
}

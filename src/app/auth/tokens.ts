import { createHash, randomBytes } from 'node:crypto';

/** 256-bit random secrets, URL-safe. Stored only as SHA-256 digests. */
export function newSecret(): string {
  return randomBytes(32).toString('base64url');
}

export function digest(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

/** API tokens look like `loom_<prefix>_<secret>`: the prefix is shown in lists to tell tokens apart. */
export function newApiToken(): { token: string; prefix: string } {
  const prefix = randomBytes(4).toString('hex');
  return { token: `loom_${prefix}_${newSecret()}`, prefix };
}

/** A readable random password for the first admin (printed once, must be changed). */
export function newInitialPassword(): string {
  return randomBytes(18).toString('base64url');
}

/** Canonical JSON (sorted keys) so a record's content hash does not depend on key order. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

export function contentHash(value: unknown): string {
  return createHash('sha256').update(canonicalJson(value)).digest('hex');
}

import { hash, verify, type Algorithm } from '@node-rs/argon2';
import type { PasswordHasher } from '../../app/ports.ts';

/** argon2id with at least the OWASP minimum (m = 19 MiB, t = 2, p = 1; RELIABILITY.md). */
export function argon2PasswordHasher(opts: { memoryCost?: number; timeCost?: number } = {}): PasswordHasher {
  const params = {
    algorithm: 2 as Algorithm, // Algorithm.Argon2id (a const enum, not importable under verbatimModuleSyntax)
    memoryCost: opts.memoryCost ?? 19_456,
    timeCost: opts.timeCost ?? 2,
    parallelism: 1,
  };
  return {
    hash: (password) => hash(password, params),
    async verify(h, password) {
      try {
        return await verify(h, password);
      } catch {
        return false;
      }
    },
  };
}

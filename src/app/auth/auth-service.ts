import { checkPasswordPolicy, lockoutAfterFailure } from '../../domain/auth/password-policy.ts';
import type { Actor, Role } from '../../domain/auth/roles.ts';
import type { Clock } from '../../domain/shared/clock.ts';
import { fail, ok, type Result } from '../../domain/shared/result.ts';
import type {
  ApiTokenRecord,
  AuditTrail,
  ElectronicSignature,
  PasswordHasher,
  SessionRecord,
  UnitOfWork,
  UserRecord,
  UserStore,
} from '../ports.ts';
import type { CredentialCache } from './credential-cache.ts';
import { contentHash, digest, newApiToken, newInitialPassword, newSecret } from './tokens.ts';

export interface AuthDeps {
  readonly uow: UnitOfWork;
  readonly users: UserStore;
  readonly audit: AuditTrail;
  readonly hasher: PasswordHasher;
  readonly clock: Clock;
  readonly sessionIdleMinutes: number;
  readonly sessionMaxHours: number;
  /**
   * Sessions and tokens between changes (ADR 0013); without one, every request reads its
   * credential from the database. The composition root turns it on once it LISTENs for changes.
   */
  readonly credentials?: CredentialCache<CachedCredential>;
}

/** A session or API token as authenticate* last read it, with the last use it recorded. */
export type CachedCredential =
  | { readonly kind: 'session'; readonly record: SessionRecord; readonly lastSeenAt: Date }
  | {
      readonly kind: 'token';
      readonly record: ApiTokenRecord & { user: UserRecord };
      readonly lastUsedAt: Date;
    };

/** Last use is recorded at most once a minute; a credential not used for that long is read again. */
const TOUCH_MS = 60_000;

/** What an authenticated request carries. `mustChangePassword` confines it to changing the password. */
export interface Principal extends Actor {
  readonly userId: number;
  readonly via: 'session' | 'token';
  readonly mustChangePassword: boolean;
  readonly sessionTokenHash?: string;
}

export interface PublicUser {
  readonly id: number;
  readonly username: string;
  readonly displayName: string;
  readonly roles: Role[];
  readonly mustChangePassword: boolean;
  readonly disabled: boolean;
  readonly lockedUntil: string | null;
  readonly createdAt: string;
}

export function publicUser(u: UserRecord): PublicUser {
  return {
    id: u.id,
    username: u.username,
    displayName: u.displayName,
    roles: u.roles,
    mustChangePassword: u.mustChangePassword,
    disabled: u.disabledAt !== null,
    lockedUntil: u.lockedUntil?.toISOString() ?? null,
    createdAt: u.createdAt.toISOString(),
  };
}

function principalOf(u: UserRecord, via: Principal['via'], sessionTokenHash?: string): Principal {
  return {
    userId: u.id,
    username: u.username,
    roles: u.roles,
    via,
    mustChangePassword: u.mustChangePassword,
    ...(sessionTokenHash ? { sessionTokenHash } : {}),
  };
}

/**
 * Users, sessions, API tokens and electronic signatures. Each method that changes state is one
 * transaction that also writes its audit entry.
 */
export class AuthService {
  // A hash to verify against when the user does not exist, so a wrong username costs as much time
  // as a wrong password and response timing does not reveal which accounts exist.
  #dummyHash: Promise<string> | undefined;

  constructor(private readonly deps: AuthDeps) {}

  /** First start: create `admin`. Returns the generated password to print once, if one was generated. */
  async bootstrapAdmin(
    password: string | undefined,
  ): Promise<{ created: boolean; generatedPassword?: string }> {
    const { uow, users, audit, hasher } = this.deps;
    const generated = password ? undefined : newInitialPassword();
    const hash = await hasher.hash(password ?? generated!);
    return uow.run(async (tx) => {
      if ((await users.count(tx)) > 0) return { created: false };
      const user = await users.insert(tx, {
        username: 'admin',
        displayName: 'Administrator',
        passwordHash: hash,
        roles: ['admin'],
        mustChangePassword: generated !== undefined,
      });
      await audit.append(tx, {
        actor: { userId: null, username: 'system', roles: [] },
        action: 'user.created',
        entityType: 'user',
        entityId: String(user.id),
        reason: 'first start',
        newValue: publicUser(user),
      });
      return generated ? { created: true, generatedPassword: generated } : { created: true };
    });
  }

  async login(input: {
    username: string;
    password: string;
    clientIp: string | null;
    userAgent: string | null;
  }): Promise<Result<{ sessionToken: string; user: PublicUser; expiresAt: Date }>> {
    const { uow, users, audit, hasher, clock } = this.deps;
    const username = input.username.toLowerCase();
    const user = await users.findByUsername(null, username);
    if (!user) {
      await hasher.verify(await this.#dummy(), input.password);
      return fail('LOOM_AUTH_INVALID_CREDENTIALS', 'Invalid username or password.');
    }
    const now = clock.now();
    if (user.lockedUntil && user.lockedUntil > now) {
      return fail(
        'LOOM_AUTH_LOCKED',
        `Too many failed logins: the account is locked until ${user.lockedUntil.toISOString()}. Wait, or ask an admin to unlock it.`,
      );
    }
    const good = await hasher.verify(user.passwordHash, input.password);
    if (!good || user.disabledAt) {
      if (!good) {
        await uow.run(async (tx) => {
          const fresh = await users.findById(tx, user.id, true);
          if (!fresh) return;
          const failed = fresh.failedLogins + 1;
          const lockedUntil = lockoutAfterFailure(failed, now);
          await users.update(tx, user.id, { failedLogins: lockedUntil ? 0 : failed, lockedUntil });
          if (lockedUntil) {
            await audit.append(tx, {
              actor: { userId: user.id, username: user.username, roles: user.roles },
              action: 'user.locked',
              entityType: 'user',
              entityId: String(user.id),
              reason: `${failed} failed logins`,
              newValue: { lockedUntil: lockedUntil.toISOString() },
            });
          }
        });
      }
      return fail('LOOM_AUTH_INVALID_CREDENTIALS', 'Invalid username or password.');
    }
    const sessionToken = newSecret();
    const expiresAt = new Date(now.getTime() + this.deps.sessionMaxHours * 3_600_000);
    await uow.run(async (tx) => {
      if (user.failedLogins > 0 || user.lockedUntil) {
        await users.update(tx, user.id, { failedLogins: 0, lockedUntil: null });
      }
      await users.insertSession(tx, {
        tokenHash: digest(sessionToken),
        userId: user.id,
        at: now,
        expiresAt,
        clientIp: input.clientIp,
        userAgent: input.userAgent,
      });
    });
    return ok({ sessionToken, user: publicUser(user), expiresAt });
  }

  /** Resolves a session cookie. Idle and absolute lifetimes both apply; a disabled user has no session. */
  async authenticateSession(sessionToken: string): Promise<Principal | null> {
    const { users, clock, credentials } = this.deps;
    const tokenHash = digest(sessionToken);
    const key = `s:${tokenHash}`;
    const now = clock.now();
    const cached = credentials?.get(key);
    if (cached?.kind === 'session' && now.getTime() - cached.lastSeenAt.getTime() <= TOUCH_MS) {
      return this.#sessionPrincipal(cached.record, cached.lastSeenAt, tokenHash, now);
    }
    const readAt = credentials?.generation() ?? 0;
    const s = await users.findSession(tokenHash);
    if (!s || s.revokedAt || s.user.disabledAt) return null;
    const principal = this.#sessionPrincipal(s, s.lastSeenAt, tokenHash, now);
    if (!principal) return null;
    let lastSeenAt = s.lastSeenAt;
    // Touch at most once a minute: idle tracking does not need a write per request.
    if (now.getTime() - lastSeenAt.getTime() > TOUCH_MS) {
      await users.touchSession(tokenHash, now);
      lastSeenAt = now;
    }
    credentials?.set(key, { kind: 'session', record: s, lastSeenAt }, readAt);
    return principal;
  }

  #sessionPrincipal(s: SessionRecord, lastSeenAt: Date, tokenHash: string, now: Date): Principal | null {
    if (s.expiresAt <= now) return null;
    if (now.getTime() - lastSeenAt.getTime() > this.deps.sessionIdleMinutes * 60_000) return null;
    return principalOf(s.user, 'session', tokenHash);
  }

  async authenticateToken(bearer: string): Promise<Principal | null> {
    const { users, clock, credentials } = this.deps;
    const tokenHash = digest(bearer);
    const key = `t:${tokenHash}`;
    const now = clock.now();
    const cached = credentials?.get(key);
    if (cached?.kind === 'token' && now.getTime() - cached.lastUsedAt.getTime() <= TOUCH_MS) {
      const t = cached.record;
      if (t.expiresAt && t.expiresAt <= now) return null;
      return { ...principalOf(t.user, 'token'), mustChangePassword: false };
    }
    const readAt = credentials?.generation() ?? 0;
    const t = await users.findToken(tokenHash);
    if (!t || t.revokedAt || t.user.disabledAt || (t.expiresAt && t.expiresAt <= now)) return null;
    let lastUsedAt = t.lastUsedAt;
    if (!lastUsedAt || now.getTime() - lastUsedAt.getTime() > TOUCH_MS) {
      await users.touchToken(t.id, now);
      lastUsedAt = now;
    }
    credentials?.set(key, { kind: 'token', record: t, lastUsedAt }, readAt);
    return { ...principalOf(t.user, 'token'), mustChangePassword: false };
  }

  /**
   * Runs a change to users, sessions or tokens, then drops this process's cached credentials at
   * once (other processes hear of it through the change notification, ADR 0013).
   */
  async #changingCredentials<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } finally {
      this.deps.credentials?.invalidate();
    }
  }

  async logout(principal: Principal): Promise<void> {
    const tokenHash = principal.sessionTokenHash;
    if (tokenHash) await this.#changingCredentials(() => this.deps.users.revokeSession(null, tokenHash));
  }

  /**
   * Re-authentication gives a new session id (ASVS 5.0 §7.2.4) and ends every other session of the
   * user, so a stolen session does not survive a password change.
   */
  async changePassword(
    principal: Principal,
    input: { currentPassword: string; newPassword: string },
    requestId: string | null,
  ): Promise<Result<{ sessionToken: string | null }>> {
    const { uow, users, audit, hasher } = this.deps;
    const user = await users.findById(null, principal.userId);
    if (!user) return fail('LOOM_AUTH_UNAUTHENTICATED', 'Log in first.');
    if (!(await hasher.verify(user.passwordHash, input.currentPassword))) {
      return fail('LOOM_AUTH_INVALID_CREDENTIALS', 'The current password is wrong.', {
        issues: [{ path: 'currentPassword', message: 'does not match your password' }],
      });
    }
    const issues = checkPasswordPolicy(input.newPassword, user.username, 'newPassword');
    if (input.newPassword === input.currentPassword) {
      issues.push({ path: 'newPassword', message: 'must differ from the current password' });
    }
    if (issues.length > 0)
      return fail('LOOM_VALIDATION_FAILED', 'The new password is not acceptable.', { issues });
    const hash = await hasher.hash(input.newPassword);
    const sessionToken = principal.via === 'session' ? newSecret() : null;
    await this.#changingCredentials(() =>
      uow.run(async (tx) => {
        await users.update(tx, user.id, { passwordHash: hash, mustChangePassword: false });
        await users.revokeAllSessions(tx, user.id);
        if (sessionToken) {
          await users.insertSession(tx, {
            tokenHash: digest(sessionToken),
            userId: user.id,
            at: this.deps.clock.now(),
            expiresAt: new Date(this.deps.clock.now().getTime() + this.deps.sessionMaxHours * 3_600_000),
            clientIp: null,
            userAgent: null,
          });
        }
        await audit.append(tx, {
          actor: principal,
          action: 'user.password-changed',
          entityType: 'user',
          entityId: String(user.id),
          requestId,
        });
      }),
    );
    return ok({ sessionToken });
  }

  async createUser(
    actor: Actor,
    input: {
      username: string;
      displayName: string;
      password: string;
      roles: Role[];
      mustChangePassword?: boolean;
    },
    requestId: string | null,
  ): Promise<Result<PublicUser>> {
    const { uow, users, audit, hasher } = this.deps;
    const username = input.username.toLowerCase();
    const issues = checkPasswordPolicy(input.password, username);
    if (issues.length > 0)
      return fail('LOOM_VALIDATION_FAILED', 'The password is not acceptable.', { issues });
    const hash = await hasher.hash(input.password);
    return uow.run(async (tx) => {
      if (await users.findByUsername(tx, username)) {
        return fail('LOOM_USER_EXISTS', `A user named '${username}' already exists.`, {
          issues: [{ path: 'username', message: 'is taken; choose another' }],
        });
      }
      const user = await users.insert(tx, {
        username,
        displayName: input.displayName,
        passwordHash: hash,
        roles: [...new Set(input.roles)],
        mustChangePassword: input.mustChangePassword ?? true,
      });
      await audit.append(tx, {
        actor,
        action: 'user.created',
        entityType: 'user',
        entityId: String(user.id),
        newValue: publicUser(user),
        requestId,
      });
      return ok(publicUser(user));
    });
  }

  async listUsers(): Promise<PublicUser[]> {
    return (await this.deps.users.list()).map(publicUser);
  }

  async getUser(id: number): Promise<Result<PublicUser>> {
    const u = await this.deps.users.findById(null, id);
    return u ? ok(publicUser(u)) : fail('LOOM_USER_NOT_FOUND', `No user with id ${id}.`);
  }

  /** Roles, display name, disable/enable, unlock, or an admin password reset. Disabling ends every session at once. */
  async updateUser(
    actor: Actor,
    id: number,
    patch: { displayName?: string; roles?: Role[]; disabled?: boolean; unlock?: boolean; password?: string },
    reason: string | null,
    requestId: string | null,
  ): Promise<Result<PublicUser>> {
    const { uow, users, audit, hasher, clock } = this.deps;
    const newHash = patch.password !== undefined ? await hasher.hash(patch.password) : undefined;
    return this.#changingCredentials(() =>
      uow.run(async (tx) => {
        const before = await users.findById(tx, id, true);
        if (!before) return fail('LOOM_USER_NOT_FOUND', `No user with id ${id}.`);
        if (patch.password !== undefined) {
          const issues = checkPasswordPolicy(patch.password, before.username);
          if (issues.length > 0)
            return fail('LOOM_VALIDATION_FAILED', 'The password is not acceptable.', { issues });
        }
        if (
          actor.userId === id &&
          (patch.disabled === true || (patch.roles && !patch.roles.includes('admin')))
        ) {
          return fail(
            'LOOM_USER_SELF_LOCKOUT',
            'An admin cannot disable themselves or remove their own admin role.',
          );
        }
        const after = await users.update(tx, id, {
          ...(patch.displayName !== undefined ? { displayName: patch.displayName } : {}),
          ...(patch.roles !== undefined ? { roles: [...new Set(patch.roles)] } : {}),
          ...(patch.disabled !== undefined
            ? { disabledAt: patch.disabled ? (before.disabledAt ?? clock.now()) : null }
            : {}),
          ...(patch.unlock ? { lockedUntil: null, failedLogins: 0 } : {}),
          ...(newHash !== undefined ? { passwordHash: newHash, mustChangePassword: true } : {}),
        });
        if (patch.disabled === true || newHash !== undefined) await users.revokeAllSessions(tx, id);
        await audit.append(tx, {
          actor,
          action:
            patch.disabled === true
              ? 'user.disabled'
              : newHash !== undefined
                ? 'user.password-reset'
                : 'user.updated',
          entityType: 'user',
          entityId: String(id),
          reason,
          oldValue: publicUser(before),
          newValue: publicUser(after),
          requestId,
        });
        return ok(publicUser(after));
      }),
    );
  }

  async createApiToken(
    actor: Actor,
    input: { userId: number; name: string; expiresAt?: Date | null },
    requestId: string | null,
  ): Promise<Result<{ token: string; record: ApiTokenRecord }>> {
    const { uow, users, audit } = this.deps;
    const { token, prefix } = newApiToken();
    return uow.run(async (tx) => {
      const owner = await users.findById(tx, input.userId);
      if (!owner) {
        return fail('LOOM_USER_NOT_FOUND', `No user with id ${input.userId}.`, {
          issues: [{ path: 'userId', message: 'names no user' }],
        });
      }
      const record = await users.insertToken(tx, {
        userId: owner.id,
        name: input.name,
        tokenHash: digest(token),
        prefix,
        createdBy: actor.userId,
        expiresAt: input.expiresAt ?? null,
      });
      await audit.append(tx, {
        actor,
        action: 'api-token.created',
        entityType: 'api-token',
        entityId: String(record.id),
        newValue: { ...record, token: undefined },
        requestId,
      });
      return ok({ token, record });
    });
  }

  listApiTokens(): Promise<ApiTokenRecord[]> {
    return this.deps.users.listTokens();
  }

  async revokeApiToken(
    actor: Actor,
    id: number,
    reason: string | null,
    requestId: string | null,
  ): Promise<Result<ApiTokenRecord>> {
    const { uow, users, audit, clock } = this.deps;
    return this.#changingCredentials(() =>
      uow.run(async (tx) => {
        const record = await users.revokeToken(tx, id, clock.now());
        if (!record) return fail('LOOM_TOKEN_NOT_FOUND', `No API token with id ${id}.`);
        await audit.append(tx, {
          actor,
          action: 'api-token.revoked',
          entityType: 'api-token',
          entityId: String(id),
          reason,
          newValue: record,
          requestId,
        });
        return ok(record);
      }),
    );
  }

  /**
   * Electronic signature helper (21 CFR 11.200): the signer re-enters their password and states a
   * meaning; the signature is bound to the SHA-256 of the record content it signs. Tokens cannot
   * sign: a signature is a person's act.
   */
  async sign(
    principal: Principal,
    input: { password: string; meaning: string },
    record: unknown,
  ): Promise<Result<ElectronicSignature>> {
    if (principal.via !== 'session') {
      return fail(
        'LOOM_SIGNATURE_REQUIRES_PERSON',
        'Electronic signatures need a person logged in, not an API token.',
      );
    }
    const user = await this.deps.users.findById(null, principal.userId);
    if (!user || user.disabledAt) return fail('LOOM_AUTH_UNAUTHENTICATED', 'Log in first.');
    if (!(await this.deps.hasher.verify(user.passwordHash, input.password))) {
      return fail('LOOM_SIGNATURE_INVALID', 'The signature password is wrong.', {
        issues: [{ path: 'signature.password', message: 'does not match your password' }],
      });
    }
    return ok({
      signerId: user.id,
      signerName: `${user.displayName} (${user.username})`,
      meaning: input.meaning,
      signedAt: this.deps.clock.now().toISOString(),
      recordHash: contentHash(record),
    });
  }

  /**
   * A second person's signature at the same terminal (a trainer co-signing for a trainee, a
   * verifier): their username and password, checked like a login, bound to the record.
   */
  async coSign(
    input: { username: string; password: string; meaning: string },
    record: unknown,
  ): Promise<Result<ElectronicSignature>> {
    const user = await this.deps.users.findByUsername(null, input.username.toLowerCase());
    const good = user
      ? await this.deps.hasher.verify(user.passwordHash, input.password)
      : await this.deps.hasher.verify(await this.#dummy(), input.password);
    if (!user || !good || user.disabledAt) {
      return fail(
        'LOOM_SIGNATURE_INVALID',
        `The co-signature of '${input.username}' is not valid: wrong username or password.`,
        {
          issues: [{ path: 'password', message: 'does not match that user' }],
        },
      );
    }
    return ok({
      signerId: user.id,
      signerName: `${user.displayName} (${user.username})`,
      meaning: input.meaning,
      signedAt: this.deps.clock.now().toISOString(),
      recordHash: contentHash(record),
    });
  }

  #dummy(): Promise<string> {
    this.#dummyHash ??= this.deps.hasher.hash('loom-dummy-password-for-timing');
    return this.#dummyHash;
  }
}

import type { Actor, Role } from '../domain/auth/roles.ts';

/**
 * An open database transaction. Opaque to the application layer: use cases pass it to every store
 * they call, so all writes of one use case (state, audit entry, outbox event) commit together.
 */
export interface Tx {
  readonly __brand: 'Tx';
}

export interface UnitOfWork {
  run<T>(fn: (tx: Tx) => Promise<T>): Promise<T>;
}

export interface PasswordHasher {
  hash(password: string): Promise<string>;
  verify(hash: string, password: string): Promise<boolean>;
}

/** An electronic signature (21 CFR 11.50/11.70): who, when, what it means, bound to the record's content hash. */
export interface ElectronicSignature {
  readonly signerId: number;
  readonly signerName: string;
  readonly meaning: string;
  readonly signedAt: string;
  readonly recordHash: string;
}

export interface AuditEntryInput {
  readonly actor: Actor;
  readonly action: string;
  readonly entityType: string;
  readonly entityId: string;
  readonly reason?: string | null;
  readonly oldValue?: unknown;
  readonly newValue?: unknown;
  readonly signature?: ElectronicSignature | null;
  readonly requestId?: string | null;
}

export interface AuditEntry {
  readonly id: number;
  readonly at: string;
  readonly actorId: number | null;
  readonly actorName: string;
  readonly action: string;
  readonly entityType: string;
  readonly entityId: string;
  readonly reason: string | null;
  readonly oldValue: unknown;
  readonly newValue: unknown;
  readonly signature: ElectronicSignature | null;
  readonly requestId: string | null;
  /** The entry's link in the hash chain; null for a moment after commit, until it is chained. */
  readonly chain: { readonly seq: number; readonly prevHash: string; readonly hash: string } | null;
}

export interface AuditFilter {
  readonly entityType?: string;
  readonly entityId?: string;
  readonly actor?: string;
  readonly from?: Date;
  readonly to?: Date;
  readonly afterId?: number;
  readonly limit: number;
}

export type AuditVerification =
  | {
      readonly ok: true;
      readonly entries: number;
      readonly lastHash: string | null;
      /** Entries of transactions still running (or just ended) when verified: not yet chained. */
      readonly pending: number;
    }
  | {
      readonly ok: false;
      readonly entries: number;
      /** The audit entry id (`audit_log.id`) at which the chain breaks. */
      readonly brokenAt: number;
      readonly reason:
        'hash-mismatch' | 'chain-broken' | 'sequence-gap' | 'entry-missing' | 'entry-unchained';
      readonly message: string;
    };

export interface AuditTrail {
  /** Writes an entry in the caller's transaction. No global lock: writers never wait for each other. */
  append(tx: Tx, entry: AuditEntryInput): Promise<void>;
  list(filter: AuditFilter): Promise<AuditEntry[]>;
  /** Links every entry that has become final into the hash chain; returns how many. */
  chainPending(): Promise<number>;
  /** Chains what is pending, then walks the whole chain and names the first broken link. */
  verify(): Promise<AuditVerification>;
}

export interface UserRecord {
  readonly id: number;
  readonly username: string;
  readonly displayName: string;
  readonly passwordHash: string;
  readonly roles: Role[];
  readonly mustChangePassword: boolean;
  readonly failedLogins: number;
  readonly lockedUntil: Date | null;
  readonly disabledAt: Date | null;
  readonly createdAt: Date;
}

export interface NewUser {
  readonly username: string;
  readonly displayName: string;
  readonly passwordHash: string;
  readonly roles: readonly Role[];
  readonly mustChangePassword: boolean;
}

export interface SessionRecord {
  readonly user: UserRecord;
  readonly createdAt: Date;
  readonly lastSeenAt: Date;
  readonly expiresAt: Date;
}

export interface ApiTokenRecord {
  readonly id: number;
  readonly userId: number;
  readonly username: string;
  readonly name: string;
  readonly prefix: string;
  readonly createdAt: Date;
  readonly expiresAt: Date | null;
  readonly lastUsedAt: Date | null;
  readonly revokedAt: Date | null;
}

export interface UserStore {
  findByUsername(tx: Tx | null, username: string, forUpdate?: boolean): Promise<UserRecord | null>;
  findById(tx: Tx | null, id: number, forUpdate?: boolean): Promise<UserRecord | null>;
  list(): Promise<UserRecord[]>;
  count(tx: Tx): Promise<number>;
  insert(tx: Tx, user: NewUser): Promise<UserRecord>;
  update(
    tx: Tx,
    id: number,
    patch: Partial<
      Pick<
        UserRecord,
        | 'displayName'
        | 'passwordHash'
        | 'roles'
        | 'mustChangePassword'
        | 'failedLogins'
        | 'lockedUntil'
        | 'disabledAt'
      >
    >,
  ): Promise<UserRecord>;

  insertSession(
    tx: Tx,
    s: {
      tokenHash: string;
      userId: number;
      /** Start of the session by the application clock (idle time is measured from it). */
      at: Date;
      expiresAt: Date;
      clientIp: string | null;
      userAgent: string | null;
    },
  ): Promise<void>;
  findSession(tokenHash: string): Promise<(SessionRecord & { revokedAt: Date | null }) | null>;
  touchSession(tokenHash: string, at: Date): Promise<void>;
  revokeSession(tx: Tx | null, tokenHash: string): Promise<void>;
  revokeAllSessions(tx: Tx, userId: number): Promise<number>;

  insertToken(
    tx: Tx,
    t: {
      userId: number;
      name: string;
      tokenHash: string;
      prefix: string;
      createdBy: number | null;
      expiresAt: Date | null;
    },
  ): Promise<ApiTokenRecord>;
  findToken(tokenHash: string): Promise<(ApiTokenRecord & { user: UserRecord }) | null>;
  touchToken(id: number, at: Date): Promise<void>;
  listTokens(): Promise<ApiTokenRecord[]>;
  revokeToken(tx: Tx, id: number, at: Date): Promise<ApiTokenRecord | null>;
}

/** The outcome of claiming an idempotency key inside a transaction. */
export type IdempotencyClaim =
  | { readonly kind: 'new' }
  | { readonly kind: 'replay'; readonly status: number; readonly response: unknown }
  | { readonly kind: 'conflict' };

export interface IdempotencyStore {
  /** Claims `key` for `scope` in `tx`; blocks while another transaction holds the same key. */
  claim(tx: Tx, scope: string, key: string, requestHash: string): Promise<IdempotencyClaim>;
  complete(tx: Tx, scope: string, key: string, status: number, response: unknown): Promise<void>;
}

export interface OutboxEventInput {
  readonly aggregateType: string;
  readonly aggregateId: string;
  readonly eventType: string;
  readonly payload: unknown;
}

/** The transactional outbox: events committed with the state change they describe. */
export interface Outbox {
  /** Written with the transaction's commit (never read back inside it). */
  add(tx: Tx, event: OutboxEventInput): Promise<void>;
}

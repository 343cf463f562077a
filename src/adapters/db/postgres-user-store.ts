import type { ApiTokenRecord, UserRecord, UserStore } from '../../app/ports.ts';
import type { Role } from '../../domain/auth/roles.ts';
import type { Database } from './postgres-pool.ts';
import { prepared } from './postgres-prepared.ts';
import { asPg } from './postgres-unit-of-work.ts';

interface UserRow {
  id: number;
  username: string;
  display_name: string;
  password_hash: string;
  roles: Role[];
  must_change_password: boolean;
  failed_logins: number;
  locked_until: Date | null;
  disabled_at: Date | null;
  created_at: Date;
}

const toUser = (r: UserRow): UserRecord => ({
  id: r.id,
  username: r.username,
  displayName: r.display_name,
  passwordHash: r.password_hash,
  roles: r.roles,
  mustChangePassword: r.must_change_password,
  failedLogins: r.failed_logins,
  lockedUntil: r.locked_until,
  disabledAt: r.disabled_at,
  createdAt: r.created_at,
});

interface TokenRow {
  id: number;
  user_id: number;
  username: string;
  name: string;
  prefix: string;
  created_at: Date;
  expires_at: Date | null;
  last_used_at: Date | null;
  revoked_at: Date | null;
}

const toToken = (r: TokenRow): ApiTokenRecord => ({
  id: r.id,
  userId: r.user_id,
  username: r.username,
  name: r.name,
  prefix: r.prefix,
  createdAt: r.created_at,
  expiresAt: r.expires_at,
  lastUsedAt: r.last_used_at,
  revokedAt: r.revoked_at,
});

const USER_COLUMNS = `id, username, display_name, password_hash, roles, must_change_password, failed_logins,
  locked_until, disabled_at, created_at`;
const TOKEN_COLUMNS = `t.id, t.user_id, u.username, t.name, t.prefix, t.created_at, t.expires_at, t.last_used_at, t.revoked_at`;

const COLUMN_OF = {
  displayName: 'display_name',
  passwordHash: 'password_hash',
  roles: 'roles',
  mustChangePassword: 'must_change_password',
  failedLogins: 'failed_logins',
  lockedUntil: 'locked_until',
  disabledAt: 'disabled_at',
} as const;

export function postgresUserStore(db: Database): UserStore {
  const q = (tx: Parameters<typeof asPg>[0] | null) => (tx ? asPg(tx) : db.pool);
  return {
    async findByUsername(tx, username, forUpdate = false) {
      const r = await q(tx).query<UserRow>(
        `SELECT ${USER_COLUMNS} FROM users WHERE username = $1${forUpdate ? ' FOR UPDATE' : ''}`,
        [username],
      );
      return r.rows[0] ? toUser(r.rows[0]) : null;
    },
    async findById(tx, id, forUpdate = false) {
      const r = await q(tx).query<UserRow>(
        prepared(`SELECT ${USER_COLUMNS} FROM users WHERE id = $1${forUpdate ? ' FOR UPDATE' : ''}`, [id]),
      );
      return r.rows[0] ? toUser(r.rows[0]) : null;
    },
    async list() {
      return (await db.pool.query<UserRow>(`SELECT ${USER_COLUMNS} FROM users ORDER BY username`)).rows.map(
        toUser,
      );
    },
    async count(tx) {
      // Locks the table for the bootstrap check so two first starts cannot both create `admin`.
      await asPg(tx).query('LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE');
      return (await asPg(tx).query<{ n: number }>('SELECT count(*)::int AS n FROM users')).rows[0]!.n;
    },
    async insert(tx, u) {
      const r = await asPg(tx).query<UserRow>(
        `INSERT INTO users (username, display_name, password_hash, roles, must_change_password)
         VALUES ($1, $2, $3, $4, $5) RETURNING ${USER_COLUMNS}`,
        [u.username, u.displayName, u.passwordHash, u.roles, u.mustChangePassword],
      );
      return toUser(r.rows[0]!);
    },
    async update(tx, id, patch) {
      const sets: string[] = [];
      const values: unknown[] = [];
      for (const [key, column] of Object.entries(COLUMN_OF)) {
        const v = patch[key as keyof typeof patch];
        if (v === undefined) continue;
        values.push(v);
        sets.push(`${column} = $${values.length}`);
      }
      if (patch.passwordHash !== undefined) sets.push('password_changed_at = now()');
      sets.push('updated_at = now()');
      values.push(id);
      const r = await asPg(tx).query<UserRow>(
        `UPDATE users SET ${sets.join(', ')} WHERE id = $${values.length} RETURNING ${USER_COLUMNS}`,
        values,
      );
      if (!r.rows[0]) throw new Error(`user ${id} vanished during update`);
      return toUser(r.rows[0]);
    },
    async insertSession(tx, s) {
      await asPg(tx).query(
        `INSERT INTO sessions (token_hash, user_id, created_at, last_seen_at, expires_at, client_ip, user_agent)
         VALUES ($1, $2, $3, $3, $4, $5, $6)`,
        [s.tokenHash, s.userId, s.at, s.expiresAt, s.clientIp, s.userAgent],
      );
    },
    async findSession(tokenHash) {
      const r = await db.pool.query<
        UserRow & { s_created_at: Date; last_seen_at: Date; expires_at: Date; revoked_at: Date | null }
      >(
        // Every request with a session asks this: prepared, so it is not planned each time.
        prepared(
          `SELECT ${USER_COLUMNS.split(',')
            .map((c) => `u.${c.trim()}`)
            .join(', ')},
                  s.created_at AS s_created_at, s.last_seen_at, s.expires_at, s.revoked_at
             FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = $1`,
          [tokenHash],
        ),
      );
      const row = r.rows[0];
      if (!row) return null;
      return {
        user: toUser(row),
        createdAt: row.s_created_at,
        lastSeenAt: row.last_seen_at,
        expiresAt: row.expires_at,
        revokedAt: row.revoked_at,
      };
    },
    async touchSession(tokenHash, at) {
      await db.pool.query('UPDATE sessions SET last_seen_at = $2 WHERE token_hash = $1', [tokenHash, at]);
    },
    async revokeSession(tx, tokenHash) {
      await q(tx).query(
        'UPDATE sessions SET revoked_at = now() WHERE token_hash = $1 AND revoked_at IS NULL',
        [tokenHash],
      );
    },
    async revokeAllSessions(tx, userId) {
      const r = await asPg(tx).query(
        'UPDATE sessions SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL',
        [userId],
      );
      return r.rowCount ?? 0;
    },
    async insertToken(tx, t) {
      const r = await asPg(tx).query<TokenRow>(
        `WITH t AS (
           INSERT INTO api_tokens (user_id, name, token_hash, prefix, created_by, expires_at)
           VALUES ($1, $2, $3, $4, $5, $6) RETURNING *)
         SELECT ${TOKEN_COLUMNS} FROM t JOIN users u ON u.id = t.user_id`,
        [t.userId, t.name, t.tokenHash, t.prefix, t.createdBy, t.expiresAt],
      );
      return toToken(r.rows[0]!);
    },
    async findToken(tokenHash) {
      const r = await db.pool.query<TokenRow & { uid: number }>(
        prepared(
          `SELECT ${TOKEN_COLUMNS} FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = $1`,
          [tokenHash],
        ),
      );
      const row = r.rows[0];
      if (!row) return null;
      const user = await this.findById(null, row.user_id);
      return user ? { ...toToken(row), user } : null;
    },
    async touchToken(id, at) {
      await db.pool.query('UPDATE api_tokens SET last_used_at = $2 WHERE id = $1', [id, at]);
    },
    async listTokens() {
      return (
        await db.pool.query<TokenRow>(
          `SELECT ${TOKEN_COLUMNS} FROM api_tokens t JOIN users u ON u.id = t.user_id ORDER BY t.id`,
        )
      ).rows.map(toToken);
    },
    async revokeToken(tx, id, at) {
      const r = await asPg(tx).query<TokenRow>(
        `WITH t AS (UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1 RETURNING *)
         SELECT ${TOKEN_COLUMNS} FROM t JOIN users u ON u.id = t.user_id`,
        [id, at],
      );
      return r.rows[0] ? toToken(r.rows[0]) : null;
    },
  };
}

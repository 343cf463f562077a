import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import pino from 'pino';
import { loadConfig } from '../../src/config/config.ts';
import { fixedClock } from '../../src/domain/shared/clock.ts';
import { composeLoom, type Loom } from '../../src/main/loom.ts';
import { createTestDatabase, type TestDatabase } from './database.ts';

export const ADMIN_PASSWORD = 'admin-password-for-tests';

export interface TestApp {
  readonly loom: Loom;
  readonly app: FastifyInstance;
  readonly database: TestDatabase;
  readonly clock: ReturnType<typeof fixedClock>;
  /** Logs in and returns the session cookie header value. */
  login(username: string, password: string): Promise<string>;
  /** Creates a user with the given roles (as admin) and returns a session cookie for them. */
  userWithRoles(username: string, roles: string[]): Promise<{ cookie: string; id: number; password: string }>;
  adminCookie(): Promise<string>;
  close(): Promise<void>;
}

export function cookieOf(res: LightMyRequestResponse): string {
  const c = res.cookies.find((x) => x.name === 'loom_session');
  if (!c) throw new Error(`no session cookie in response ${res.statusCode}: ${res.body}`);
  return `loom_session=${c.value}`;
}

/** The whole Loom HTTP app on a fresh database, driven with `inject` (no open port; STYLE.md). */
export async function createTestApp(): Promise<TestApp> {
  const database = await createTestDatabase();
  // A fixed day, so qualification validity in examples/plant.yaml does not drift with the calendar.
  const clock = fixedClock(new Date('2026-11-25T10:00:00Z'));
  const config = loadConfig({ env: { LOOM_ADMIN_PASSWORD: ADMIN_PASSWORD, LOOM_LOG_LEVEL: 'silent' } });
  const loom = await composeLoom({ config, db: database.db, logger: pino({ level: 'silent' }), clock });
  await loom.auth.bootstrapAdmin(ADMIN_PASSWORD);
  await loom.app.ready();
  let adminCookie: string | undefined;

  const login = async (username: string, password: string) => {
    const res = await loom.app.inject({
      method: 'POST',
      url: '/api/auth/login',
      payload: { username, password },
    });
    if (res.statusCode !== 200) throw new Error(`login ${username} failed: ${res.statusCode} ${res.body}`);
    return cookieOf(res);
  };
  const self: TestApp = {
    loom,
    app: loom.app,
    database,
    clock,
    login,
    async adminCookie() {
      adminCookie ??= await login('admin', ADMIN_PASSWORD);
      return adminCookie;
    },
    async userWithRoles(username, roles) {
      const password = `correct horse battery ${username.length}`;
      const res = await loom.app.inject({
        method: 'POST',
        url: '/api/users',
        headers: { cookie: await self.adminCookie() },
        payload: { username, displayName: username, password, roles, mustChangePassword: false },
      });
      if (res.statusCode !== 201) throw new Error(`creating ${username} failed: ${res.body}`);
      return { cookie: await login(username, password), id: res.json<{ id: number }>().id, password };
    },
    async close() {
      await loom.app.close();
      await database.drop();
    },
  };
  return self;
}

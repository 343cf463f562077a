import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { MqttSparkplugHost } from '../../src/adapters/sparkplug/mqtt-sparkplug-host.ts';
import { ConnectivityRegistry } from '../../src/app/telemetry/connectivity-registry.ts';
import { systemClock } from '../../src/domain/shared/clock.ts';
import { freePort } from '../support/loom-process.ts';

/**
 * Issue #5: the host connects to any broker by URL, TLS and username/password supported. A real
 * Mosquitto with a TLS listener, a throw-away CA-less self-signed certificate and a password file.
 * Protocol only: skipped on the second (PostgreSQL server) run of the suite.
 */
const SKIP = process.env.LOOM_TEST_PG === 'server' ? 'protocol test; runs once, on the embedded run' : false;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

describe('Sparkplug host over TLS with a user name and password (real Mosquitto)', { skip: SKIP }, () => {
  let dir: string;
  let broker: ChildProcess;
  let port: number;
  let cert: Buffer;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'loom-mqtt-tls-'));
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '1',
        '-keyout',
        path.join(dir, 'key.pem'),
        '-out',
        path.join(dir, 'cert.pem'),
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
      ],
      { stdio: 'ignore' },
    );
    execFileSync('mosquitto_passwd', ['-b', '-c', path.join(dir, 'passwords'), 'loom', 'edge-secret-1'], {
      stdio: 'ignore',
    });
    // Mosquitto started as root drops to its own user: let it read this throw-away material.
    await chmod(dir, 0o755);
    for (const f of ['key.pem', 'cert.pem', 'passwords']) await chmod(path.join(dir, f), 0o644);
    port = await freePort();
    await writeFile(
      path.join(dir, 'mosquitto.conf'),
      [
        `listener ${port} 127.0.0.1`,
        `certfile ${path.join(dir, 'cert.pem')}`,
        `keyfile ${path.join(dir, 'key.pem')}`,
        'allow_anonymous false',
        `password_file ${path.join(dir, 'passwords')}`,
        '',
      ].join('\n'),
    );
    cert = await readFile(path.join(dir, 'cert.pem'));
    broker = spawn('mosquitto', ['-c', path.join(dir, 'mosquitto.conf')], { stdio: 'ignore' });
    for (let i = 0; i < 100 && !(await listening(port)); i++) await sleep(50);
  });

  after(async () => {
    broker?.kill('SIGTERM');
    await rm(dir, { recursive: true, force: true });
  });

  const host = (over: { ca?: Buffer; password?: string }) => {
    const connectivity = new ConnectivityRegistry(systemClock);
    const h = new MqttSparkplugHost({
      url: `mqtts://127.0.0.1:${port}`,
      username: 'loom',
      password: over.password ?? 'edge-secret-1',
      ...(over.ca ? { ca: over.ca } : {}),
      hostId: `loom-tls-${port}`,
      groups: ['tls-test'],
      keepaliveSeconds: 10,
      maxMessageBytes: 1 << 20,
      reorderTimeoutMs: 200,
      rebirthIntervalMs: 5000,
      reconnectMinMs: 100,
      reconnectMaxMs: 200,
      connectTimeoutMs: 3000,
      sink: { accept: () => undefined, markStale: () => undefined },
      connectivity,
      clock: systemClock,
      logger: pino({ level: 'silent' }),
    });
    return { h, connectivity };
  };

  it('connects with the broker CA and the right password, and births its STATE', async () => {
    const { h } = host({ ca: cert });
    try {
      await h.start();
      assert.equal(h.status().connected, true, JSON.stringify(h.status()));
      assert.equal(typeof h.status().stateTimestamp, 'number');
    } finally {
      await h.stop();
    }
  });

  it('refuses a broker certificate it cannot verify, and says why', async () => {
    const { h, connectivity } = host({});
    try {
      await h.start();
      assert.equal(h.status().connected, false);
      assert.match(h.status().lastError ?? '', /certificate/i);
      assert.notEqual(connectivity.list().find((e) => e.kind === 'mqtt-broker')?.state, 'online');
    } finally {
      await h.stop();
    }
  });

  it('reports a wrong password as not authorised, never showing it', async () => {
    const { h } = host({ ca: cert, password: 'wrong-password' });
    try {
      await h.start();
      assert.equal(h.status().connected, false);
      assert.match(h.status().lastError ?? '', /not authori[sz]ed|bad user name or password/i);
      assert.doesNotMatch(JSON.stringify(h.status()), /wrong-password/);
    } finally {
      await h.stop();
    }
  });
});

import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { tempDirs } from '../../test/support/temp-dir.ts';
import { ConfigError, describeConfig, loadConfig } from './config.ts';

const tempDir = tempDirs();

function problems(env: Record<string, string>, file?: string) {
  try {
    loadConfig({ env, ...(file ? { file } : {}) });
  } catch (e) {
    assert.ok(e instanceof ConfigError);
    return e;
  }
  assert.fail('expected a ConfigError');
}

describe('loadConfig', () => {
  it('gives the documented defaults', () => {
    const c = loadConfig({ env: {} });
    assert.equal(c.host, '127.0.0.1');
    assert.equal(c.port, 8080);
    assert.equal(c.dataDir, path.resolve('./loom-data'));
    assert.equal(c.databaseUrl, undefined);
    assert.equal(c.mqttPort, 1884);
    assert.ok(Object.isFrozen(c));
  });

  it('names the key, the value and what is allowed for a bad port', () => {
    const e = problems({ LOOM_PORT: '70000' });
    assert.equal(e.problems[0]?.key, 'LOOM_PORT');
    assert.equal(e.problems[0]?.value, '70000');
    assert.match(e.message, /LOOM_PORT="70000": must be a whole number from 1 to 65535/);
  });

  it('lists every bad key at once', () => {
    const e = problems({ LOOM_PORT: 'abc', LOOM_LOG_LEVEL: 'loud', LOOM_DATABASE_URL: 'mysql://x' });
    assert.deepEqual(e.problems.map((p) => p.key).sort(), [
      'LOOM_DATABASE_URL',
      'LOOM_LOG_LEVEL',
      'LOOM_PORT',
    ]);
  });

  it('refuses an unknown LOOM_ variable, a likely typo', () => {
    const e = problems({ LOOM_PROT: '9000' });
    assert.equal(e.problems[0]?.key, 'LOOM_PROT');
    assert.match(e.problems[0]?.allowed ?? '', /unknown setting/);
  });

  it('never echoes a bad admin password', () => {
    const e = problems({ LOOM_ADMIN_PASSWORD: 'short' });
    assert.doesNotMatch(e.message, /short/);
    assert.match(e.message, /LOOM_ADMIN_PASSWORD="\*\*\*": must be at least 12 characters/);
  });

  it('reads a config file, and the environment wins over it', () => {
    const dir = tempDir('loom-cfg-');
    const file = path.join(dir, 'loom.yaml');
    writeFileSync(file, 'port: 9001\nhost: 0.0.0.0\n');
    const c = loadConfig({ env: { LOOM_PORT: '9002' }, file });
    assert.equal(c.host, '0.0.0.0');
    assert.equal(c.port, 9002);
  });

  it('names the file and key for a bad value in the config file', () => {
    const dir = tempDir('loom-cfg-');
    const file = path.join(dir, 'loom.yaml');
    writeFileSync(file, 'port: -1\nbogus: 1\n');
    const e = problems({}, file);
    assert.ok(e.problems.some((p) => p.key === `${file}: port`));
    assert.ok(e.problems.some((p) => p.key === `${file}: bogus`));
  });

  it('masks secrets when describing the effective config', () => {
    const c = loadConfig({
      env: {
        LOOM_ADMIN_PASSWORD: 'a-very-secret-pass',
        LOOM_DATABASE_URL: 'postgres://loom:hunter2hunter2@db:5432/loom',
      },
    });
    const text = JSON.stringify(describeConfig(c));
    assert.doesNotMatch(text, /a-very-secret-pass|hunter2/);
    assert.match(text, /postgres:\/\/loom:\*\*\*@db:5432\/loom/);
  });

  it('secures OPC UA by default: SignAndEncrypt, Basic256Sha256, a store under the data folder, 16 MiB', () => {
    const c = loadConfig({ env: { LOOM_DATA_DIR: '/var/lib/loom' } });
    assert.equal(c.opcuaSecurityMode, 'SignAndEncrypt');
    assert.equal(c.opcuaSecurityPolicy, 'Basic256Sha256');
    assert.equal(c.opcuaPkiDir, path.resolve('/var/lib/loom/pki/opcua'));
    assert.equal(c.opcuaMaxMessageBytes, 16 * 1024 * 1024);
    assert.equal(c.opcuaSessionTimeoutMs, 60_000);
  });

  it('runs the device connectors unless LOOM_DEVICE_CONNECTORS says no, and refuses a non-boolean', () => {
    assert.equal(loadConfig({ env: {} }).deviceConnectors, true);
    assert.equal(loadConfig({ env: { LOOM_DEVICE_CONNECTORS: 'false' } }).deviceConnectors, false);
    assert.match(problems({ LOOM_DEVICE_CONNECTORS: 'off' }).message, /LOOM_DEVICE_CONNECTORS/);
  });

  it('refuses Sign without a security policy, a policy with mode None, and half a login', () => {
    const e = problems({
      LOOM_OPCUA_SECURITY_MODE: 'Sign',
      LOOM_OPCUA_SECURITY_POLICY: 'None',
      LOOM_OPCUA_USERNAME: 'loom',
    });
    assert.match(
      e.message,
      /LOOM_OPCUA_SECURITY_POLICY="None": Sign needs a security policy: Basic256Sha256/,
    );
    assert.match(e.message, /LOOM_OPCUA_PASSWORD: needed with LOOM_OPCUA_USERNAME/);
    const none = problems({ LOOM_OPCUA_SECURITY_MODE: 'None', LOOM_OPCUA_SECURITY_POLICY: 'Basic256Sha256' });
    assert.match(none.message, /applies only with Sign or SignAndEncrypt/);
    assert.equal(loadConfig({ env: { LOOM_OPCUA_SECURITY_MODE: 'None' } }).opcuaSecurityPolicy, 'None');
  });

  it('refuses the RSA PKCS#1 v1.5 policies Node no longer supports', () => {
    const e = problems({ LOOM_OPCUA_SECURITY_POLICY: 'Basic128Rsa15' });
    assert.equal(e.problems[0]?.key, 'LOOM_OPCUA_SECURITY_POLICY');
  });

  it('never echoes the OPC UA password', () => {
    const c = loadConfig({ env: { LOOM_OPCUA_USERNAME: 'loom', LOOM_OPCUA_PASSWORD: 'opcua-secret-1' } });
    assert.doesNotMatch(JSON.stringify(describeConfig(c)), /opcua-secret-1/);
    const e = problems({ LOOM_OPCUA_PASSWORD: 'opcua-secret-2' });
    assert.doesNotMatch(e.message, /opcua-secret-2/);
  });
});

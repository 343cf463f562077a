import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { tempDirs } from '../../../test/support/temp-dir.ts';
import { ConfigError } from '../../config/config.ts';
import {
  loadOpcUaEndpointsFile,
  parseOpcUaEndpoints,
  type OpcUaEndpointSecurity,
} from './opcua-endpoints-file.ts';

const tempDir = tempDirs();

const DEFAULTS: OpcUaEndpointSecurity = { securityMode: 'SignAndEncrypt', securityPolicy: 'Basic256Sha256' };

function problems(doc: unknown, env: Record<string, string> = {}): string {
  try {
    parseOpcUaEndpoints(doc, 'endpoints.yaml', env, DEFAULTS);
  } catch (e) {
    assert.ok(e instanceof ConfigError);
    return e.message;
  }
  assert.fail('expected a ConfigError');
}

describe('OPC UA endpoints file', () => {
  it('reads YAML, takes the password from the named variable and the defaults for what is left out', () => {
    const dir = tempDir('loom-opcua-');
    const file = path.join(dir, 'endpoints.yaml');
    writeFileSync(
      file,
      [
        '- url: opc.tcp://plc1:4840',
        '  username: loom',
        '  passwordEnv: PLC1_OPCUA_PASSWORD',
        '- url: opc.tcp://plc2:4840/UA',
        '  securityMode: Sign',
        '  securityPolicy: Aes256_Sha256_RsaPss',
        '- url: opc.tcp://legacy:4840',
        '  securityMode: None',
      ].join('\n'),
    );
    const out = loadOpcUaEndpointsFile(file, { PLC1_OPCUA_PASSWORD: 'pw-1' }, DEFAULTS);
    assert.deepEqual(out, [
      {
        url: 'opc.tcp://plc1:4840',
        securityMode: 'SignAndEncrypt',
        securityPolicy: 'Basic256Sha256',
        username: 'loom',
        password: 'pw-1',
      },
      { url: 'opc.tcp://plc2:4840/UA', securityMode: 'Sign', securityPolicy: 'Aes256_Sha256_RsaPss' },
      { url: 'opc.tcp://legacy:4840', securityMode: 'None', securityPolicy: 'None' },
    ]);
  });

  it('names the entry, the field and the fix for every problem at once', () => {
    const message = problems([
      { url: 'http://plc1', securityPolicy: 'Basic128Rsa15' },
      { url: 'opc.tcp://plc2:4840', username: 'loom' },
      { url: 'opc.tcp://plc3:4840', username: 'loom', passwordEnv: 'PLC3_PW' },
      { url: 'opc.tcp://plc3:4840', securityMode: 'None', securityPolicy: 'Basic256Sha256' },
      { url: 'opc.tcp://plc4:4840', passwordEnv: 'LOOM_PLC4_PW', colour: 'red' },
    ]);
    assert.match(message, /endpoints\.yaml: \[0\]\.url: url must be an OPC UA endpoint URL/);
    assert.match(message, /\[0\]\.securityPolicy: securityPolicy must be one of None, Basic256Sha256/);
    assert.match(message, /\[4\]\.passwordEnv: passwordEnv must not start with LOOM_/);
    assert.match(message, /\[4\]\.colour: colour is not a known field/);
  });

  it('refuses a login without its password, an unset password variable, a repeated URL and a policy with mode None', () => {
    const message = problems([
      { url: 'opc.tcp://plc2:4840', username: 'loom' },
      { url: 'opc.tcp://plc3:4840', username: 'loom', passwordEnv: 'PLC3_PW' },
      { url: 'opc.tcp://plc3:4840', securityMode: 'None', securityPolicy: 'Basic256Sha256' },
      { url: 'opc.tcp://plc5:4840', securityMode: 'Sign', securityPolicy: 'None' },
    ]);
    assert.match(message, /\[0\]\.passwordEnv: is needed with username/);
    assert.match(
      message,
      /\[1\]\.passwordEnv="PLC3_PW": names the environment variable PLC3_PW, which is not set/,
    );
    assert.match(message, /\[2\]\.url="opc.tcp:\/\/plc3:4840": is listed already at \[1\]/);
    assert.match(message, /\[2\]\.securityPolicy="Basic256Sha256": applies only with securityMode Sign/);
    assert.match(message, /\[3\]\.securityPolicy="None": Sign needs a security policy/);
  });

  it('wants a list', () => {
    assert.match(problems({ url: 'opc.tcp://plc1:4840' }), /a list of \{ url, securityMode/);
  });
});

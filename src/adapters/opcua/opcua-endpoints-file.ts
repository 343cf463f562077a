/**
 * Per-endpoint OPC UA connection settings (`LOOM_OPCUA_ENDPOINTS_FILE`): a YAML or JSON list of
 * `{ url, securityMode, securityPolicy, username, passwordEnv }`. Passwords never sit in the file:
 * `passwordEnv` names the environment variable that holds one. An entry without `username` logs in
 * anonymously; an entry without `securityMode`/`securityPolicy` takes the `LOOM_OPCUA_SECURITY_*`
 * defaults. Endpoints the file does not list use all the defaults, `LOOM_OPCUA_USERNAME` included.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import {
  ConfigError,
  ENV_KEYS,
  OPCUA_SECURITY_MODES,
  OPCUA_SECURITY_POLICIES,
  type ConfigProblem,
  type LoomConfig,
} from '../../config/config.ts';
import { parseAt } from '../../domain/shared/field-issues.ts';

export type OpcUaSecurityMode = (typeof OPCUA_SECURITY_MODES)[number];
export type OpcUaSecurityPolicy = (typeof OPCUA_SECURITY_POLICIES)[number];

/** How Loom connects to one endpoint. `password` is a secret: never log this object. */
export interface OpcUaEndpointSecurity {
  readonly securityMode: OpcUaSecurityMode;
  readonly securityPolicy: OpcUaSecurityPolicy;
  /** Unset: anonymous. */
  readonly username?: string;
  readonly password?: string;
}

export interface OpcUaEndpointSettings extends OpcUaEndpointSecurity {
  readonly url: string;
}

const EndpointEntry = z.strictObject({
  url: z
    .string()
    .max(2048)
    .regex(
      /^opc\.tcp:\/\/[^\s/?#]+(\/[^\s?#]*)?$/,
      'must be an OPC UA endpoint URL: opc.tcp://host:port/path',
    ),
  securityMode: z.enum(OPCUA_SECURITY_MODES).optional(),
  securityPolicy: z.enum(OPCUA_SECURITY_POLICIES).optional(),
  username: z.string().min(1).max(256).optional(),
  passwordEnv: z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be the name of an environment variable (letters, digits, _)')
    // Loom refuses LOOM_* variables it does not know (a likely typo), so the password cannot live in one.
    .refine(
      (v) => !v.startsWith('LOOM_'),
      'must not start with LOOM_; use a name such as PLC1_OPCUA_PASSWORD',
    )
    .optional(),
});

const EndpointsFile = z.array(EndpointEntry).max(1000);

/** The security defaults from the config (`LOOM_OPCUA_SECURITY_MODE` …). */
export function defaultSecurity(config: LoomConfig): OpcUaEndpointSecurity {
  return {
    securityMode: config.opcuaSecurityMode,
    securityPolicy: config.opcuaSecurityMode === 'None' ? 'None' : config.opcuaSecurityPolicy,
    ...(config.opcuaUsername !== undefined && config.opcuaPassword !== undefined
      ? { username: config.opcuaUsername, password: config.opcuaPassword }
      : {}),
  };
}

/**
 * Reads and checks the endpoints file. Every problem is reported at once as a ConfigError naming
 * the file, the entry and the field, with the fix: `endpoints.yaml: [1].securityPolicy`.
 */
export function loadOpcUaEndpointsFile(
  file: string,
  env: Readonly<Record<string, string | undefined>>,
  defaults: OpcUaEndpointSecurity,
): OpcUaEndpointSettings[] {
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(path.resolve(file), 'utf8'));
  } catch (e) {
    throw new ConfigError([
      {
        key: ENV_KEYS.opcuaEndpointsFile,
        value: file,
        allowed: `a readable YAML or JSON file (${(e as Error).message})`,
      },
    ]);
  }
  return parseOpcUaEndpoints(doc ?? [], file, env, defaults);
}

/** The checks of `loadOpcUaEndpointsFile` on an already parsed document. */
export function parseOpcUaEndpoints(
  doc: unknown,
  file: string,
  env: Readonly<Record<string, string | undefined>>,
  defaults: OpcUaEndpointSecurity,
): OpcUaEndpointSettings[] {
  const parsed = parseAt(EndpointsFile, doc, '', 'the endpoints file');
  if (!parsed.ok) {
    throw new ConfigError(
      parsed.issues.map((i) => ({
        key: `${file}: ${i.path === '' ? '(top level)' : i.path}`,
        value: undefined,
        allowed: i.path === '' ? `${i.message}: a list of { url, securityMode, … }` : i.message,
      })),
    );
  }
  const problems: ConfigProblem[] = [];
  const at = (i: number, field: string) => `${file}: [${i}].${field}`;
  const seen = new Map<string, number>();
  const out: OpcUaEndpointSettings[] = [];
  parsed.value.forEach((e, i) => {
    const first = seen.get(e.url);
    if (first !== undefined) {
      problems.push({
        key: at(i, 'url'),
        value: e.url,
        allowed: `is listed already at [${first}]; list each endpoint once`,
      });
    } else seen.set(e.url, i);
    const securityMode = e.securityMode ?? defaults.securityMode;
    let securityPolicy = e.securityPolicy ?? (securityMode === 'None' ? 'None' : defaults.securityPolicy);
    if (securityMode !== 'None' && securityPolicy === 'None') {
      problems.push({
        key: at(i, 'securityPolicy'),
        value: securityPolicy,
        allowed: `${securityMode} needs a security policy: Basic256Sha256, Aes128_Sha256_RsaOaep or Aes256_Sha256_RsaPss (or securityMode: None)`,
      });
    }
    if (securityMode === 'None' && securityPolicy !== 'None') {
      if (e.securityPolicy !== undefined) {
        problems.push({
          key: at(i, 'securityPolicy'),
          value: securityPolicy,
          allowed: 'applies only with securityMode Sign or SignAndEncrypt; remove it or set None',
        });
      }
      securityPolicy = 'None';
    }
    let password: string | undefined;
    if (e.username !== undefined && e.passwordEnv === undefined) {
      problems.push({
        key: at(i, 'passwordEnv'),
        value: undefined,
        allowed: `is needed with username: name the environment variable that holds ${e.username}'s password`,
      });
    } else if (e.username === undefined && e.passwordEnv !== undefined) {
      problems.push({
        key: at(i, 'username'),
        value: undefined,
        allowed: 'is needed with passwordEnv: the user name the password belongs to',
      });
    } else if (e.passwordEnv !== undefined) {
      password = env[e.passwordEnv];
      if (password === undefined || password === '') {
        problems.push({
          key: at(i, 'passwordEnv'),
          value: e.passwordEnv,
          allowed: `names the environment variable ${e.passwordEnv}, which is not set; set it to the password`,
        });
      }
    }
    out.push({
      url: e.url,
      securityMode,
      securityPolicy,
      ...(e.username !== undefined && password ? { username: e.username, password } : {}),
    });
  });
  if (problems.length > 0) throw new ConfigError(problems);
  return out;
}

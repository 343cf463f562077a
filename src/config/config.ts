import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';

/**
 * Loom's one configuration schema. Sources, lowest precedence first: defaults, the optional config
 * file (`LOOM_CONFIG` or `--config`, YAML or JSON, keys as below in camelCase), `LOOM_*` environment
 * variables. `loadConfig` returns a frozen object or a list of every bad key; nothing below
 * `main/` reads `process.env`.
 */
const port = z.coerce
  .number({ error: 'must be a whole number from 1 to 65535' })
  .int('must be a whole number from 1 to 65535')
  .min(1, 'must be a whole number from 1 to 65535')
  .max(65535, 'must be a whole number from 1 to 65535');

/** A yes/no setting: a boolean in a config file, `true` or `false` in the environment. */
const flag = z.union([z.boolean(), z.enum(['true', 'false'])]).transform((v) => v === true || v === 'true');

const postgresUrl = z
  .string()
  .refine((v) => /^postgres(ql)?:\/\//.test(v), 'must be a postgres:// or postgresql:// URL');

/** OPC UA message security modes (Part 4 §7.20). */
export const OPCUA_SECURITY_MODES = ['None', 'Sign', 'SignAndEncrypt'] as const;
/**
 * OPC UA security policies Loom offers. Basic128Rsa15 and Basic256 are left out: they need RSA
 * PKCS#1 v1.5 encryption, which Node ≥ 20.11.1 disabled (CVE-2023-46809), and are deprecated.
 */
export const OPCUA_SECURITY_POLICIES = [
  'None',
  'Basic256Sha256',
  'Aes128_Sha256_RsaOaep',
  'Aes256_Sha256_RsaPss',
] as const;

const mqttUrl = z
  .string()
  .refine((v) => /^(mqtts?|wss?|tcp|ssl):\/\//.test(v), 'must be an mqtt://, mqtts://, ws:// or wss:// URL');

export const configSchema = z
  .object({
    /** Interface the HTTP server binds to. */
    host: z.string().min(1).default('127.0.0.1'),
    /** HTTP port. */
    port: port.default(8080),
    /** Folder for the embedded PostgreSQL cluster and other local state. */
    dataDir: z.string().min(1).default('./loom-data'),
    /** A PostgreSQL server to use instead of the embedded one. */
    databaseUrl: postgresUrl.optional(),
    /** Size of the PostgreSQL connection pool. */
    databasePoolSize: z.coerce.number().int().min(1).max(200).default(10),
    /** An external MQTT broker to use instead of the embedded one (mqtt://, mqtts://, ws://, wss://). */
    mqttUrl: mqttUrl.optional(),
    /**
     * Port of the embedded MQTT broker (used when `mqttUrl` is not set). 1884, not 1883, so that
     * Loom starts beside a broker that already holds the standard port. 0 picks a free port (logged).
     */
    mqttPort: z.coerce
      .number({ error: 'must be a whole number from 0 to 65535' })
      .int('must be a whole number from 0 to 65535')
      .min(0, 'must be a whole number from 0 to 65535')
      .max(65535, 'must be a whole number from 0 to 65535')
      .default(1884),
    /** Interface the embedded MQTT broker binds to; anything but loopback requires MQTT credentials. */
    mqttHost: z.string().min(1).default('127.0.0.1'),
    /** User name Loom presents to the broker. */
    mqttUsername: z.string().min(1).optional(),
    /** Password Loom presents to the broker (secret). */
    mqttPassword: z.string().min(1).optional(),
    /** PEM file of the CA that signed the broker's certificate (mqtts://, wss://); default: the system CAs. */
    mqttCaFile: z.string().min(1).optional(),
    /** MQTT keep-alive in seconds; a dead link is noticed after about 1.5 × this (RELIABILITY.md rule 2). */
    mqttKeepaliveSeconds: z.coerce.number().int().min(5).max(3600).default(30),
    /** Largest MQTT message Loom accepts, in bytes; a larger one is counted and dropped. */
    mqttMaxMessageBytes: z.coerce
      .number()
      .int()
      .min(1024)
      .max(256 * 1024 * 1024)
      .default(1024 * 1024),
    /** Run the Sparkplug B host application (`loom start`). */
    sparkplugEnabled: flag.default(true),
    /**
     * Run the connectors that talk to devices directly — the OPC UA client and the Modbus TCP
     * poller. With several Loom instances on one database, run them on one instance only: each
     * instance that runs them subscribes and polls every mapped device (ADR 0010).
     */
    deviceConnectors: flag.default(true),
    /** Sparkplug Primary Host id: the STATE topic `spBv1.0/STATE/<id>`. Unique in the plant (H7, H20). */
    sparkplugHostId: z
      .string()
      .min(1)
      .refine((v) => !/[+/#]/.test(v), 'must not contain +, / or #')
      .default('loom'),
    /**
     * Share Sparkplug data between Loom instances through the MQTT shared subscription
     * `$share/<group>/spBv1.0/#`; unset: this instance takes all of it.
     */
    sparkplugSharedGroup: z
      .string()
      .min(1)
      .refine((v) => !/[+/#]/.test(v), 'must not contain +, / or #')
      .optional(),
    /** Sparkplug groups to subscribe to, comma-separated; unset: all (`spBv1.0/#`). */
    sparkplugGroups: z
      .union([z.array(z.string()), z.string()])
      .transform((v) => (Array.isArray(v) ? v : v.split(',')).map((g) => g.trim()).filter((g) => g !== ''))
      .pipe(
        z
          .array(z.string().refine((g) => !/[+/#]/.test(g), 'group ids must not contain +, / or #'))
          .min(1, 'list at least one group, or leave it unset for all'),
      )
      .optional(),
    /** Ask edge nodes for a rebirth on bad or out-of-sync input (Sparkplug H11). */
    sparkplugRequestRebirths: flag.default(true),
    /** How long an out-of-order message waits for the missing ones before a rebirth is requested (H9). */
    sparkplugReorderTimeoutMs: z.coerce.number().int().min(0).max(60_000).default(2000),
    /** Fewest milliseconds between two rebirth requests to one edge node (H11). */
    sparkplugRebirthIntervalMs: z.coerce.number().int().min(0).max(600_000).default(5000),
    /** How often the ingest pipeline writes its batch of samples. */
    ingestFlushMs: z.coerce.number().int().min(10).max(60_000).default(500),
    /** Days of signal history kept (whole UTC days, dropped hourly); unset keeps everything. Rollups are kept. */
    telemetryRetentionDays: z.coerce.number().int().min(1).max(36_500).optional(),
    /** Samples the ingest pipeline holds while the database is slow; beyond it, samples are dropped and counted. */
    ingestBufferSamples: z.coerce.number().int().min(1000).max(50_000_000).default(1_000_000),
    /** Password given to the first `admin` user on first start (automated installs). */
    adminPassword: z.string().min(12, 'must be at least 12 characters').optional(),
    /** pino log level. */
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    /** Idle lifetime of a browser session, in minutes. */
    sessionIdleMinutes: z.coerce
      .number()
      .int()
      .min(1)
      .max(24 * 60)
      .default(30),
    /** Absolute lifetime of a browser session, in hours. */
    sessionMaxHours: z.coerce
      .number()
      .int()
      .min(1)
      .max(24 * 7)
      .default(12),
    /** Largest accepted HTTP body, in bytes. */
    bodyLimitBytes: z.coerce
      .number()
      .int()
      .min(1024)
      .max(64 * 1024 * 1024)
      .default(1024 * 1024),
    /**
     * IANA time zone of the plant: decides "today" for qualification expiry. Defaults to the
     * machine's zone.
     */
    plantTimeZone: z
      .string()
      .refine((tz) => {
        try {
          new Intl.DateTimeFormat('en-CA', { timeZone: tz });
          return true;
        } catch {
          return false;
        }
      }, 'must be an IANA time zone such as Europe/Berlin or UTC')
      .default(Intl.DateTimeFormat().resolvedOptions().timeZone),
    /** ERP endpoint that receives production performance (actuals); unset: no HTTP delivery. */
    erpOutboundUrl: z
      .string()
      .refine((v) => /^https?:\/\//.test(v), 'must be an http:// or https:// URL')
      .optional(),
    /** Message format sent to the ERP. */
    erpOutboundFormat: z.enum(['json', 'b2mml']).default('json'),
    /** Bearer token Loom presents to the ERP endpoint (secret). */
    erpOutboundToken: z.string().min(1).optional(),
    /** Failed deliveries of one event before it is dead-lettered. */
    erpMaxAttempts: z.coerce.number().int().min(1).max(1000).default(12),
    /** First retry delay; doubles per attempt, with full jitter. */
    erpRetryBaseMs: z.coerce.number().int().min(10).max(600_000).default(1000),
    /** Longest retry delay. */
    erpRetryMaxMs: z.coerce.number().int().min(100).max(86_400_000).default(300_000),
    /** Timeout of one delivery request. */
    erpRequestTimeoutMs: z.coerce.number().int().min(100).max(600_000).default(10_000),
    /** Watched folder for order files (CSV, B2MML) from legacy ERPs; unset: no file drop. */
    erpInboxDir: z.string().min(1).optional(),
    /** Folder that receives actuals as CSV files (written atomically); unset: none. */
    erpOutboxDir: z.string().min(1).optional(),
    /** Folder of declarative ERP field mappings (`<name>.jsonata`). */
    erpMappingsDir: z.string().min(1).default('./examples/erp-mappings'),
    /** Set the `Secure` attribute on session cookies (enable behind TLS). */
    cookieSecure: flag.default(false),
    /** OPC UA message security of endpoints the endpoints file does not list. */
    opcuaSecurityMode: z.enum(OPCUA_SECURITY_MODES).default('SignAndEncrypt'),
    /** OPC UA security policy with Sign or SignAndEncrypt (ignored with None). */
    opcuaSecurityPolicy: z.enum(OPCUA_SECURITY_POLICIES).default('Basic256Sha256'),
    /** User name Loom presents to OPC UA servers the endpoints file does not list; unset: anonymous. */
    opcuaUsername: z.string().min(1).optional(),
    /** Password for `opcuaUsername` (secret). */
    opcuaPassword: z.string().min(1).optional(),
    /** YAML or JSON list of per-endpoint settings: url, securityMode, securityPolicy, username, passwordEnv. */
    opcuaEndpointsFile: z.string().min(1).optional(),
    /**
     * Loom's OPC UA certificate store: its own certificate (`own/`), the servers it trusts
     * (`trusted/certs/`) and the ones it refused (`rejected/`). Default `<dataDir>/pki/opcua`.
     */
    opcuaPkiDir: z.string().min(1).optional(),
    /** Largest OPC UA message Loom accepts or sends, in bytes (OPC UA chunking is a known memory-exhaustion vector). */
    opcuaMaxMessageBytes: z.coerce
      .number()
      .int()
      .min(64 * 1024)
      .max(256 * 1024 * 1024)
      .default(16 * 1024 * 1024),
    /** Most chunks per OPC UA message; default: enough for `opcuaMaxMessageBytes` in the smallest legal chunks (8 KiB). */
    opcuaMaxChunkCount: z.coerce.number().int().min(1).max(65_535).optional(),
    /**
     * OPC UA session timeout Loom requests, ms. An outage shorter than this reactivates the session
     * and loses nothing; a longer one is a recorded gap (RELIABILITY.md rule 7).
     */
    opcuaSessionTimeoutMs: z.coerce.number().int().min(10_000).max(3_600_000).default(60_000),
  })
  .strict();

export type LoomConfig = Readonly<z.infer<typeof configSchema>>;

/** Environment variable for each key, used for both reading and error messages. */
export const ENV_KEYS: Record<keyof z.infer<typeof configSchema>, string> = {
  host: 'LOOM_HOST',
  port: 'LOOM_PORT',
  dataDir: 'LOOM_DATA_DIR',
  databaseUrl: 'LOOM_DATABASE_URL',
  databasePoolSize: 'LOOM_DATABASE_POOL_SIZE',
  mqttUrl: 'LOOM_MQTT_URL',
  mqttPort: 'LOOM_MQTT_PORT',
  mqttHost: 'LOOM_MQTT_HOST',
  mqttUsername: 'LOOM_MQTT_USERNAME',
  mqttPassword: 'LOOM_MQTT_PASSWORD',
  mqttCaFile: 'LOOM_MQTT_CA_FILE',
  mqttKeepaliveSeconds: 'LOOM_MQTT_KEEPALIVE_SECONDS',
  mqttMaxMessageBytes: 'LOOM_MQTT_MAX_MESSAGE_BYTES',
  sparkplugEnabled: 'LOOM_SPARKPLUG_ENABLED',
  deviceConnectors: 'LOOM_DEVICE_CONNECTORS',
  sparkplugHostId: 'LOOM_SPARKPLUG_HOST_ID',
  sparkplugSharedGroup: 'LOOM_SPARKPLUG_SHARED_GROUP',
  sparkplugGroups: 'LOOM_SPARKPLUG_GROUPS',
  sparkplugRequestRebirths: 'LOOM_SPARKPLUG_REQUEST_REBIRTHS',
  sparkplugReorderTimeoutMs: 'LOOM_SPARKPLUG_REORDER_TIMEOUT_MS',
  sparkplugRebirthIntervalMs: 'LOOM_SPARKPLUG_REBIRTH_INTERVAL_MS',
  ingestFlushMs: 'LOOM_INGEST_FLUSH_MS',
  telemetryRetentionDays: 'LOOM_TELEMETRY_RETENTION_DAYS',
  ingestBufferSamples: 'LOOM_INGEST_BUFFER_SAMPLES',
  adminPassword: 'LOOM_ADMIN_PASSWORD',
  logLevel: 'LOOM_LOG_LEVEL',
  sessionIdleMinutes: 'LOOM_SESSION_IDLE_MINUTES',
  sessionMaxHours: 'LOOM_SESSION_MAX_HOURS',
  bodyLimitBytes: 'LOOM_BODY_LIMIT_BYTES',
  cookieSecure: 'LOOM_COOKIE_SECURE',
  plantTimeZone: 'LOOM_PLANT_TIMEZONE',
  erpOutboundUrl: 'LOOM_ERP_OUTBOUND_URL',
  erpOutboundFormat: 'LOOM_ERP_OUTBOUND_FORMAT',
  erpOutboundToken: 'LOOM_ERP_OUTBOUND_TOKEN',
  erpMaxAttempts: 'LOOM_ERP_MAX_ATTEMPTS',
  erpRetryBaseMs: 'LOOM_ERP_RETRY_BASE_MS',
  erpRetryMaxMs: 'LOOM_ERP_RETRY_MAX_MS',
  erpRequestTimeoutMs: 'LOOM_ERP_REQUEST_TIMEOUT_MS',
  erpInboxDir: 'LOOM_ERP_INBOX_DIR',
  erpOutboxDir: 'LOOM_ERP_OUTBOX_DIR',
  erpMappingsDir: 'LOOM_ERP_MAPPINGS_DIR',
  opcuaSecurityMode: 'LOOM_OPCUA_SECURITY_MODE',
  opcuaSecurityPolicy: 'LOOM_OPCUA_SECURITY_POLICY',
  opcuaUsername: 'LOOM_OPCUA_USERNAME',
  opcuaPassword: 'LOOM_OPCUA_PASSWORD',
  opcuaEndpointsFile: 'LOOM_OPCUA_ENDPOINTS_FILE',
  opcuaPkiDir: 'LOOM_OPCUA_PKI_DIR',
  opcuaMaxMessageBytes: 'LOOM_OPCUA_MAX_MESSAGE_BYTES',
  opcuaMaxChunkCount: 'LOOM_OPCUA_MAX_CHUNK_COUNT',
  opcuaSessionTimeoutMs: 'LOOM_OPCUA_SESSION_TIMEOUT_MS',
};

const SECRET_KEYS = new Set<string>([
  'adminPassword',
  'databaseUrl',
  'mqttUrl',
  'mqttPassword',
  'erpOutboundUrl',
  'erpOutboundToken',
  'opcuaPassword',
]);

export interface ConfigProblem {
  /** The key as the user wrote it: `LOOM_PORT` or `config.yaml: port`. */
  readonly key: string;
  readonly value: unknown;
  readonly allowed: string;
}

export class ConfigError extends Error {
  constructor(readonly problems: readonly ConfigProblem[]) {
    super(
      `Invalid configuration:\n` +
        problems
          .map(
            (p) =>
              `  ${p.key}${p.value === undefined ? '' : `=${JSON.stringify(maskValue(p.key, p.value))}`}: ${p.allowed}`,
          )
          .join('\n'),
    );
    this.name = 'ConfigError';
  }
}

function maskValue(key: string, value: unknown): unknown {
  if (value === undefined) return value;
  if (/PASSWORD|TOKEN|adminPassword|erpOutboundToken|mqttPassword|opcuaPassword/.test(key)) return '***';
  // A rejected URL is echoed so the user sees what was wrong, but never with its credentials.
  if (/URL|databaseUrl|mqttUrl/.test(key) && typeof value === 'string') return maskUrl(value);
  return value;
}

export interface ConfigSources {
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Path of the optional config file (YAML or JSON). */
  readonly file?: string;
  /** Values that win over everything else (CLI flags). */
  readonly overrides?: Readonly<Record<string, unknown>>;
}

export function loadConfig(sources: ConfigSources): LoomConfig {
  const problems: ConfigProblem[] = [];
  const origin = new Map<string, string>();
  const raw: Record<string, unknown> = {};

  const file = sources.file ?? sources.env.LOOM_CONFIG;
  if (file) {
    let doc: unknown;
    try {
      doc = parseYaml(readFileSync(path.resolve(file), 'utf8'));
    } catch (e) {
      throw new ConfigError([
        {
          key: 'LOOM_CONFIG',
          value: file,
          allowed: `a readable YAML or JSON file (${(e as Error).message})`,
        },
      ]);
    }
    if (doc !== null && doc !== undefined) {
      if (typeof doc !== 'object' || Array.isArray(doc)) {
        throw new ConfigError([{ key: file, value: typeof doc, allowed: 'a mapping of config keys' }]);
      }
      for (const [k, v] of Object.entries(doc as Record<string, unknown>)) {
        raw[k] = v;
        origin.set(k, `${file}: ${k}`);
      }
    }
  }
  for (const [key, envName] of Object.entries(ENV_KEYS)) {
    const v = sources.env[envName];
    if (v !== undefined && v !== '') {
      raw[key] = v;
      origin.set(key, envName);
    }
  }
  for (const name of Object.keys(sources.env)) {
    if (name.startsWith('LOOM_') && name !== 'LOOM_CONFIG' && !Object.values(ENV_KEYS).includes(name)) {
      if (name.startsWith('LOOM_TEST_')) continue;
      problems.push({
        key: name,
        value: sources.env[name],
        allowed: `unknown setting; known: ${Object.values(ENV_KEYS).join(', ')}`,
      });
    }
  }
  for (const [k, v] of Object.entries(sources.overrides ?? {})) {
    if (v === undefined) continue;
    raw[k] = v;
    origin.set(k, `--${k}`);
  }

  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const k = String(issue.path[0] ?? '');
      if (issue.code === 'unrecognized_keys') {
        for (const u of issue.keys) {
          problems.push({
            key: origin.get(u) ?? u,
            value: raw[u],
            allowed: `unknown setting; known: ${Object.keys(ENV_KEYS).join(', ')}`,
          });
        }
        continue;
      }
      problems.push({
        key: origin.get(k) ?? ENV_KEYS[k as keyof typeof ENV_KEYS] ?? k,
        value: raw[k],
        allowed: issue.message,
      });
    }
  }
  if (parsed.success && parsed.data.sparkplugSharedGroup !== undefined && parsed.data.mqttUrl === undefined) {
    problems.push({
      key: origin.get('sparkplugSharedGroup') ?? ENV_KEYS.sparkplugSharedGroup,
      value: parsed.data.sparkplugSharedGroup,
      allowed:
        'needs LOOM_MQTT_URL: the embedded broker has no shared subscriptions; point all instances at Mosquitto, EMQX or HiveMQ',
    });
  }
  if (parsed.success) problems.push(...opcuaProblems(parsed.data, origin));
  if (problems.length > 0 || !parsed.success) throw new ConfigError(problems);
  const dataDir = path.resolve(parsed.data.dataDir);
  return Object.freeze({
    ...parsed.data,
    dataDir,
    opcuaPkiDir:
      parsed.data.opcuaPkiDir === undefined
        ? path.join(dataDir, 'pki', 'opcua')
        : path.resolve(parsed.data.opcuaPkiDir),
    // With mode None no policy applies; a policy left at its default must not look like one.
    ...(parsed.data.opcuaSecurityMode === 'None' ? { opcuaSecurityPolicy: 'None' as const } : {}),
  });
}

/** OPC UA keys that are valid alone but not together. */
function opcuaProblems(
  c: z.infer<typeof configSchema>,
  origin: ReadonlyMap<string, string>,
): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const keyOf = (k: keyof typeof ENV_KEYS) => origin.get(k) ?? ENV_KEYS[k];
  if (c.opcuaSecurityMode !== 'None' && c.opcuaSecurityPolicy === 'None') {
    problems.push({
      key: keyOf('opcuaSecurityPolicy'),
      value: c.opcuaSecurityPolicy,
      allowed: `${c.opcuaSecurityMode} needs a security policy: Basic256Sha256, Aes128_Sha256_RsaOaep or Aes256_Sha256_RsaPss (or set ${ENV_KEYS.opcuaSecurityMode}=None)`,
    });
  }
  if (
    c.opcuaSecurityMode === 'None' &&
    origin.has('opcuaSecurityPolicy') &&
    c.opcuaSecurityPolicy !== 'None'
  ) {
    problems.push({
      key: keyOf('opcuaSecurityPolicy'),
      value: c.opcuaSecurityPolicy,
      allowed: `applies only with Sign or SignAndEncrypt; with ${ENV_KEYS.opcuaSecurityMode}=None leave it unset`,
    });
  }
  if ((c.opcuaUsername === undefined) !== (c.opcuaPassword === undefined)) {
    const missing = c.opcuaUsername === undefined ? 'opcuaUsername' : 'opcuaPassword';
    problems.push({
      key: ENV_KEYS[missing],
      value: undefined,
      allowed: `needed with ${keyOf(missing === 'opcuaUsername' ? 'opcuaPassword' : 'opcuaUsername')}: an OPC UA login is a user name and a password`,
    });
  }
  return problems;
}

/** The effective configuration for `loom config`: secrets masked, credentials in URLs hidden. */
export function describeConfig(config: LoomConfig): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(config)) {
    if (v === undefined) continue;
    if (k === 'adminPassword' || k === 'erpOutboundToken' || k === 'mqttPassword' || k === 'opcuaPassword')
      out[k] = '***';
    else if (SECRET_KEYS.has(k) && typeof v === 'string') out[k] = maskUrl(v);
    else out[k] = v;
  }
  return out;
}

export function maskUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');
  }
}

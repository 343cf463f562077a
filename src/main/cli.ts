import { Command, Option } from 'commander';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { AuthService } from '../app/auth/auth-service.ts';
import { newInitialPassword } from '../app/auth/tokens.ts';
import { ConfigError, describeConfig, loadConfig, type LoomConfig } from '../config/config.ts';
import { DataDirLockedError } from '../adapters/db/embedded-postgres-server.ts';
import { ROLES, isRole, type Role } from '../domain/auth/roles.ts';
import { systemClock } from '../domain/shared/clock.ts';
import { argon2PasswordHasher } from '../adapters/crypto/argon2-password-hasher.ts';
import { postgresAuditTrail } from '../adapters/db/postgres-audit-trail.ts';
import { postgresUnitOfWork } from '../adapters/db/postgres-unit-of-work.ts';
import { postgresUserStore } from '../adapters/db/postgres-user-store.ts';
import { migrate } from '../adapters/db/migrate.ts';
import { parsePlantFile } from '../adapters/plant-file/yaml-plant-file.ts';
import type { ImportSummary } from '../app/plant/import-plant-model.ts';
import { formatTraceTree } from '../app/material/trace-text.ts';
import { createLogger } from './logger.ts';
import { openDatabase } from './open-database.ts';
import { genealogyTrace } from './material-feature.ts';
import { plantService } from './plant-feature.ts';
import { startServer } from './server.ts';
import { erpOutboundFeature } from './erp-outbound-feature.ts';
import { startErpStandIn } from '../sim/erp-standin.ts';
import { DEFAULT_PLANT_DEVICES, SparkplugEdgeNode, parseLoadSpec } from '../sim/sparkplug-edge.ts';

const out = (s: string): void => {
  process.stdout.write(`${s}\n`);
};

/** Exit codes: 0 ok, 1 failure, 2 bad usage, configuration or input file, 3 audit chain broken. */
function config(opts: { config?: string }, overrides: Record<string, unknown> = {}): LoomConfig {
  return loadConfig({ env: process.env, ...(opts.config ? { file: opts.config } : {}), overrides });
}

function fatal(e: unknown): never {
  if (e instanceof ConfigError) {
    process.stderr.write(`${e.message}\n`);
    process.exit(2);
  }
  if (e instanceof DataDirLockedError) {
    process.stderr.write(`loom: ${e.message}\n`);
    process.exit(1);
  }
  process.stderr.write(`loom: ${(e as Error).message ?? String(e)}\n`);
  process.exit(1);
}

async function withStore<T>(
  opts: { config?: string; migrate?: boolean },
  fn: (s: Awaited<ReturnType<typeof openDatabase>>) => Promise<T>,
): Promise<T> {
  const cfg = config(opts);
  const logger = createLogger(process.env.LOOM_LOG_LEVEL ?? 'warn', process.stderr);
  const store = await openDatabase(cfg, logger, { shareRunning: true, migrate: opts.migrate ?? true });
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

function authFor(store: Awaited<ReturnType<typeof openDatabase>>): AuthService {
  return new AuthService({
    uow: postgresUnitOfWork(store.db),
    users: postgresUserStore(store.db),
    audit: postgresAuditTrail(store.db),
    hasher: argon2PasswordHasher(),
    clock: systemClock,
    sessionIdleMinutes: 30,
    sessionMaxHours: 12,
  });
}

/** A simulator or stand-in runs until SIGINT/SIGTERM, then stops and exits (1 if stopping failed). */
function stopOnSignal(stop: () => Promise<unknown>): void {
  const shutdown = () => {
    stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
}

const program = new Command('loom')
  .description('Loom MES — orders in, shop floor out, every unit traceable.')
  .option('-c, --config <file>', 'config file (YAML or JSON); env LOOM_CONFIG')
  .showHelpAfterError();

program
  .command('start')
  .description('start the Loom server (embedded PostgreSQL unless LOOM_DATABASE_URL is set)')
  .option('--no-sim', 'do not start the simulated plant')
  .addOption(new Option('--port <port>', 'HTTP port (LOOM_PORT)'))
  .action(async (o: { port?: string; sim: boolean }) => {
    const cfg = config(program.opts(), { port: o.port });
    const logger = createLogger(cfg.logLevel);
    const server = await startServer(cfg, logger, out, { sim: o.sim });
    out(`Loom is serving on ${server.url}  (API docs: ${server.url}/api/docs)`);
    let signals = 0;
    const shutdown = (signal: string) => {
      if (++signals > 1) process.exit(1);
      logger.info({ signal }, 'shutting down');
      server.stop().then(
        () => process.exit(0),
        (e: unknown) => {
          logger.error({ err: e }, 'shutdown failed');
          process.exit(1);
        },
      );
    };
    process.on('SIGINT', () => shutdown('SIGINT'));
    process.on('SIGTERM', () => shutdown('SIGTERM'));
  });

program
  .command('migrate')
  .description('apply pending database migrations and exit')
  .action(() =>
    withStore({ ...program.opts(), migrate: false }, async (s) => {
      const applied = await migrate(s.db);
      out(applied.length ? `applied: ${applied.join(', ')}` : 'database is up to date');
    }),
  );

program
  .command('config')
  .description('print the effective configuration (secrets masked)')
  .action(() => out(JSON.stringify(describeConfig(config(program.opts())), null, 2)));

const user = program.command('user').description('manage users');
user
  .command('add <username>')
  .description(
    'create a user; the password is read from stdin with --password-stdin, or generated and printed once',
  )
  .requiredOption('-r, --role <role...>', `roles: ${ROLES.join(', ')}`)
  .option('-n, --name <displayName>', 'display name')
  .option('--password-stdin', 'read the password from standard input')
  .action((username: string, o: { role: string[]; name?: string; passwordStdin?: boolean }) =>
    withStore(program.opts(), async (s) => {
      const bad = o.role.filter((r) => !isRole(r));
      if (bad.length) {
        process.stderr.write(`--role ${bad.join(', ')}: not a role; allowed: ${ROLES.join(', ')}\n`);
        process.exitCode = 2;
        return;
      }
      const password = o.passwordStdin ? readFileSync(0, 'utf8').replace(/\r?\n$/, '') : newInitialPassword();
      const r = await authFor(s).createUser(
        { userId: null, username: 'cli', roles: ['admin'] },
        {
          username,
          displayName: o.name ?? username,
          password,
          roles: o.role as Role[],
          mustChangePassword: !o.passwordStdin,
        },
        null,
      );
      if (!r.ok) {
        process.stderr.write(
          `${r.error.message}${r.error.issues ? ` ${r.error.issues.map((i) => `${i.path} ${i.message}`).join('; ')}` : ''}\n`,
        );
        process.exitCode = 1;
        return;
      }
      out(`created user '${r.value.username}' (id ${r.value.id}, roles ${r.value.roles.join(', ')})`);
      if (!o.passwordStdin) out(`one-time password (must be changed at first login): ${password}`);
    }),
  );

program
  .command('audit')
  .description('audit trail tools')
  .command('verify')
  .description('verify the audit hash chain; names the first broken entry')
  .action(() =>
    withStore(program.opts(), async (s) => {
      const v = await postgresAuditTrail(s.db).verify();
      if (v.ok) {
        out(`audit trail intact: ${v.entries} entries, head ${v.lastHash ?? '(empty)'}`);
      } else {
        out(`AUDIT TRAIL BROKEN at entry ${v.brokenAt} (${v.reason}): ${v.message}`);
        out(`${v.entries} entries before it verified.`);
        process.exitCode = 3;
      }
    }),
  );

program
  .command('trace <lot>')
  .description(
    'print the genealogy of a lot or serial as an indented tree: what it was made from, or with --forward what it went into',
  )
  .option('--forward', 'trace forward (where it went) instead of backward (what it came from)')
  .action((lot: string, o: { forward?: boolean }) =>
    withStore(program.opts(), async (s) => {
      const r = await genealogyTrace(s.db).trace(lot, o.forward ? 'forward' : 'backward');
      if (!r.ok) {
        process.stderr.write(`${r.error.message}\n`);
        process.exitCode = 1;
        return;
      }
      out(formatTraceTree(r.value));
    }),
  );

program
  .command('deliver')
  .description(
    'deliver the due outbox events to the ERP (LOOM_ERP_OUTBOUND_URL and/or LOOM_ERP_OUTBOX_DIR) and print a summary; exit 1 if any failed',
  )
  .requiredOption('--once', 'drain what is due once and exit (`loom start` delivers continuously)')
  .action(() =>
    withStore(program.opts(), async (s) => {
      const erp = erpOutboundFeature({
        config: config(program.opts()),
        db: s.db,
        uow: postgresUnitOfWork(s.db),
        audit: postgresAuditTrail(s.db),
        clock: systemClock,
        auth: authFor(s),
        logger: createLogger(process.env.LOOM_LOG_LEVEL ?? 'warn', process.stderr),
      });
      if (!erp.deliverer) {
        process.stderr.write(
          'loom: outbound delivery is not configured: set LOOM_ERP_OUTBOUND_URL or LOOM_ERP_OUTBOX_DIR\n',
        );
        process.exitCode = 2;
        return;
      }
      const r = await erp.deliverer.drain();
      out(
        `outbox: ${r.claimed} due, ${r.delivered} delivered, ${r.failed} failed (retried later), ${r.dead} dead-lettered`,
      );
      if (r.failed > 0 || r.dead > 0) process.exitCode = 1;
    }),
  );

program
  .command('sim')
  .description('simulated peers')
  .command('erp')
  .description('run the ERP stand-in (receives performance messages, sends orders) until Ctrl-C')
  .option('--port <port>', 'TCP port (default: any free port)')
  .option('--host <host>', 'address to listen on', '127.0.0.1')
  .action(async (o: { port?: string; host: string }) => {
    const port = o.port === undefined ? 0 : Number(o.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      process.stderr.write(`--port ${o.port}: not a TCP port (0-65535)\n`);
      process.exitCode = 2;
      return;
    }
    const erp = await startErpStandIn({ port, host: o.host });
    out(`ERP stand-in on ${erp.url}  (LOOM_ERP_OUTBOUND_URL=${erp.performanceUrl})`);
    stopOnSignal(() => erp.stop());
  });

const simCommand = program.commands.find((c) => c.name() === 'sim')!;
simCommand
  .command('sparkplug')
  .description(
    'run a simulated Sparkplug B edge node (an oven and a press, or a load generator) until Ctrl-C; ' +
      'it publishes NDEATH before it disconnects',
  )
  .option(
    '--url <url>',
    "MQTT broker (default: Loom's: LOOM_MQTT_URL, else the embedded broker mqtt://127.0.0.1:<LOOM_MQTT_PORT, 1884>)",
  )
  .option('--group <id>', 'Sparkplug group id', 'plant1')
  .option('--edge <id>', 'Sparkplug edge node id', 'line1-edge')
  .option('--host-id <id>', 'Primary Host whose STATE online the edge waits for before its BIRTH', 'loom')
  .option('--no-host', 'do not wait for a Primary Host')
  .option('--interval-ms <ms>', 'sampling and publishing period', '1000')
  .option('--bdseq-file <file>', 'keep bdSeq across restarts in this file')
  .option(
    '--load <devices>x<metrics>',
    'load generator instead of the plant: N devices of M changing Doubles',
  )
  .option('--seed <n>', 'random seed of the simulated machines', '1')
  .option('--username <name>', 'MQTT user name')
  .option('--password-stdin', 'read the MQTT password from standard input')
  .action(
    async (o: {
      url?: string;
      group: string;
      edge: string;
      hostId: string;
      host: boolean;
      intervalMs: string;
      bdseqFile?: string;
      load?: string;
      seed: string;
      username?: string;
      passwordStdin?: boolean;
    }) => {
      const bad = (message: string) => {
        process.stderr.write(`${message}\n`);
        process.exitCode = 2;
      };
      const intervalMs = Number(o.intervalMs);
      if (!Number.isInteger(intervalMs) || intervalMs < 10)
        return bad(`--interval-ms ${o.intervalMs}: a whole number ≥ 10`);
      const devices = o.load === undefined ? DEFAULT_PLANT_DEVICES : parseLoadSpec(o.load);
      if (!devices) return bad(`--load ${o.load}: expected <devices>x<metrics>, e.g. 10x100`);
      const seed = Number(o.seed);
      if (!Number.isInteger(seed)) return bad(`--seed ${o.seed}: a whole number`);
      const cfg = o.url === undefined ? config(program.opts()) : undefined;
      const url = o.url ?? cfg?.mqttUrl ?? `mqtt://127.0.0.1:${cfg?.mqttPort}`;
      const password = o.passwordStdin ? readFileSync(0, 'utf8').replace(/\r?\n$/, '') : undefined;
      let edge: SparkplugEdgeNode;
      try {
        edge = new SparkplugEdgeNode({
          url,
          groupId: o.group,
          edgeNodeId: o.edge,
          primaryHostId: o.host ? o.hostId : null,
          devices,
          intervalMs,
          seed,
          logger: createLogger(process.env.LOOM_LOG_LEVEL ?? 'info', process.stderr),
          ...(o.bdseqFile ? { bdSeqFile: o.bdseqFile } : {}),
          ...(o.username ? { username: o.username } : {}),
          ...(password !== undefined ? { password } : {}),
        });
      } catch (e) {
        if (e instanceof RangeError) return bad(e.message);
        throw e;
      }
      await edge.start();
      out(
        `Sparkplug edge node ${o.group}/${o.edge} → ${url.replace(/\/\/[^@/]*@/, '//***@')}` +
          (o.host ? ` (waiting for Primary Host '${o.hostId}')` : ''),
      );
      stopOnSignal(() => edge.stop());
    },
  );

simCommand
  .command('opcua')
  .description(
    'run a simulated PLC (an oven or a press) as an OPC UA server until Ctrl-C; it starts in PackML ' +
      'Execute unless --initial-state says otherwise (address space: src/sim/opcua-machine.ts)',
  )
  .option('--kind <kind>', 'oven or press', 'oven')
  .option('--id <id>', 'machine id: object name and namespace urn:loom:sim:<id> (default: <kind>-1)')
  .option('--port <port>', 'TCP port (default: any free port)')
  .option('--host <host>', 'address to listen on and to advertise', '127.0.0.1')
  .option('--seed <n>', 'random seed of the physics', '1')
  .option('--pki-dir <dir>', "the server's PKI folder (default: <data dir>/sim-opcua/<id>)")
  .option('--initial-state <state>', 'PackML state at start', 'Execute')
  .option('--items <n>', 'bulk Double items Load/ValueNNNN for benchmarks', '0')
  .option('--item-interval-ms <ms>', 'every bulk item changes this often', '100')
  .option('--security-modes <list>', 'of None,Sign,SignAndEncrypt (default: all)')
  .option(
    '--security-policies <list>',
    'of Basic256Sha256,Aes128_Sha256_RsaOaep,Aes256_Sha256_RsaPss (default: all)',
  )
  .option('--no-anonymous', 'refuse anonymous sessions')
  .option('--require-trusted-clients', "accept only client certificates in the PKI's trusted/ folder")
  .option('--username <name>', 'the user name accepted (with --password-stdin)')
  .option('--password-stdin', 'read that user’s password from standard input')
  .action(
    async (o: {
      kind: string;
      id?: string;
      port?: string;
      host: string;
      seed: string;
      pkiDir?: string;
      initialState: string;
      items: string;
      itemIntervalMs: string;
      securityModes?: string;
      securityPolicies?: string;
      anonymous: boolean;
      requireTrustedClients?: boolean;
      username?: string;
      passwordStdin?: boolean;
    }) => {
      const bad = (message: string) => {
        process.stderr.write(`${message}\n`);
        process.exitCode = 2;
      };
      // Loaded here: node-opcua takes seconds to import, which no other command should pay.
      const { parseOpcUaMachineArgs, startOpcUaMachine } = await import('../sim/opcua-machine.ts');
      const parsed = parseOpcUaMachineArgs(
        { ...o, requireTrustedClients: o.requireTrustedClients ?? false },
        o.pkiDir === undefined ? config(program.opts()).dataDir : undefined,
      );
      if (!parsed.ok) return bad(parsed.message);
      if ((o.username === undefined) !== !o.passwordStdin) {
        return bad('--username and --password-stdin go together');
      }
      const password = o.passwordStdin ? readFileSync(0, 'utf8').replace(/\r?\n$/, '') : undefined;
      const machine = await startOpcUaMachine({
        ...parsed.options,
        ...(o.username !== undefined && password !== undefined
          ? { user: { username: o.username, password } }
          : {}),
        logger: createLogger(process.env.LOOM_LOG_LEVEL ?? 'info', process.stderr),
      });
      out(
        `OPC UA ${parsed.options.kind} ${parsed.options.machineId} on ${machine.endpointUrl} ` +
          `(namespace ${machine.namespaceUri}, server certificate ${machine.certificateFile})`,
      );
      stopOnSignal(() => machine.stop());
    },
  );

function describeImport(file: string, s: ImportSummary): string {
  const lines = [`${s.dryRun ? 'dry run, nothing written' : 'imported'}: ${file}`];
  for (const [section, c] of Object.entries(s)) {
    if (typeof c === 'boolean') continue;
    lines.push(
      `  ${section.padEnd(15)} ${c.created} created, ${c.updated} updated, ${c.unchanged} unchanged`,
    );
  }
  return lines.join('\n');
}

program
  .command('import <file>')
  .description(
    'load a plant model (YAML or JSON) in one transaction: all of it or nothing; exit 2 lists every problem by its path in the file',
  )
  .option('--dry-run', 'validate and report what would change, write nothing')
  .action((file: string, o: { dryRun?: boolean }) =>
    withStore(program.opts(), async (s) => {
      const parsed = parsePlantFile(await readFile(file, 'utf8'));
      const r = parsed.ok
        ? await plantService({
            db: s.db,
            uow: postgresUnitOfWork(s.db),
            audit: postgresAuditTrail(s.db),
          }).importPlantModel({ userId: null, username: 'cli', roles: ['admin'] }, parsed.value, {
            dryRun: o.dryRun ?? false,
          })
        : parsed;
      if (r.ok) {
        out(describeImport(file, r.value));
        return;
      }
      process.stderr.write(`${file}: ${r.error.message}; nothing was imported\n`);
      for (const issue of r.error.issues ?? []) {
        process.stderr.write(`  ${issue.path || '(file)'}: ${issue.message}\n`);
      }
      process.exitCode = 2;
    }),
  );

export async function runCli(argv: string[]): Promise<void> {
  try {
    await program.parseAsync(argv);
  } catch (e) {
    fatal(e);
  }
}

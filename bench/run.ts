/**
 * `npm run bench [-- completions|trace] [--profile] [--quick]`: the issue #3 benchmarks on
 * PostgreSQL, printed as Markdown and written to bench/RESULTS.md. Never part of `npm test`.
 * See bench/README.md for the environment variables.
 */
import { execFileSync } from 'node:child_process';
import { appendFileSync, existsSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { benchCompletions } from './completions.ts';
import { openBenchPostgres } from './postgres.ts';
import { benchTrace } from './trace.ts';

const args = process.argv.slice(2);
const known = new Set(['completions', 'trace', '--profile', '--quick', '--no-write']);
const unknown = args.filter((a) => !known.has(a));
if (unknown.length) {
  console.error(
    `unknown argument(s) ${unknown.join(', ')}; use: [completions|trace] [--profile] [--quick] [--no-write]`,
  );
  process.exit(2);
}
const only = args.filter((a) => !a.startsWith('--'));
const selected = only.length ? only : ['completions', 'trace'];
const profile = args.includes('--profile');
const quick = args.includes('--quick');

const int = (name: string, fallback: number) => {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) {
    console.error(`${name} must be a positive whole number, got '${v}'`);
    process.exit(2);
  }
  return n;
};

// Every bench stops by itself; this only guards against a hang (issue #3: total < 10 minutes).
const deadline = setTimeout(
  () => {
    console.error('bench: time limit reached, aborting');
    process.exit(3);
  },
  int('LOOM_BENCH_TIMEOUT_S', 600) * 1000,
);
deadline.unref();

const log = (line: string) => console.error(line);
const started = new Date();
const postgres = await openBenchPostgres(process.env, { statementStats: profile });
const sections: string[] = [];
let failed = false;
try {
  const machine = [
    `- Machine: ${cpus().length} CPU (\`nproc\` ${execFileSync('nproc').toString().trim()}), ${cpus()[0]?.model ?? '?'}`,
    `- Node ${process.version}; ${postgres.describe}`,
    `- Loom, the load generator and PostgreSQL share the machine; each server runs in its own Node process.`,
    `- Load average (1/5/15 min) at start: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' / ')} — other work on the machine shows here`,
  ].join('\n');
  sections.push(machine);
  if (selected.includes('completions')) {
    log('completions: operation completions through the HTTP API');
    const r = await benchCompletions(
      postgres,
      {
        concurrency: int('LOOM_BENCH_CONCURRENCY', 16),
        count: int('LOOM_BENCH_COMPLETIONS', quick ? 1000 : 3000),
        warmup: int('LOOM_BENCH_WARMUP', quick ? 200 : 500),
        runs: int('LOOM_BENCH_RUNS', quick ? 1 : 3),
        poolSize: int('LOOM_BENCH_POOL_SIZE', 10),
        logLevel: process.env.LOOM_BENCH_LOG_LEVEL ?? 'info',
        profile,
      },
      log,
    );
    sections.push(r.markdown);
  }
  if (selected.includes('trace')) {
    log('trace: backward and forward trace on a generated genealogy');
    const r = await benchTrace(
      postgres,
      {
        edges: int('LOOM_BENCH_TRACE_EDGES', quick ? 100_000 : 1_000_000),
        samples: int('LOOM_BENCH_TRACE_SAMPLES', quick ? 40 : 200),
        cellSeconds: int('LOOM_BENCH_TRACE_CELL_S', quick ? 5 : 15),
      },
      log,
    );
    sections.push(r.markdown);
  }
  sections.push(
    `Load average at end: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' / ')}.`,
  );
} catch (e) {
  failed = true;
  console.error(e);
} finally {
  await postgres.stop();
}
if (failed) process.exit(1);

const command = `npm run bench${args.length ? ` -- ${args.join(' ')}` : ''}`;
const envShown = Object.entries(process.env)
  .filter(([k]) => k.startsWith('LOOM_BENCH_'))
  .map(([k, v]) => `${k}=${k === 'LOOM_BENCH_DATABASE_URL' ? '(server URL)' : v}`)
  .join(' ');
const report = [
  `## ${started.toISOString().slice(0, 10)}: \`${envShown ? `${envShown} ` : ''}${command}\``,
  '',
  ...sections.flatMap((s) => [s, '']),
].join('\n');
console.log(report);
if (!args.includes('--no-write')) {
  // The file is the record of every session's runs and the notes between them: a run appends its
  // report (it replaced the whole file once, and each session had to put the history back by hand).
  const file = new URL('./RESULTS.md', import.meta.url);
  if (existsSync(file)) appendFileSync(file, `\n${report}`);
  else
    writeFileSync(
      file,
      `# Benchmark results\n\nAppended by \`npm run bench\`, oldest first; commit it to keep a record. ` +
        `How to run: bench/README.md.\n\n${report}`,
    );
  log(`appended to bench/RESULTS.md`);
}

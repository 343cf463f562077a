import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { elementIn, type XmlIssue } from './b2mml-xml.ts';

export type XsdVerdict =
  | { readonly valid: true }
  /** `malformed`: not well-formed XML at all; `invalid`: well-formed but against the schema. */
  | { readonly valid: false; readonly kind: 'malformed' | 'invalid'; readonly issues: readonly XmlIssue[] };

/** Validates a document against one XSD of a schema set (the file that declares its root element). */
export interface XsdValidator {
  /** `xmllint` (the libxml2 binary) or `xmllint-wasm`. */
  readonly engine: string;
  validate(xml: string, schemaFile: string): Promise<XsdVerdict>;
}

/** The MESA B2MML schema folder of a version, shipped in the repository (schemas/b2mml/). */
export function b2mmlSchemaDir(version: 'V0600' = 'V0600'): string {
  return fileURLToPath(new URL(`../../../schemas/b2mml/${version}/`, import.meta.url));
}

/**
 * The issues in xmllint's report (`<file>:<line>: element X: Schemas validity error : …`), without
 * the schema parser's "Skipping import" warnings the B2MML extension imports always cause.
 */
export function issuesFromXmllint(output: string, documentName: string): XmlIssue[] {
  const issues: XmlIssue[] = [];
  for (const raw of output.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.endsWith(' validates') || line.endsWith('fails to validate')) continue;
    if (/Schemas parser warning|Skipping import/.test(line)) continue;
    if (line === '^' || !line.startsWith(`${documentName}:`)) continue;
    const m = /^[^:]+:(\d+):\s*(.*)$/.exec(line);
    const message = (m?.[2] ?? line)
      .replace(/^element [\w.-]+: /, '')
      .replace(/^Schemas validity error : /, '')
      .trim();
    issues.push({ line: m ? Number(m[1]) : null, element: elementIn(message), message });
  }
  return issues;
}

const isMalformed = (output: string) => /parser error/.test(output);

/**
 * Limits concurrent validations: each one compiles the schema set (tens of MB for B2MML), so a
 * burst of messages must queue rather than exhaust memory.
 */
class Gate {
  #free: number;
  readonly #waiting: (() => void)[] = [];
  constructor(slots: number) {
    this.#free = slots;
  }
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#free === 0) await new Promise<void>((resolve) => this.#waiting.push(resolve));
    else this.#free--;
    try {
      return await fn();
    } finally {
      const next = this.#waiting.shift();
      if (next) next();
      else this.#free++;
    }
  }
}

/** The libxml2 `xmllint` binary (Debian libxml2-utils): ~40 ms per B2MML message with schema compilation. */
export function xmllintBinaryValidator(opts: {
  schemaDir: string;
  binary?: string;
  timeoutMs?: number;
  concurrency?: number;
}): XsdValidator {
  const binary = opts.binary ?? 'xmllint';
  const gate = new Gate(opts.concurrency ?? 4);
  return {
    engine: 'xmllint',
    validate: (xml, schemaFile) =>
      gate.run(
        () =>
          new Promise<XsdVerdict>((resolve, reject) => {
            // --nonet: the schemas are local; no document may make Loom fetch anything.
            const child = spawn(
              binary,
              ['--noout', '--nonet', '--schema', path.join(opts.schemaDir, schemaFile), '-'],
              { stdio: ['pipe', 'ignore', 'pipe'], timeout: opts.timeoutMs ?? 30_000 },
            );
            let stderr = '';
            child.stderr.setEncoding('utf8');
            child.stderr.on('data', (d: string) => {
              if (stderr.length < 1_000_000) stderr += d;
            });
            child.on('error', reject);
            child.stdin.on('error', () => undefined);
            child.on('close', (code, signal) => {
              if (code === 0) return resolve({ valid: true });
              if (signal) return reject(new Error(`xmllint ended by ${signal}`));
              const issues = issuesFromXmllint(stderr, '-');
              if (code === 3 || code === 4 || code === 1) {
                return resolve({ valid: false, kind: isMalformed(stderr) ? 'malformed' : 'invalid', issues });
              }
              reject(new Error(`xmllint exited with ${code}: ${stderr.slice(0, 2000)}`));
            });
            child.stdin.end(xml);
          }),
      ),
  };
}

/**
 * libxml2 compiled to WebAssembly (npm xmllint-wasm): no system package needed, but each call
 * starts a worker and compiles the schema set there (about 1.5 s per B2MML message on two cores,
 * as V8 compiles the module anew in every worker). The fallback when the binary is missing.
 */
export async function xmllintWasmValidator(opts: {
  schemaDir: string;
  concurrency?: number;
}): Promise<XsdValidator> {
  const { validateXML, memoryPages } = await import('xmllint-wasm');
  // Read once: every call hands the whole schema set to the worker's in-memory file system.
  const files = readdirSync(opts.schemaDir)
    .filter((f) => f.endsWith('.xsd'))
    .map((f) => ({ fileName: f, contents: readFileSync(path.join(opts.schemaDir, f), 'utf8') }));
  const gate = new Gate(opts.concurrency ?? 2);
  return {
    engine: 'xmllint-wasm',
    validate: (xml, schemaFile) =>
      gate.run(async () => {
        const schema = files.find((f) => f.fileName === schemaFile);
        if (!schema) throw new Error(`no schema ${schemaFile} in ${opts.schemaDir}`);
        const r = await validateXML({
          xml: [{ fileName: 'message.xml', contents: xml }],
          schema: [schema],
          preload: files.filter((f) => f !== schema),
          maxMemoryPages: 512 * memoryPages.MiB,
        });
        if (r.valid) return { valid: true };
        return {
          valid: false,
          kind: isMalformed(r.rawOutput) ? 'malformed' : 'invalid',
          issues: issuesFromXmllint(r.rawOutput, 'message.xml'),
        };
      }),
  };
}

/** Whether the xmllint binary can be run. */
export function xmllintBinaryAvailable(binary = 'xmllint'): boolean {
  const r = spawnSync(binary, ['--version'], { stdio: 'ignore', timeout: 5000 });
  return r.status === 0;
}

/**
 * The validator to use: the xmllint binary when installed (`apt-get install libxml2-utils`),
 * else the WebAssembly build. `engine` forces one.
 */
export async function createXsdValidator(
  opts: { schemaDir?: string; engine?: 'auto' | 'xmllint' | 'xmllint-wasm' } = {},
): Promise<XsdValidator> {
  const schemaDir = opts.schemaDir ?? b2mmlSchemaDir();
  const engine = opts.engine ?? 'auto';
  if (engine === 'xmllint' || (engine === 'auto' && xmllintBinaryAvailable())) {
    return xmllintBinaryValidator({ schemaDir });
  }
  return xmllintWasmValidator({ schemaDir });
}

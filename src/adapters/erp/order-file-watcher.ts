import { mkdir, readFile, readdir, rename, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fsyncDir } from './csv-actuals-folder.ts';

/** One reason a file was refused; `line` is null when the problem has no single line (a path names it). */
export interface FileProblem {
  readonly line: number | null;
  readonly message: string;
}

/** What a handler made of one file: accepted, or refused naming the line and the problem. */
export type FileOutcome =
  | { readonly ok: true; readonly summary: string }
  | {
      readonly ok: false;
      /** The refusal as a whole (`LOOM_B2MML_SCHEMA_INVALID: …`), written above the problems. */
      readonly reason?: string;
      readonly problems: readonly FileProblem[];
    };

/** Handles one file's content; throws only for infrastructure failure (the file is retried). */
export type OrderFileHandler = (name: string, content: string) => Promise<FileOutcome>;

export interface OrderFileWatcherOptions {
  readonly dir: string;
  /** By extension, lower case without the dot: `csv`, `xml`. Other files are left alone. */
  readonly handlers: Readonly<Record<string, OrderFileHandler>>;
  readonly pollMs?: number;
  /** Larger files are refused without being read. */
  readonly maxBytes?: number;
  readonly onError?: (error: unknown, file: string) => void;
  readonly onProcessed?: (file: string, outcome: FileOutcome) => void;
}

export interface OrderFileWatcher {
  start(): void;
  stop(): Promise<void>;
  /** One poll (tests and `--once`): returns the files it moved. */
  poll(): Promise<string[]>;
}

/**
 * The legacy file drop. Every `pollMs` the folder is listed (fs.watch is unreliable on network
 * shares and misses events under load, so polling is the mechanism, not a fallback). A file is
 * taken only when its name does not start with `.` and its size and mtime are unchanged since the
 * previous poll, so a file still being copied in is left for later; writers that can should write
 * `.name.tmp` and rename it to `name.csv` when complete. A taken file is processed once and moved to
 * `processed/`, or to `failed/` with `<name>.error.txt` beside it naming each bad line.
 */
export function orderFileWatcher(o: OrderFileWatcherOptions): OrderFileWatcher {
  const pollMs = o.pollMs ?? 1000;
  const maxBytes = o.maxBytes ?? 16 * 1024 * 1024;
  const seen = new Map<string, string>();
  let timer: NodeJS.Timeout | undefined;
  let current: Promise<unknown> = Promise.resolve();
  let stopped = true;

  async function moveTo(sub: 'processed' | 'failed', name: string): Promise<string> {
    const target = path.join(o.dir, sub);
    await mkdir(target, { recursive: true });
    let dest = path.join(target, name);
    if (await exists(dest)) dest = path.join(target, `${stamp()}-${name}`);
    await rename(path.join(o.dir, name), dest);
    await fsyncDir(target);
    return dest;
  }

  async function fail(name: string, outcome: Extract<FileOutcome, { ok: false }>) {
    const dest = await moveTo('failed', name);
    const text =
      `${name}: refused, nothing was created.\n` +
      (outcome.reason ? `${outcome.reason}\n` : '') +
      outcome.problems.map((p) => (p.line === null ? p.message : `line ${p.line}: ${p.message}`)).join('\n') +
      '\n';
    await writeFile(`${dest}.error.txt`, text, 'utf8');
  }

  async function poll(): Promise<string[]> {
    const moved: string[] = [];
    let entries: string[];
    try {
      entries = await readdir(o.dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
        await mkdir(o.dir, { recursive: true });
        return moved;
      }
      throw e;
    }
    const present = new Set<string>();
    for (const name of entries.sort()) {
      if (name.startsWith('.')) continue;
      const handler = o.handlers[path.extname(name).slice(1).toLowerCase()];
      if (!handler) continue;
      const full = path.join(o.dir, name);
      const st = await stat(full).catch(() => null);
      if (!st?.isFile()) continue;
      present.add(name);
      const signature = `${st.size}:${st.mtimeMs}`;
      if (seen.get(name) !== signature) {
        seen.set(name, signature);
        continue;
      }
      try {
        let outcome: FileOutcome;
        if (st.size > maxBytes) {
          outcome = {
            ok: false,
            problems: [{ line: 0, message: `the file is larger than ${maxBytes} bytes` }],
          };
        } else {
          const content = await readFile(full, 'utf8');
          outcome = await handler(name, content);
        }
        if (outcome.ok) await moveTo('processed', name);
        else await fail(name, outcome);
        seen.delete(name);
        moved.push(name);
        o.onProcessed?.(name, outcome);
      } catch (e) {
        o.onError?.(e, name);
      }
    }
    for (const name of seen.keys()) if (!present.has(name)) seen.delete(name);
    return moved;
  }

  const tick = () => {
    current = poll()
      .catch((e: unknown) => o.onError?.(e, o.dir))
      .finally(() => {
        if (!stopped) timer = setTimeout(tick, pollMs);
      });
  };

  return {
    poll,
    start() {
      if (!stopped) return;
      stopped = false;
      timer = setTimeout(tick, 0);
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await current;
    },
  };
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

function stamp(): string {
  return new Date().toISOString().replace(/[:.]/g, '-');
}

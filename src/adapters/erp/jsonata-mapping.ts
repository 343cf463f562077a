import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import jsonata from 'jsonata';
import { fail, ok, type Result } from '../../domain/shared/result.ts';

/** A mapping's name: it becomes a file name, so nothing that could leave the folder. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

/**
 * Declarative field mappings for ERPs that send their own JSON (`<dir>/<name>.jsonata`): a JSONata
 * expression turns the ERP's body into Loom's order shape (one order, an array, or
 * `{ orders: [...] }`). Integrators write the file; no code changes. Compiled expressions are
 * cached until the file's modification time changes.
 */
export class JsonataMappings {
  readonly #dir: string;
  readonly #cache = new Map<string, { mtimeMs: number; expression: jsonata.Expression }>();

  constructor(dir: string) {
    this.#dir = path.resolve(dir);
  }

  async #load(name: string): Promise<Result<jsonata.Expression>> {
    if (!NAME.test(name)) {
      return fail('LOOM_VALIDATION_FAILED', `Mapping name '${name}' is not valid.`, {
        issues: [{ path: 'params.mapping', message: "must be 1-64 letters, digits, '_' or '-'" }],
      });
    }
    const file = path.join(this.#dir, `${name}.jsonata`);
    if (path.dirname(file) !== this.#dir) {
      return fail('LOOM_VALIDATION_FAILED', `Mapping name '${name}' is not valid.`);
    }
    let mtimeMs: number;
    try {
      mtimeMs = (await stat(file)).mtimeMs;
    } catch {
      return fail(
        'LOOM_ERP_MAPPING_NOT_FOUND',
        `There is no ERP mapping '${name}' (looked for ${name}.jsonata).`,
        {
          details: { mapping: name },
        },
      );
    }
    const cached = this.#cache.get(name);
    if (cached && cached.mtimeMs === mtimeMs) return ok(cached.expression);
    const text = await readFile(file, 'utf8');
    try {
      const expression = jsonata(text);
      this.#cache.set(name, { mtimeMs, expression });
      return ok(expression);
    } catch (e) {
      return fail('LOOM_ERP_MAPPING_INVALID', `ERP mapping '${name}' does not compile: ${describe(e)}`, {
        details: { mapping: name },
      });
    }
  }

  /** The body transformed by mapping `name`, as a list of Loom orders (still to be validated). */
  async transform(name: string, body: unknown): Promise<Result<unknown[]>> {
    const expression = await this.#load(name);
    if (!expression.ok) return expression;
    let out: unknown;
    try {
      out = (await expression.value.evaluate(body)) as unknown;
    } catch (e) {
      return fail('LOOM_ERP_MAPPING_FAILED', `ERP mapping '${name}' failed on this body: ${describe(e)}`, {
        details: { mapping: name },
      });
    }
    if (out === undefined || out === null) {
      return fail('LOOM_ERP_MAPPING_FAILED', `ERP mapping '${name}' produced no orders from this body.`, {
        details: { mapping: name },
      });
    }
    const orders = Array.isArray(out)
      ? out
      : typeof out === 'object' && Array.isArray((out as { orders?: unknown }).orders)
        ? (out as { orders: unknown[] }).orders
        : [out];
    // JSONata sequences carry a marker property; plain copies keep the zod strict check honest.
    return ok(orders.map((o) => JSON.parse(JSON.stringify(o)) as unknown));
  }
}

function describe(e: unknown): string {
  if (typeof e !== 'object' || e === null) return String(e);
  const x = e as { message?: unknown; code?: unknown; position?: unknown };
  const message = typeof x.message === 'string' ? x.message : 'error';
  const code = typeof x.code === 'string' ? ` ${x.code}` : '';
  const at = typeof x.position === 'number' ? ` at character ${x.position}` : '';
  return `${message}${code || at ? ` (${code.trim()}${at})` : ''}`;
}

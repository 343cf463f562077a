import { fail, ok, type Result } from './result.ts';

/**
 * An exact quantity: an integer count of millionths (scale 6), kept as bigint so sums of
 * consumptions never drift (1000 × 0.1 kg is exactly 100 kg). PostgreSQL stores it as
 * numeric(20,6); the API speaks decimal strings or JSON numbers with at most 6 decimals.
 */
export type Quantity = bigint & { readonly __quantity: true };

export const QUANTITY_SCALE = 6;
const FACTOR = 10n ** BigInt(QUANTITY_SCALE);
/** numeric(20,6): 14 integer digits. */
const MAX = 10n ** 14n * FACTOR - 1n;

const DECIMAL = /^(-)?(\d{1,14})(?:\.(\d{1,6}))?$/;

export function parseQuantity(input: unknown, field = 'quantity'): Result<Quantity> {
  let text: string;
  if (typeof input === 'number') {
    if (!Number.isFinite(input)) return bad(field, 'must be a finite number');
    // A JSON number with more than 6 decimals would be silently rounded: refuse it instead.
    text = String(input);
    if (/e/i.test(text)) text = input.toFixed(QUANTITY_SCALE + 1);
  } else if (typeof input === 'string') {
    text = input.trim();
  } else {
    return bad(field, 'must be a number or a decimal string such as "12.5"');
  }
  const m = DECIMAL.exec(text);
  if (!m)
    return bad(
      field,
      `must be a decimal with at most 14 digits before and ${QUANTITY_SCALE} after the point; got '${String(input)}'`,
    );
  const [, sign, whole, frac = ''] = m;
  const units = BigInt(whole!) * FACTOR + BigInt(frac.padEnd(QUANTITY_SCALE, '0'));
  const value = sign ? -units : units;
  if (value > MAX || value < -MAX) return bad(field, 'is too large');
  return ok(value as Quantity);
}

export function parsePositiveQuantity(input: unknown, field = 'quantity'): Result<Quantity> {
  const r = parseQuantity(input, field);
  if (r.ok && r.value <= 0n) return bad(field, `must be greater than 0; got ${formatQuantity(r.value)}`);
  return r;
}

export function parseNonNegativeQuantity(input: unknown, field = 'quantity'): Result<Quantity> {
  const r = parseQuantity(input, field);
  if (r.ok && r.value < 0n) return bad(field, `must not be negative; got ${formatQuantity(r.value)}`);
  return r;
}

/** PostgreSQL numeric text (`"12.500000"`, `"3"`) → Quantity. Throws: the database is trusted. */
export function quantityFromDb(text: string): Quantity {
  const r = parseQuantity(text);
  if (!r.ok) throw new Error(`bad quantity from database: ${text}`);
  return r.value;
}

/** Shortest exact decimal text: 12.5, 3, 0.000001. */
export function formatQuantity(q: bigint): string {
  const neg = q < 0n;
  const abs = neg ? -q : q;
  const whole = abs / FACTOR;
  const frac = (abs % FACTOR).toString().padStart(QUANTITY_SCALE, '0').replace(/0+$/, '');
  return `${neg ? '-' : ''}${whole}${frac ? `.${frac}` : ''}`;
}

export const ZERO = 0n as Quantity;
export const add = (a: Quantity, b: Quantity): Quantity => (a + b) as Quantity;
export const sub = (a: Quantity, b: Quantity): Quantity => (a - b) as Quantity;
export const sum = (qs: readonly Quantity[]): Quantity => qs.reduce(add, ZERO);
export const min = (a: Quantity, b: Quantity): Quantity => (a < b ? a : b);
export const max = (a: Quantity, b: Quantity): Quantity => (a > b ? a : b);
/** Exact ratio as a float for KPIs (never stored back as a quantity). */
export const ratio = (a: Quantity, b: Quantity): number | null =>
  b === 0n ? null : Number((a * 1_000_000n) / b) / 1_000_000;
export const fromWhole = (n: number): Quantity => (BigInt(n) * FACTOR) as Quantity;

function bad(field: string, message: string): Result<Quantity> {
  return fail('LOOM_VALIDATION_FAILED', `${field} ${message}`, { issues: [{ path: field, message }] });
}

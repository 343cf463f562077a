import { z } from 'zod';
import { parseAt } from '../../domain/shared/field-issues.ts';
import { fail, ok, type FieldIssue, type Result } from '../../domain/shared/result.ts';
import type { Principal } from '../auth/auth-service.ts';
import type { CommandContext } from '../execution/execution-deps.ts';
import type { LotView, MaterialDeps } from '../material/lot-view.ts';
import { receiveLot } from '../material/receive-lot.ts';
import type { Tx } from '../ports.ts';
import type { ItemError } from './accept-orders.ts';

const Text = z.string().min(1).max(200);

/** A lot of an ERP goods receipt; the same rules as `POST /api/lots`. */
export const LotReceiptSchema = z.strictObject({
  id: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._:/-]{0,99}$/, "must be 1-100 letters, digits, '.', '_', ':', '/' or '-'"),
  material: Text,
  quantity: z.union([z.string().max(40), z.number()]).optional(),
  unit: Text.optional(),
  status: z.enum(['Quarantine', 'Released']).optional(),
  supplierLot: Text.optional(),
  location: Text.optional(),
});

/**
 * Receives the lots of an ERP goods receipt in the caller's transaction, all or nothing; every
 * refused lot is reported with its path (`lots[2].material`).
 */
export async function receiveLots(
  deps: MaterialDeps,
  tx: Tx,
  actor: Principal,
  items: readonly unknown[],
  ctx: CommandContext,
  pathOf: (index: number) => string,
): Promise<Result<LotView[]>> {
  const issues: FieldIssue[] = [];
  const lots: z.output<typeof LotReceiptSchema>[] = [];
  items.forEach((item, index) => {
    const parsed = parseAt(LotReceiptSchema, item, pathOf(index), 'lot');
    if (parsed.ok) lots.push(parsed.value);
    else issues.push(...parsed.issues);
  });
  if (issues.length > 0) {
    return fail(
      'LOOM_VALIDATION_FAILED',
      `Invalid lots: ${issues.map((i) => `${i.path} ${i.message}`).join('; ')}`,
      {
        issues,
      },
    );
  }
  const errors: ItemError[] = [];
  const out: LotView[] = [];
  for (const [index, lot] of lots.entries()) {
    const r = await receiveLot(
      deps,
      tx,
      { actor, requestId: ctx.requestId, idempotency: null, status: 201 },
      lot,
    );
    if (r.ok) {
      out.push(r.value);
      continue;
    }
    const own = r.error.issues ?? [];
    if (own.length === 0) errors.push({ path: pathOf(index), code: r.error.code, message: r.error.message });
    for (const i of own)
      errors.push({ path: `${pathOf(index)}.${i.path}`, code: r.error.code, message: i.message });
  }
  if (errors.length > 0) {
    const only = errors.length === 1 && lots.length === 1 ? errors[0]! : null;
    return fail(
      only ? only.code : 'LOOM_ERP_LOTS_REJECTED',
      only
        ? `${only.path}: ${only.message}`
        : `${errors.length} of ${lots.length} lots were refused; nothing was received: ${errors
            .slice(0, 5)
            .map((e) => `${e.path} ${e.message}`)
            .join('; ')}`,
      {
        issues: errors.map((e) => ({ path: e.path, message: `${e.code}: ${e.message}` })),
        details: { errors },
      },
    );
  }
  return ok(out);
}

import type { Actor } from '../../domain/auth/roles.ts';
import { ok, type Result } from '../../domain/shared/result.ts';
import { createOrder } from '../execution/create-order.ts';
import type { ExecutionDeps } from '../execution/execution-deps.ts';

/** One order line of a legacy ERP file, already parsed. */
export interface OrderFileRow {
  readonly line: number;
  readonly externalId: string;
  readonly product: string;
  readonly quantity: string;
  readonly dueAt: string | null;
  readonly priority: number | undefined;
}

export interface OrderFileSummary {
  readonly created: number;
  readonly updated: number;
  readonly unchanged: number;
  readonly orders: readonly string[];
}

export interface OrderFileProblem {
  readonly line: number;
  readonly message: string;
}

/** The actor of orders that arrive through the file drop. */
export const FILE_DROP_ACTOR: Actor = { userId: null, username: 'erp-file-drop', roles: ['integration'] };

class FileRefused extends Error {
  constructor(readonly problem: OrderFileProblem) {
    super(problem.message);
  }
}

/**
 * All orders of one file in one transaction: every row is created (idempotent on its externalId,
 * like `POST /api/orders`) or none is, and the first refused row is named by its line. Processing a
 * file twice (a crash between commit and moving it to `processed/`) changes nothing the second
 * time: every order comes back `unchanged`.
 */
export async function importOrderFile(
  deps: ExecutionDeps,
  file: string,
  rows: readonly OrderFileRow[],
): Promise<Result<OrderFileSummary, { code: string; message: string; problem: OrderFileProblem }>> {
  try {
    return ok(
      await deps.uow.run(async (tx) => {
        const summary = { created: 0, updated: 0, unchanged: 0, orders: [] as string[] };
        for (const row of rows) {
          const r = await createOrder(
            deps,
            tx,
            FILE_DROP_ACTOR,
            {
              externalId: row.externalId,
              product: row.product,
              quantity: row.quantity,
              dueAt: row.dueAt,
              ...(row.priority !== undefined ? { priority: row.priority } : {}),
            },
            { requestId: `file:${file}` },
          );
          if (!r.ok) {
            const where = r.error.issues?.map((i) => `${i.path}: ${i.message}`).join('; ');
            throw new FileRefused({
              line: row.line,
              message: `${r.error.code}: ${r.error.message}${where ? ` (${where})` : ''}`,
            });
          }
          summary[r.value.outcome] += 1;
          summary.orders.push(r.value.order.id);
        }
        return summary;
      }),
    );
  } catch (e) {
    if (e instanceof FileRefused) {
      return {
        ok: false,
        error: { code: 'LOOM_ERP_FILE_REFUSED', message: e.problem.message, problem: e.problem },
      };
    }
    throw e;
  }
}

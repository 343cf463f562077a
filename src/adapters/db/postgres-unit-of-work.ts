import type { Tx, UnitOfWork } from '../../app/ports.ts';
import type { Database, Tx as PgTx } from './postgres-pool.ts';

/** The app layer's Tx is opaque; here it is a pg client inside BEGIN…COMMIT. */
export const asPg = (tx: Tx): PgTx => tx as unknown as PgTx;
export const asTx = (client: PgTx): Tx => client as unknown as Tx;

export function postgresUnitOfWork(db: Database): UnitOfWork {
  return { run: (fn) => db.transaction((client) => fn(asTx(client))) };
}

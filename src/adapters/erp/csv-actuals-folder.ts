import { mkdir, open, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { ActualsFolder } from '../../app/erp/outbox-ports.ts';
import { ACTUAL_EVENT_TYPES, actualsCsv } from './erp-csv.ts';

/**
 * Writes each actual to `<dir>/<messageId>.csv` atomically: a hidden temp file (`.` prefix, so a
 * reader skipping dot-files never sees it half written), fsync, rename, fsync of the folder. A
 * redelivery rewrites the same name with the same content, so the ERP dedupes on the file name.
 */
export function csvActualsFolder(dir: string): ActualsFolder {
  let ready: Promise<unknown> | undefined;
  return {
    accepts: (eventType) => ACTUAL_EVENT_TYPES.has(eventType),
    async write(message) {
      ready ??= mkdir(dir, { recursive: true });
      await ready;
      const final = path.join(dir, `${message.messageId}.csv`);
      const temp = path.join(dir, `.${message.messageId}.${process.pid}.tmp`);
      try {
        const fh = await open(temp, 'w', 0o640);
        try {
          await fh.writeFile(actualsCsv(message), 'utf8');
          await fh.sync();
        } finally {
          await fh.close();
        }
        await rename(temp, final);
      } catch (e) {
        await rm(temp, { force: true });
        throw e;
      }
      await fsyncDir(dir);
    },
  };
}

/** Makes a rename durable (POSIX: the directory entry lives in the folder's own data). */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } catch {
    // Some file systems (and Windows) cannot fsync a directory; the rename is still atomic.
  } finally {
    await fh.close();
  }
}

import { createHash } from 'node:crypto';
import type pg from 'pg';

const statementNames = new Map<string, string>();

/**
 * A named (server-side prepared) statement for `text`: PostgreSQL parses and plans it once per
 * connection instead of on every call, which was a third of its CPU on the completion path
 * (perf, ADR 0011). Only for statements whose text comes from a bounded set of shapes: every
 * connection keeps each one until it closes.
 */
export function prepared(text: string, values: unknown[]): pg.QueryConfig {
  let name = statementNames.get(text);
  if (!name) {
    name = `loom_${createHash('sha1').update(text).digest('hex').slice(0, 20)}`;
    statementNames.set(text, name);
  }
  return { name, text, values };
}

import type { OrderFileRow } from '../../app/erp/import-order-file.ts';
import type { OutboxMessage } from '../../app/erp/outbox-ports.ts';

/**
 * The legacy ERP file formats (pure mappings; the folder I/O is in order-file-watcher.ts and
 * csv-actuals-folder.ts). CSV as RFC 4180: comma separated, optional double quotes, `""` inside
 * quotes, CRLF or LF line ends, UTF-8 (a BOM is ignored).
 */

export const ORDER_CSV_HEADER = ['externalId', 'product', 'quantity', 'dueAt', 'priority'] as const;

/** A parsed order line; the shape the file-import use case takes. */
export type OrderRow = OrderFileRow;

export interface LineProblem {
  readonly line: number;
  readonly message: string;
}

export type OrderCsv = { ok: true; rows: OrderRow[] } | { ok: false; problems: LineProblem[] };

/** Row cap of one order file: larger batches belong on the REST API. */
export const MAX_ORDER_ROWS = 10_000;

/** Splits CSV text into records with the line each starts on. Returns a problem for an unclosed quote. */
export function parseCsvRecords(
  text: string,
): { records: { line: number; fields: string[] }[] } | LineProblem {
  const src = text.startsWith('\uFEFF') ? text.slice(1) : text;
  const records: { line: number; fields: string[] }[] = [];
  let fields: string[] = [];
  let field = '';
  let line = 1;
  let recordLine = 1;
  let inQuotes = false;
  let quoteLine = 0;
  let quoted = false;
  for (let i = 0; i < src.length; i++) {
    const c = src[i]!;
    if (inQuotes) {
      if (c === '"') {
        if (src[i + 1] === '"') {
          field += '"';
          i++;
        } else inQuotes = false;
      } else {
        if (c === '\n') line++;
        field += c;
      }
      continue;
    }
    if (c === '"' && field === '' && !quoted) {
      inQuotes = true;
      quoted = true;
      quoteLine = line;
    } else if (c === ',') {
      fields.push(field);
      field = '';
      quoted = false;
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && src[i + 1] === '\n') i++;
      fields.push(field);
      records.push({ line: recordLine, fields });
      fields = [];
      field = '';
      quoted = false;
      line++;
      recordLine = line;
    } else if (quoted) {
      return { line, message: `unexpected character '${c}' after a closing quote` };
    } else {
      field += c;
    }
  }
  if (inQuotes) return { line: quoteLine, message: 'a quoted field is never closed' };
  if (field !== '' || fields.length > 0 || quoted) {
    fields.push(field);
    records.push({ line: recordLine, fields });
  }
  return { records };
}

/** Parses an order file; reports every bad line (the file is then refused as a whole). */
export function parseOrderCsv(text: string): OrderCsv {
  const parsed = parseCsvRecords(text);
  if ('message' in parsed) return { ok: false, problems: [parsed] };
  const records = parsed.records.filter((r) => !(r.fields.length === 1 && r.fields[0]!.trim() === ''));
  const header = records.shift();
  const expected = ORDER_CSV_HEADER.join(',');
  if (!header || header.fields.map((f) => f.trim()).join(',') !== expected) {
    return {
      ok: false,
      problems: [{ line: header?.line ?? 1, message: `the header must be exactly '${expected}'` }],
    };
  }
  if (records.length === 0)
    return { ok: false, problems: [{ line: header.line, message: 'the file has no orders' }] };
  if (records.length > MAX_ORDER_ROWS) {
    return {
      ok: false,
      problems: [{ line: header.line, message: `more than ${MAX_ORDER_ROWS} orders; split the file` }],
    };
  }
  const problems: LineProblem[] = [];
  const rows: OrderRow[] = [];
  const seen = new Map<string, number>();
  for (const r of records) {
    const bad = (message: string) => problems.push({ line: r.line, message });
    if (r.fields.length !== ORDER_CSV_HEADER.length) {
      bad(`has ${r.fields.length} fields; expected ${ORDER_CSV_HEADER.length} (${expected})`);
      continue;
    }
    const [externalId, product, quantity, dueAt, priority] = r.fields.map((f) => f.trim()) as [
      string,
      string,
      string,
      string,
      string,
    ];
    const before = problems.length;
    if (!externalId) bad('externalId is empty');
    else if (externalId.length > 100) bad('externalId is longer than 100 characters');
    else if (seen.has(externalId)) bad(`externalId '${externalId}' repeats line ${seen.get(externalId)}`);
    if (!product) bad('product is empty');
    else if (product.length > 64) bad('product is longer than 64 characters');
    if (!quantity) bad('quantity is empty');
    if (
      dueAt &&
      (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(dueAt) ||
        Number.isNaN(Date.parse(dueAt)))
    ) {
      bad(`dueAt '${dueAt}' is not an ISO 8601 date-time with a zone (2026-12-01T06:00:00Z)`);
    }
    let prio: number | undefined;
    if (priority) {
      prio = /^\d{1,3}$/.test(priority) ? Number(priority) : NaN;
      if (!(prio >= 1 && prio <= 999)) bad(`priority '${priority}' is not a whole number from 1 to 999`);
    }
    if (externalId) seen.set(externalId, r.line);
    if (problems.length > before) continue;
    rows.push({ line: r.line, externalId, product, quantity, dueAt: dueAt || null, priority: prio });
  }
  return problems.length ? { ok: false, problems } : { ok: true, rows };
}

export const ACTUALS_CSV_HEADER = 'messageId,eventType,orderId,externalId,operation,good,scrap,unit,at';

/** Event types the outbound folder receives: the actuals. */
export const ACTUAL_EVENT_TYPES: ReadonlySet<string> = new Set(['OperationCompleted', 'OrderCompleted']);

/** One actual as a CSV file (header + one record). */
export function actualsCsv(m: OutboxMessage): string {
  const p = (m.payload ?? {}) as Record<string, unknown>;
  const order = (typeof p.order === 'object' && p.order !== null ? p.order : {}) as Record<string, unknown>;
  const str = (v: unknown): string =>
    typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : '';
  const record =
    m.eventType === 'OrderCompleted'
      ? [
          m.messageId,
          m.eventType,
          m.aggregateId,
          str(order.externalId),
          '',
          str(p.goodQuantity),
          '',
          str(order.unit),
          str(p.at),
        ]
      : [
          m.messageId,
          m.eventType,
          m.aggregateId,
          str(p.externalId),
          str(p.operation),
          str(p.good),
          str(p.scrap),
          str(p.unit),
          str(p.at),
        ];
  return `${ACTUALS_CSV_HEADER}\r\n${record.map(csvField).join(',')}\r\n`;
}

/** Quotes a field when it needs it; a leading = + - @ is prefixed with ' against spreadsheet formula injection. */
export function csvField(v: string): string {
  const safe = /^[=+\-@]/.test(v) && !/^-?\d/.test(v) ? `'${v}` : v;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

import type { BatchRecord, OperationRecord, QualityResultEntry } from '../../app/execution/batch-record.ts';
import type { NcrView } from '../../app/quality/quality-views.ts';

const ENTITIES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** Text safe in HTML element content and in quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ENTITIES[c] ?? c);
}

/** Any recorded value as escaped HTML; absent values print as an em dash so a blank is never ambiguous. */
function show(v: unknown): string {
  if (v === null || v === undefined || v === '') return '—';
  if (typeof v === 'string') return escapeHtml(v);
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return escapeHtml(String(v));
  return `<code>${escapeHtml(JSON.stringify(v))}</code>`;
}

/** A value as plain (unescaped) text, for composing a cell that `show` escapes later. */
function plain(v: unknown): string {
  if (v === null || v === undefined) return '—';
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/**
 * An activity's detail as a reader would write it: `good 1, scrap 0, scrapCause crack`, absent
 * values left out, nested values as compact JSON. Not an object: as it is.
 */
function detailText(v: unknown): unknown {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return v;
  const parts = Object.entries(v as Record<string, unknown>)
    .filter(([, x]) => x !== null && x !== undefined && x !== '')
    .map(([k, x]) => `${k} ${plain(x)}`);
  return parts.length ? parts.join(', ') : null;
}

function table(headers: readonly string[], rows: readonly (readonly unknown[])[], empty: string): string {
  if (rows.length === 0) return `<p class="none">${escapeHtml(empty)}</p>`;
  const head = headers.map((h) => `<th>${escapeHtml(h)}</th>`).join('');
  const body = rows.map((r) => `<tr>${r.map((c) => `<td>${show(c)}</td>`).join('')}</tr>`).join('\n');
  return `<table><thead><tr>${head}</tr></thead><tbody>\n${body}\n</tbody></table>`;
}

function fields(pairs: readonly (readonly [string, unknown])[]): string {
  return `<dl class="fields">${pairs
    .map(([k, v]) => `<div><dt>${escapeHtml(k)}</dt><dd>${show(v)}</dd></div>`)
    .join('')}</dl>`;
}

/** A time as `2026-11-25 10:00:00 UTC`: the record is in UTC, whatever the plant's zone. */
function utc(iso: string | null): string | null {
  return iso === null ? null : `${iso.slice(0, 10)} ${iso.slice(11, 19)} UTC`;
}

function quantity(q: string, unit: string): string {
  return `${q} ${unit}`;
}

function parameterRows(parameters: readonly unknown[]): unknown[][] {
  return parameters.map((p) => {
    if (typeof p !== 'object' || p === null) return [p, null, null, null];
    const { name, value, unit, min, max, ...rest } = p as Record<string, unknown>;
    const limits = min === undefined && max === undefined ? null : `${plain(min)} … ${plain(max)}`;
    return [name, Object.keys(rest).length ? { value, ...rest } : value, unit, limits];
  });
}

function resultLimits(r: QualityResultEntry): string | null {
  if (r.kind === 'attribute') return 'pass/fail';
  if (r.lsl === null && r.usl === null) return null;
  return `${r.lsl ?? '—'} … ${r.usl ?? '—'}`;
}

function ncrBlock(n: NcrView): string {
  const sig = n.signature;
  return `<div class="ncr">
<h4>${escapeHtml(n.number)} — ${escapeHtml(n.state)}</h4>
${fields([
  ['Description', n.description],
  ['Quantity', n.quantity],
  ['Characteristic', n.characteristic],
  ['Lot', n.lotId],
  ['Raised by', `${n.createdBy}, ${utc(n.createdAt)}`],
  ['Disposition', n.disposition],
  ['Cause', n.cause],
  ['Reason', n.dispositionReason],
  ['Dispositioned by', n.dispositionedBy && `${n.dispositionedBy}, ${utc(n.dispositionedAt)}`],
  ['Signature', sig && `${sig.signerName} — “${sig.meaning}” — ${utc(sig.signedAt)}`],
  ['Rework operation', n.reworkOperationPk],
])}
</div>`;
}

function operationSection(op: OperationRecord, people: Readonly<Record<string, string>>): string {
  const person = (id: string | null) => (id === null ? null : people[id] ? `${people[id]} (${id})` : id);
  const title = `${op.sequence} · ${op.operation} · ${op.name}`;
  const rework = op.rework
    ? `<p class="rework">Rework loop ${op.rework.loop} of step ${escapeHtml(op.rework.of)}${
        op.rework.ncr ? `, inserted by ${escapeHtml(op.rework.ncr)}` : ''
      }</p>`
    : '';
  return `<section class="operation">
<h2>Operation ${escapeHtml(title)}</h2>
${rework}
${fields([
  ['Operation id', op.id],
  ['State', op.state],
  ['Work center', op.workCenter],
  ['Work unit', op.workUnit],
  ['Required qualifications', op.requiredQualifications.join(', ') || null],
  ['Standard cycle time', `${op.standardCycleTimeSeconds} s`],
  ['Started', op.startedAt && `${utc(op.startedAt)} by ${op.startedBy ?? '—'}`],
  ['Operator', person(op.person)],
  ['Completed', op.completedAt && `${utc(op.completedAt)} by ${op.completedBy ?? '—'}`],
  ['Planned', quantity(op.plannedQuantity, op.unit)],
  ['Good', quantity(op.goodQuantity, op.unit)],
  ['Scrap', quantity(op.scrapQuantity, op.unit)],
  ['Rework', quantity(op.reworkQuantity, op.unit)],
])}
<h3>Parameters used</h3>
${table(['Parameter', 'Value', 'Unit', 'Limits'], parameterRows(op.parameters), 'No parameters.')}
<h3>Timeline</h3>
${table(
  ['Time', 'Activity', 'By', 'Person', 'Work unit', 'Detail'],
  op.timeline.map((a) => [utc(a.at), a.kind, a.actor, person(a.person), a.workUnit, detailText(a.detail)]),
  'Nothing recorded yet.',
)}
<h3>Material consumed</h3>
${table(
  ['Time', 'Lot', 'Material', 'Quantity', 'Into', 'By', 'Person', 'Equipment'],
  op.consumed.map((c) => [
    utc(c.at),
    c.lot,
    c.material,
    quantity(c.quantity, c.unit),
    c.into,
    c.actor,
    person(c.person),
    c.equipment,
  ]),
  'No material consumed.',
)}
<h3>Produced</h3>
${table(
  ['Produced', 'Lot / serial', 'Kind', 'Material', 'On hand now', 'Status now'],
  op.produced.map((l) => [
    utc(l.createdAt),
    l.id,
    l.kind,
    l.material,
    quantity(l.quantity, l.unit),
    l.status,
  ]),
  'Nothing produced.',
)}
<h3>Quality results</h3>
${table(
  ['Time', 'Characteristic', 'Value', 'Limits', 'Verdict', 'Lot', 'By', 'NCR'],
  op.qualityResults.map((r) => [
    utc(r.at),
    r.characteristic,
    r.value,
    resultLimits(r),
    r.verdict,
    r.lot,
    person(r.person) ?? r.actor,
    r.ncr,
  ]),
  'No quality results.',
)}
<h3>Nonconformances</h3>
${op.ncrs.length ? op.ncrs.map(ncrBlock).join('\n') : '<p class="none">No nonconformances.</p>'}
</section>`;
}

const STYLE = `
@page { size: A4; margin: 16mm 14mm 20mm 14mm; }
* { box-sizing: border-box; }
body { font: 10pt/1.35 system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #000; margin: 0 auto; max-width: 190mm; padding: 8mm 0 14mm; }
h1 { font-size: 16pt; margin: 0 0 4mm; }
h2 { font-size: 13pt; margin: 0 0 3mm; border-bottom: 1.5pt solid #000; padding-bottom: 1mm; }
h3 { font-size: 10.5pt; margin: 4mm 0 1.5mm; }
h4 { font-size: 10pt; margin: 2mm 0 1mm; }
table { width: 100%; border-collapse: collapse; margin-bottom: 2mm; }
th, td { border: 0.5pt solid #666; padding: 1mm 1.5mm; text-align: left; vertical-align: top; font-size: 8.5pt; word-break: break-word; }
th { background: #eee; }
thead { display: table-header-group; }
tr, .ncr, dl.fields > div { break-inside: avoid; page-break-inside: avoid; }
dl.fields { display: grid; grid-template-columns: repeat(2, 1fr); gap: 0.5mm 6mm; margin: 0 0 2mm; }
dl.fields > div { display: flex; gap: 2mm; border-bottom: 0.3pt dotted #999; }
dt { font-weight: 600; min-width: 38mm; }
dd { margin: 0; }
code { font: 8pt/1.3 ui-monospace, Menlo, Consolas, monospace; white-space: pre-wrap; }
.none { color: #444; font-style: italic; margin: 0 0 2mm; }
.rework { font-weight: 600; border: 1pt solid #000; padding: 1mm 2mm; display: inline-block; }
.ncr { border-left: 2pt solid #000; padding-left: 3mm; margin-bottom: 2mm; }
section.operation, section.appendix, section.signatures { break-before: page; page-break-before: always; }
.chain-ok { font-weight: 600; }
.chain-broken { font-weight: 700; color: #b00; }
.hash { font-family: ui-monospace, Menlo, Consolas, monospace; word-break: break-all; }
footer.record-footer { margin-top: 6mm; border-top: 1pt solid #000; padding-top: 2mm; }
@media print {
  body { padding: 0; max-width: none; }
}
`;

/**
 * A CSS string literal: every character outside a small safe set as a hex escape, so a value can
 * neither end the string nor the style element (`</style>`).
 */
function cssString(text: string): string {
  return `"${text.replace(/[^A-Za-z0-9 .:_-]/gu, (c) => `\\${(c.codePointAt(0) ?? 0xfffd).toString(16)} `)}"`;
}

/** Order, record hash and page numbers on every printed page (CSS Paged Media margin boxes). */
function runningFooter(record: BatchRecord): string {
  const left = `Batch record ${record.order.id} - record hash ${record.recordHash.slice(0, 16)}`;
  return `@page {
  @bottom-left { content: ${cssString(left)}; font-size: 7.5pt; }
  @bottom-right { content: "Page " counter(page) " of " counter(pages); font-size: 7.5pt; }
}
`;
}

/**
 * The record as a printable, self-contained HTML page: A4, one operation per page, no scripts,
 * stylesheets, fonts or images from anywhere, and every recorded value escaped.
 */
export function renderBatchRecordHtml(record: BatchRecord): string {
  const o = record.order;
  const chain = record.footer.auditChain;
  const chainText = chain.ok
    ? `intact (${chain.entries} entries verified)`
    : `BROKEN at entry ${chain.brokenAt}: ${chain.message}`;
  const summary = table(
    ['Seq', 'Step', 'Name', 'State', 'Work unit', 'Planned', 'Good', 'Scrap', 'Rework'],
    record.operations.map((op) => [
      op.sequence,
      op.rework ? `${op.operation} (rework of ${op.rework.of})` : op.operation,
      op.name,
      op.state,
      op.workUnit,
      op.plannedQuantity,
      op.goodQuantity,
      op.scrapQuantity,
      op.reworkQuantity,
    ]),
    'The order has no operations.',
  );

  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Batch record ${escapeHtml(o.id)}</title>
<style>${STYLE}${runningFooter(record)}</style>
</head>
<body>
<header>
<h1>Electronic batch record — order ${escapeHtml(o.id)}</h1>
${fields([
  ['Order', o.id],
  ['External (ERP) id', o.externalId],
  ['Product', o.product],
  ['Material', o.material],
  ['Quantity', quantity(o.quantity, o.unit)],
  ['Due', utc(o.dueAt)],
  ['Priority', o.priority],
  ['State', o.state],
  ['Hold reason', o.holdReason],
  ['Released', utc(o.releasedAt)],
  ['Started', utc(o.startedAt)],
  ['Completed', utc(o.completedAt)],
  ['Closed', utc(o.closedAt)],
  ['Created by', o.createdBy],
])}
</header>
<h2>Operations</h2>
${summary}
${record.operations.map((op) => operationSection(op, record.people)).join('\n')}
<section class="signatures">
<h2>Electronic signatures</h2>
${table(
  ['Signed (UTC)', 'Signer', 'Meaning', 'Action', 'Subject', 'Reason'],
  record.signatures.map((s) => [
    utc(s.signedAt),
    s.signerName,
    s.meaning,
    s.action,
    `${s.entityType} ${s.entityId}`,
    s.reason,
  ]),
  'No electronic signatures.',
)}
</section>
<section class="appendix">
<h2>Appendix: audit trail of the order and its operations</h2>
${table(
  ['Time', 'Action', 'Subject', 'By', 'Reason'],
  record.auditTrail.map((e) => [utc(e.at), e.action, `${e.entityType} ${e.entityId}`, e.actor, e.reason]),
  'No audit entries.',
)}
</section>
<footer class="record-footer">
${fields([
  ['Generated', utc(record.footer.generatedAt)],
  ['Generated by', record.footer.generatedBy],
  ['Format', record.format],
])}
<p>Audit trail: <span class="${chain.ok ? 'chain-ok' : 'chain-broken'}">${escapeHtml(chainText)}</span></p>
<p>Record hash (SHA-256): <span class="hash">${escapeHtml(record.recordHash)}</span></p>
</footer>
</body>
</html>
`;
}

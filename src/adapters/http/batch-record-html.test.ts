import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { BatchRecordData } from '../../app/execution/batch-record-ports.ts';
import { recordContent, type BatchRecord } from '../../app/execution/batch-record.ts';
import type { Quantity } from '../../domain/shared/quantity.ts';
import { escapeHtml, renderBatchRecordHtml } from './batch-record-html.ts';

describe('escapeHtml', () => {
  it('turns a script tag in a lot id or description into inert text', () => {
    assert.equal(
      escapeHtml('LOT-1<script>alert("x")</script>'),
      'LOT-1&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;',
    );
  });

  it('escapes ampersands first, so existing entities are shown, not interpreted', () => {
    assert.equal(escapeHtml('&lt; & >'), '&amp;lt; &amp; &gt;');
  });

  it('escapes both quote kinds, so a value cannot break out of an attribute', () => {
    assert.equal(escapeHtml(`" onmouseover='x'`), '&quot; onmouseover=&#39;x&#39;');
  });

  it('leaves plain text and non-ASCII alone', () => {
    assert.equal(escapeHtml('Anna Berger · 9.5 kA — Überprüft'), 'Anna Berger · 9.5 kA — Überprüft');
  });
});

const EVIL = '<script>alert(1)</script>';
const q = (n: bigint) => (n * 1_000_000n) as Quantity;
const at = new Date('2026-11-25T10:00:00Z');

/** A record in which every free-text field an operator, planner or ERP can fill is hostile. */
function hostileRecord(): BatchRecord {
  const data: BatchRecordData = {
    order: {
      id: `PO-1</style>${EVIL}"`,
      externalId: EVIL,
      productId: 'car',
      materialId: 'car',
      quantity: q(1n),
      unitId: 'pcs',
      dueAt: null,
      priority: 500,
      state: 'InProgress',
      heldFrom: null,
      holdReason: EVIL,
      releasedAt: at,
      startedAt: at,
      completedAt: null,
      closedAt: null,
      createdBy: 'planner',
      requestHash: null,
    },
    operations: [
      {
        pk: 1,
        orderId: 'PO-1',
        operationId: '10',
        sequence: 100,
        name: `Weld ${EVIL}`,
        workCenterId: 'wc',
        allowedWorkUnits: ['wu'],
        workUnitId: 'wu',
        standardCycleTimeS: 60,
        requiredQualifications: [],
        parameters: [{ name: EVIL, value: EVIL, unit: EVIL, min: EVIL }],
        bom: [],
        characteristics: [],
        plannedQuantity: q(1n),
        goodQuantity: q(0n),
        scrapQuantity: q(0n),
        reworkQuantity: q(0n),
        state: 'Running',
        heldFrom: null,
        isRework: false,
        reworkOf: null,
        reworkLoop: 0,
        startedAt: at,
        startedBy: EVIL,
        personId: 'p1',
        completedAt: null,
        completedBy: null,
      },
    ],
    activities: [
      {
        operationPk: 1,
        kind: 'pause',
        at,
        actor: 'a',
        personId: null,
        workUnitId: null,
        detail: { reason: EVIL },
      },
    ],
    consumptions: [
      {
        id: 1,
        operationPk: 1,
        lotId: EVIL,
        materialId: 'm',
        unitId: 'kg',
        quantity: q(2n),
        intoLotId: null,
        actor: 'a',
        personId: 'p1',
        equipmentId: null,
        at,
      },
    ],
    producedLots: [],
    results: [],
    ncrs: [],
    audit: [
      {
        at: at.toISOString(),
        actorName: 'a',
        action: 'operation.paused',
        entityType: 'order-operation',
        entityId: '1',
        reason: EVIL,
        signature: {
          signerId: 1,
          signerName: EVIL,
          meaning: EVIL,
          signedAt: at.toISOString(),
          recordHash: '0'.repeat(64),
        },
      },
    ],
    people: new Map([['p1', EVIL]]),
  };
  return {
    ...recordContent(data),
    recordHash: 'f'.repeat(64),
    footer: {
      generatedAt: at.toISOString(),
      generatedBy: 'reviewer',
      auditChain: { ok: false, entries: 3, brokenAt: 2, reason: 'hash-mismatch', message: EVIL },
    },
  };
}

describe('renderBatchRecordHtml', () => {
  const html = renderBatchRecordHtml(hostileRecord());

  it('escapes every recorded value: no markup from the data reaches the page', () => {
    assert.doesNotMatch(html, /<script/i);
    assert.equal(html.match(/<\/style>/g)?.length, 1, 'the order id cannot close the style element');
    assert.ok(html.includes('&lt;script&gt;alert(1)&lt;/script&gt;'));
    assert.ok(html.includes('\\3c script\\3e '), 'the running footer carries the id as CSS escapes');
  });

  it('says loudly when the audit chain was broken at print time', () => {
    assert.match(html, /<span class="chain-broken">BROKEN at entry 2: &lt;script&gt;/);
  });
});

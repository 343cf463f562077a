import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { evaluateResult, rolledThroughputYield, yieldKpis } from './quality.ts';

describe('quality results', () => {
  const film = { id: 'film-thickness', kind: 'numeric' as const, lsl: 80, usl: 120 };
  it('passes a value on the limit and fails one just outside', () => {
    assert.deepEqual(evaluateResult(film, 120), { ok: true, value: { verdict: 'pass', numeric: 120 } });
    const r = evaluateResult(film, 120.01);
    assert.ok(r.ok && r.value.verdict === 'fail');
  });
  it('handles one-sided limits', () => {
    const torque = { id: 't', kind: 'numeric' as const, lsl: 40 };
    assert.ok(evaluateResult(torque, 1e6).ok);
    const r = evaluateResult(torque, 39.9);
    assert.ok(r.ok && r.value.verdict === 'fail');
  });
  it('refuses a text value for a numeric characteristic, naming the field', () => {
    const r = evaluateResult(film, '100', 'results[0].value');
    assert.ok(!r.ok);
    assert.equal(r.error.issues?.[0]?.path, 'results[0].value');
  });
  it('judges attributes as pass/fail', () => {
    const eol = { id: 'eol', kind: 'attribute' as const };
    const r = evaluateResult(eol, 'fail');
    assert.ok(r.ok && r.value.verdict === 'fail');
    assert.equal(evaluateResult(eol, 3).ok, false);
  });
});

describe('yield KPIs', () => {
  it('computes first-pass yield, rework and scrap rates', () => {
    assert.deepEqual(yieldKpis({ processed: 200, firstPassGood: 180, reworked: 15, scrapped: 5 }), {
      firstPassYield: 0.9,
      reworkRate: 0.075,
      scrapRate: 0.025,
    });
  });
  it('gives no rate when nothing was processed', () => {
    assert.equal(
      yieldKpis({ processed: 0, firstPassGood: 0, reworked: 0, scrapped: 0 }).firstPassYield,
      null,
    );
  });
  it('multiplies first-pass yields into rolled throughput yield', () => {
    assert.equal(rolledThroughputYield([0.9, 0.95, 0.99]), 0.84645);
    assert.equal(rolledThroughputYield([0.9, null]), null);
  });
});

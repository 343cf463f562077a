import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  add,
  formatQuantity,
  parsePositiveQuantity,
  parseQuantity,
  ratio,
  sum,
  type Quantity,
} from './quantity.ts';

const q = (v: unknown): Quantity => {
  const r = parseQuantity(v);
  if (!r.ok) throw new Error(r.error.message);
  return r.value;
};

describe('Quantity', () => {
  it('adds a thousand tenths to exactly one hundred', () => {
    const tenth = q('0.1');
    assert.equal(formatQuantity(sum(Array<Quantity>(1000).fill(tenth))), '100');
  });
  it('accepts JSON numbers and decimal strings alike', () => {
    assert.equal(q(12.5), q('12.500'));
    assert.equal(formatQuantity(add(q(0.2), q(0.1))), '0.3');
  });
  it('refuses more than six decimals instead of rounding', () => {
    const r = parseQuantity('1.0000001');
    assert.equal(r.ok, false);
  });
  it('refuses non-numeric text, naming the field', () => {
    const r = parseQuantity('12kg', 'consumptions[0].quantity');
    assert.ok(!r.ok);
    assert.equal(r.error.issues?.[0]?.path, 'consumptions[0].quantity');
  });
  it('refuses zero and negative where a positive quantity is required', () => {
    assert.equal(parsePositiveQuantity(0).ok, false);
    assert.equal(parsePositiveQuantity('-3').ok, false);
    assert.equal(parsePositiveQuantity('3').ok, true);
  });
  it('refuses NaN, Infinity, booleans and objects', () => {
    for (const v of [Number.NaN, Number.POSITIVE_INFINITY, true, {}, null])
      assert.equal(parseQuantity(v).ok, false);
  });
  it('handles tiny JSON numbers written in exponent form', () => {
    assert.equal(formatQuantity(q(1e-6)), '0.000001');
    assert.equal(parseQuantity(1e-7).ok, false);
  });
  it('computes ratios for KPIs', () => {
    assert.equal(ratio(q(9), q(10)), 0.9);
    assert.equal(ratio(q(1), q(0)), null);
  });
});

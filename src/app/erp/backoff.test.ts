import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { retryDelayMs } from './backoff.ts';

const policy = { baseMs: 1000, maxMs: 300_000 };

describe('retryDelayMs (full jitter)', () => {
  it('doubles the ceiling with every failed attempt', () => {
    const top = () => 0.999999;
    assert.deepEqual(
      [0, 1, 2, 3, 4].map((n) => retryDelayMs(n, policy, top)),
      [999, 1999, 3999, 7999, 15999],
    );
  });

  it('caps the ceiling at maxMs however many attempts failed', () => {
    const top = () => 0.999999;
    assert.equal(retryDelayMs(9, policy, top), 299_999);
    assert.equal(retryDelayMs(500, policy, top), 299_999);
    assert.equal(retryDelayMs(5000, policy, top), 299_999);
  });

  it('scales the ceiling by the random draw, from zero up', () => {
    assert.equal(
      retryDelayMs(3, policy, () => 0),
      0,
    );
    assert.equal(
      retryDelayMs(3, policy, () => 0.5),
      4000,
    );
    assert.equal(
      retryDelayMs(3, policy, () => 0.25),
      2000,
    );
  });

  it('stays within [0, ceiling] even for a random source that misbehaves', () => {
    assert.equal(
      retryDelayMs(2, policy, () => 7),
      4000,
    );
    assert.equal(
      retryDelayMs(2, policy, () => -1),
      0,
    );
    assert.equal(
      retryDelayMs(-3, policy, () => 0.5),
      500,
    );
  });

  it('spreads many retries over the whole window rather than bunching them', () => {
    let seed = 42;
    const lcg = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
    const delays = Array.from({ length: 2000 }, () => retryDelayMs(4, policy, lcg));
    const ceiling = 16_000;
    assert.ok(delays.every((d) => d >= 0 && d < ceiling));
    const buckets = [0, 0, 0, 0];
    for (const d of delays) buckets[Math.floor((d / ceiling) * 4)]! += 1;
    for (const b of buckets) assert.ok(b > 400 && b < 600, `uneven spread ${buckets.join(',')}`);
  });
});

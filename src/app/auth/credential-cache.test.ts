import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CredentialCache } from './credential-cache.ts';

describe('CredentialCache', () => {
  it('serves nothing until resumed, and nothing after suspend', () => {
    const c = new CredentialCache<string>();
    c.set('k', 'v', c.generation());
    assert.equal(c.get('k'), undefined);
    c.resume();
    c.set('k', 'v', c.generation());
    assert.equal(c.get('k'), 'v');
    c.suspend();
    assert.equal(c.get('k'), undefined);
    c.resume();
    assert.equal(c.get('k'), undefined, 'resuming starts empty');
  });

  it('drops a read that an invalidation overtook', () => {
    const c = new CredentialCache<string>();
    c.resume();
    const readAt = c.generation();
    c.invalidate(); // a change was announced while the read was under way
    c.set('k', 'old state', readAt);
    assert.equal(c.get('k'), undefined);
    c.set('k', 'new state', c.generation());
    assert.equal(c.get('k'), 'new state');
  });

  it('keeps at most maxEntries, dropping the least recently stored', () => {
    const c = new CredentialCache<number>({ maxEntries: 2 });
    c.resume();
    c.set('a', 1, c.generation());
    c.set('b', 2, c.generation());
    c.set('a', 3, c.generation());
    c.set('c', 4, c.generation());
    assert.equal(c.get('b'), undefined);
    assert.equal(c.get('a'), 3);
    assert.equal(c.get('c'), 4);
    assert.equal(c.size, 2);
  });
});

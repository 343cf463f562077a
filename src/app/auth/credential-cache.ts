/**
 * Sessions and API tokens as the last database read found them, so a request does not read its
 * credential again while nothing about it has changed (ADR 0013).
 *
 * Correctness rests on three rules:
 *
 * - **Off until told it may trust its invalidations.** The cache serves nothing until `resume()`,
 *   which the composition root calls once it LISTENs for credential changes; a lost LISTEN
 *   connection calls `suspend()`, and every request reads the database again until it is back.
 * - **Any change empties it.** `invalidate()` runs after this process commits a change to a user,
 *   session or token, and when another process's change is notified (a trigger on those tables).
 * - **A read that raced a change is not kept.** A reader notes `generation()` before it reads the
 *   database; `set` keeps its entry only if no invalidation came in between, so a read of the old
 *   state that finishes after the change was announced cannot bring the old state back.
 *
 * Entries also age out: the caller re-reads a credential whose last use it would record anyway
 * (once a minute), so a cached credential is at most a minute old in any case.
 */
export class CredentialCache<T> {
  readonly #entries = new Map<string, T>();
  readonly #maxEntries: number;
  #generation = 0;
  #enabled = false;

  constructor(opts: { maxEntries?: number } = {}) {
    this.#maxEntries = opts.maxEntries ?? 10_000;
  }

  get enabled(): boolean {
    return this.#enabled;
  }

  get size(): number {
    return this.#entries.size;
  }

  generation(): number {
    return this.#generation;
  }

  get(key: string): T | undefined {
    return this.#enabled ? this.#entries.get(key) : undefined;
  }

  /** Keeps `value` unless the cache is off or was invalidated since `readAt` (its generation() before the read). */
  set(key: string, value: T, readAt: number): void {
    if (!this.#enabled || readAt !== this.#generation) return;
    this.#entries.delete(key);
    this.#entries.set(key, value);
    // A Map iterates in insertion order: the first key is the least recently stored.
    if (this.#entries.size > this.#maxEntries) this.#entries.delete(this.#entries.keys().next().value!);
  }

  delete(key: string): void {
    this.#entries.delete(key);
  }

  invalidate(): void {
    this.#generation++;
    this.#entries.clear();
  }

  /** Invalidations can be trusted again (LISTEN is up): serve from the cache, starting empty. */
  resume(): void {
    this.invalidate();
    this.#enabled = true;
  }

  /** Invalidations may be missed (LISTEN lost): serve nothing until resume(). */
  suspend(): void {
    this.invalidate();
    this.#enabled = false;
  }
}

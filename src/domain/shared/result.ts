/**
 * Expected outcomes are values, not exceptions (STYLE.md "Errors"). A use case returns
 * `Result<T>`; only broken invariants and infrastructure failures throw.
 */
export type Result<T, E extends DomainError = DomainError> = Ok<T> | Err<E>;
export interface Ok<T> {
  readonly ok: true;
  readonly value: T;
}
export interface Err<E> {
  readonly ok: false;
  readonly error: E;
}

/** One problem with one field of an input, `path` as in the input document (`routings[0].operations[2].workCenter`). */
export interface FieldIssue {
  readonly path: string;
  readonly message: string;
}

/**
 * A reasoned, typed failure. `code` is a stable `LOOM_<AREA>_<REASON>` listed in docs/errors.md;
 * the HTTP adapter maps codes to statuses, nothing below it knows about HTTP.
 */
export interface DomainError {
  readonly code: string;
  readonly message: string;
  readonly issues?: readonly FieldIssue[];
  readonly details?: Readonly<Record<string, unknown>>;
}

export const ok = <T>(value: T): Ok<T> => ({ ok: true, value });
export const err = <E extends DomainError>(error: E): Err<E> => ({ ok: false, error });
export const fail = (
  code: string,
  message: string,
  extra: { issues?: readonly FieldIssue[]; details?: Record<string, unknown> } = {},
): Err<DomainError> => err({ code, message, ...extra });

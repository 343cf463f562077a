import { z } from 'zod';

/**
 * Ids travel in URLs, Unified Namespace topics and file names, so the alphabet is limited to
 * what none of them needs to escape. One regex (length included) so a bad id is one issue.
 */
export const Identifier = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, {
  error: "must be 1–64 letters, digits, '.', '_' or '-', starting with a letter or digit",
});

/**
 * A schema-wide message that leaves a missing value to the default map ("is required"): a
 * schema's own `error` would otherwise also replace the message for an absent field.
 */
export function unlessMissing(message: string): (issue: { readonly input?: unknown }) => string | undefined {
  return (issue) => (issue.input === undefined ? undefined : message);
}

/** A display name: what people read on a dashboard. */
export const Name = z.string().trim().min(1).max(200);

export const Description = z.string().trim().max(2000);

/**
 * A plant-local calendar day, `YYYY-MM-DD`. Kept as text: ISO dates order correctly as strings
 * and a day carries no time zone to get wrong. Impossible days (2025-02-30) are rejected.
 */
export const CalendarDate = z.iso.date({
  error: unlessMissing('must be a calendar date written YYYY-MM-DD, e.g. 2025-03-31'),
});
export type CalendarDate = z.output<typeof CalendarDate>;

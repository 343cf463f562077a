import { z } from 'zod';
import { atPath, parseAt } from '../shared/field-issues.ts';
import { CalendarDate, Description, Identifier, Name } from '../shared/fields.ts';
import { ok, type FieldIssue, type Result } from '../shared/result.ts';
import { plantInvalid } from '../plant/plant-errors.ts';

/** A certification a person can hold (ISA-95 personnel class / qualification test specification). */
export const QualificationDefinitionSchema = z.strictObject({
  id: Identifier,
  name: Name,
  description: Description.optional(),
  /** How long a new certificate usually lasts; a guide for issuing, each holding states its own expiry. */
  validityDays: z.number().int().positive().optional(),
});
export type QualificationDefinition = z.output<typeof QualificationDefinitionSchema>;

/** A qualification held by a person. `expires` is the last valid day; null means it never expires. */
export const QualificationHoldingSchema = z
  .strictObject({
    qualification: Identifier,
    issued: CalendarDate,
    expires: CalendarDate.nullable(),
  })
  .superRefine((holding, ctx) => {
    if (holding.expires !== null && holding.expires < holding.issued) {
      ctx.addIssue({
        code: 'custom',
        path: ['expires'],
        message: `must not be before issued (${holding.issued}); expires is the last valid day`,
      });
    }
  });
export type QualificationHolding = z.output<typeof QualificationHoldingSchema>;

export const PersonSchema = z.strictObject({
  id: Identifier,
  name: Name,
  /** Links the person to a login; unique across personnel. */
  username: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$/, {
      error: "must be 1–128 letters, digits, '.', '_', '@' or '-', starting with a letter or digit",
    })
    .optional(),
  qualifications: z.array(QualificationHoldingSchema).default([]),
});
export type Person = z.output<typeof PersonSchema>;

export type QualificationStatus = 'valid' | 'expired' | 'not-yet-valid';

/**
 * Whether a holding counts on `today` (a plant-local `YYYY-MM-DD`; the caller turns its Clock
 * into the plant's calendar day). Valid from `issued` through `expires`, both days included.
 */
export function qualificationStatus(
  holding: Pick<QualificationHolding, 'issued' | 'expires'>,
  today: CalendarDate,
): QualificationStatus {
  // ISO dates compare correctly as strings, but only when well-formed.
  if (!CalendarDate.safeParse(today).success)
    throw new RangeError(`today must be YYYY-MM-DD, got '${today}'`);
  if (today < holding.issued) return 'not-yet-valid';
  if (holding.expires !== null && today > holding.expires) return 'expired';
  return 'valid';
}

export interface PersonReferences {
  readonly qualifications: ReadonlySet<string>;
}

export const unknownQualification = (path: string, qualification: string): FieldIssue => ({
  path,
  message: `qualification '${qualification}' is not defined; add it under qualifications or fix the id`,
});

/** `at` is where the person sits in the input ('' when checked on its own). */
export function checkPersonReferences(person: Person, references: PersonReferences, at = ''): FieldIssue[] {
  const issues: FieldIssue[] = [];
  person.qualifications.forEach((holding, i) => {
    if (!references.qualifications.has(holding.qualification)) {
      issues.push(
        unknownQualification(atPath(at, 'qualifications', i, 'qualification'), holding.qualification),
      );
    }
  });
  return issues;
}

export function validateQualificationDefinition(input: unknown): Result<QualificationDefinition> {
  const parsed = parseAt(QualificationDefinitionSchema, input, '', 'qualification');
  return parsed.ok ? ok(parsed.value) : plantInvalid('qualification', parsed.issues);
}

/** Username uniqueness needs the stored users and is the caller's check. */
export function validatePerson(input: unknown, references: PersonReferences): Result<Person> {
  const parsed = parseAt(PersonSchema, input, '', 'person');
  if (!parsed.ok) return plantInvalid('person', parsed.issues);
  const issues = checkPersonReferences(parsed.value, references);
  return issues.length > 0 ? plantInvalid('person', issues) : ok(parsed.value);
}

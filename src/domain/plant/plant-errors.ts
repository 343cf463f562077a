import { fail, type DomainError, type Err, type FieldIssue } from '../shared/result.ts';

/**
 * The one code for a rejected plant model, whether a whole file or a single entity sent to the
 * REST API: both break the same rules, so clients handle both the same way.
 */
export const PLANT_INVALID = 'LOOM_PLANT_INVALID';

/** `subject` names what was checked: 'plant model', 'equipment', 'product'. */
export function plantInvalid(subject: string, issues: readonly FieldIssue[]): Err<DomainError> {
  const count = issues.length === 1 ? '1 problem' : `${issues.length} problems`;
  return fail(PLANT_INVALID, `${subject} has ${count}`, { issues });
}

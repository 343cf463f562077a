import { parseDocument } from 'yaml';
import { fail, ok, type FieldIssue, type Result } from '../../domain/shared/result.ts';

export const PLANT_FILE_MALFORMED = 'LOOM_PLANT_FILE_MALFORMED';

/**
 * Aliases expand when the document is turned into data; a few nested aliases can expand to
 * gigabytes ("billion laughs"). A plant model has no need for many.
 */
const MAX_ALIAS_COUNT = 100;

/**
 * Reads a plant-model file written in YAML (JSON is YAML too). YAML 1.2 core schema only: no
 * custom tags, no merge keys, and dates stay text (`2025-03-01`), as the domain expects. A syntax
 * error, an unknown tag or a repeated key is reported with its line and column, and no data is
 * returned: a half-read file must never be imported.
 */
export function parsePlantFile(text: string): Result<unknown> {
  const doc = parseDocument(text, {
    schema: 'core',
    merge: false,
    uniqueKeys: true,
    prettyErrors: true,
    strict: true,
    customTags: [],
  });
  const problems = [...doc.errors, ...doc.warnings];
  if (problems.length > 0) {
    const issues: FieldIssue[] = problems.map((p) => {
      const at = p.linePos?.[0];
      const where = at ? `line ${at.line}, column ${at.col}` : 'file';
      // prettyErrors appends the location and a source excerpt; the first line says it all.
      return { path: where, message: p.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '') };
    });
    return fail(
      PLANT_FILE_MALFORMED,
      `The plant-model file is not valid YAML: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`,
      { issues },
    );
  }
  try {
    return ok(doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT }) as unknown);
  } catch (e) {
    return fail(PLANT_FILE_MALFORMED, `The plant-model file cannot be read: ${(e as Error).message}`, {
      issues: [{ path: 'file', message: (e as Error).message }],
    });
  }
}

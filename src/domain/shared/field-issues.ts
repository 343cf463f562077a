import type { z } from 'zod';
import type { FieldIssue } from './result.ts';

/**
 * Writes a location as a reader finds it in the file: `products[0].routing.operations[2]`.
 * `base` is where the value under check sits ('' for a value checked on its own).
 */
export function atPath(base: string, ...segments: readonly PropertyKey[]): string {
  let path = base;
  for (const segment of segments) {
    if (typeof segment === 'number') path += `[${segment}]`;
    else {
      const key = String(segment);
      if (!/^[A-Za-z_$][\w$-]*$/.test(key)) path += `[${JSON.stringify(key)}]`;
      else path += path === '' ? key : `.${key}`;
    }
  }
  return path;
}

/** Describes an offending value briefly, in the words of a YAML or JSON author. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null (an empty value)';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'string') return value.length > 40 ? `'${value.slice(0, 40)}…'` : `'${value}'`;
  if (typeof value === 'number') return `the number ${value}`;
  if (typeof value === 'boolean') return String(value);
  return typeof value === 'object' ? 'a mapping' : typeof value;
}

const TYPE_WORDS: Readonly<Record<string, string>> = {
  string: 'text',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
  object: 'a mapping of fields',
  array: 'a list',
};

const count = (n: number | bigint, one: string, many: string): string => `${n} ${n === 1 ? one : many}`;

/**
 * Zod's default texts ("Invalid input: expected string, received number") speak to programmers.
 * This map speaks to whoever edits the file. Every message is a predicate; `issuesFromZod` puts
 * the field's name in front. Messages a schema sets itself take precedence over this map.
 */
const predicateFor: z.core.$ZodErrorMap = (issue) => {
  switch (issue.code) {
    case 'invalid_type': {
      if (issue.input === undefined) return 'is required';
      const expected = TYPE_WORDS[issue.expected] ?? issue.expected;
      if (issue.expected === 'string' && typeof issue.input === 'number') {
        return `must be text; got ${describeValue(issue.input)} — in YAML write it in quotes ('${issue.input}')`;
      }
      return `must be ${expected}; got ${describeValue(issue.input)}`;
    }
    case 'invalid_value': {
      const allowed = issue.values.map(String).join(', ');
      if (issue.input === undefined) return `is required: one of ${allowed}`;
      return `must be one of ${allowed}; got ${describeValue(issue.input)}`;
    }
    case 'too_small': {
      const min = issue.minimum;
      if (issue.origin === 'string')
        return min === 1
          ? 'must not be empty'
          : `must have at least ${count(min, 'character', 'characters')}`;
      if (issue.origin === 'array') return `needs at least ${count(min, 'entry', 'entries')}`;
      return issue.inclusive ? `must be at least ${min}` : `must be greater than ${min}`;
    }
    case 'too_big': {
      const max = issue.maximum;
      if (issue.origin === 'string') return `must have at most ${count(max, 'character', 'characters')}`;
      if (issue.origin === 'array') return `may have at most ${count(max, 'entry', 'entries')}`;
      return issue.inclusive ? `must be at most ${max}` : `must be less than ${max}`;
    }
    case 'invalid_format':
      return 'has the wrong format';
    case 'invalid_union':
      if (issue.input === undefined) return 'is required';
      return `does not match any allowed form; got ${describeValue(issue.input)}`;
    case 'not_multiple_of':
    case 'unrecognized_keys':
    case 'invalid_key':
    case 'invalid_element':
    case 'custom':
      return undefined;
  }
};

/** The last segment of a path, which is how a message names its field. */
const fieldName = (path: string, rootName: string): string =>
  path === '' ? rootName : path.slice(path.lastIndexOf('.') + 1);

/**
 * One FieldIssue per problem, located in the input document. An unknown key gets its own path,
 * so an editor can jump to the misspelt field rather than to its parent.
 */
export function issuesFromZod(error: z.ZodError, base: string, rootName = 'input'): FieldIssue[] {
  const issues: FieldIssue[] = [];
  for (const issue of error.issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        issues.push({
          path: atPath(base, ...issue.path, key),
          message: `${key} is not a known field; remove it or correct its spelling`,
        });
      }
      continue;
    }
    const path = atPath(base, ...issue.path);
    issues.push({ path, message: `${fieldName(path, rootName)} ${issue.message}` });
  }
  return issues;
}

export type Parsed<T> =
  | { readonly ok: true; readonly value: T }
  | {
      readonly ok: false;
      readonly issues: FieldIssue[];
      /**
       * The value as parsed once its unknown fields are dropped, when that is its only fault.
       * A misspelt optional field should not stop the checks that its valid fields allow.
       */
      readonly withoutUnknownFields?: T;
    };

/** Parses with the file author's error messages; issue paths start at `base`. */
export function parseAt<S extends z.ZodType>(
  schema: S,
  input: unknown,
  base: string,
  rootName?: string,
): Parsed<z.output<S>> {
  const parsed = schema.safeParse(input, { error: predicateFor });
  if (parsed.success) return { ok: true, value: parsed.data };
  const issues = issuesFromZod(parsed.error, base, rootName ?? (base === '' ? 'input' : base));
  const unknown = parsed.error.issues.filter((i) => i.code === 'unrecognized_keys');
  if (unknown.length === 0 || unknown.length < parsed.error.issues.length) return { ok: false, issues };
  const stripped = structuredClone(input);
  for (const issue of unknown) {
    const owner = issue.path.reduce<unknown>(
      (node, key) => (node as Record<PropertyKey, unknown>)[key],
      stripped,
    );
    for (const key of issue.keys) delete (owner as Record<string, unknown>)[key];
  }
  const retried = schema.safeParse(stripped);
  return retried.success ? { ok: false, issues, withoutUnknownFields: retried.data } : { ok: false, issues };
}

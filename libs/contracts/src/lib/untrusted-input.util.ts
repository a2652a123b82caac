import type { FieldError } from './validation.util';

/**
 * Checks an untrusted plain value (a parsed JSON body, a query, a path parameter, a NATS payload)
 * before any DTO sees it, so every boundary refuses the same things with a field and a reason:
 * - U+0000 anywhere: PostgreSQL cannot store it in text or jsonb (it answered 500 before);
 * - other C0 control characters except tab, line feed and carriage return (fields that must be one
 *   line refuse those too, with `IsSingleLine`); in object keys every C0 character is refused;
 * - lone UTF-16 surrogates: not Unicode, and jsonb refuses their `\uD800` escapes;
 * - numbers that are not finite (`1e400` parses as Infinity and would be stored as null);
 * - `__proto__`, `constructor` and `prototype` as keys: class-transformer and plain assignment
 *   treat them specially, so what was stored would silently differ from what was sent;
 * - nesting deeper than `maxDepth` and more than `maxNodes` values, before any recursive
 *   validator runs into them;
 * - anything that is not a JSON value (a function, a class instance other than Array).
 * It reports the first few problems only: a hostile payload must not make a huge error list.
 */
export interface UntrustedInputLimits {
  maxDepth: number;
  maxNodes: number;
}

export const UNTRUSTED_INPUT_LIMITS: UntrustedInputLimits = { maxDepth: 32, maxNodes: 20_000 };

const MAX_REPORTED = 10;
const RESERVED_KEYS = new Set(['__proto__', 'constructor', 'prototype']);
// eslint-disable-next-line no-control-regex
const FORBIDDEN_IN_VALUES = /[\u0000-\u0008\u000b\u000c\u000e-\u001f]/;
// eslint-disable-next-line no-control-regex
const FORBIDDEN_IN_KEYS = /[\u0000-\u001f]/;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** `a\u0000b` as readable text, so an error message never carries the character it complains about. */
export function escapeControlChars(text: string): string {
  return text.replace(new RegExp(`[\\u0000-\\u001f\\u007f]|${LONE_SURROGATE.source}`, 'g'), (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function codePoint(char: string): string {
  return `U+${char.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`;
}

/** Why a string value is refused, or undefined. */
export function stringProblem(value: string, field: string): string | undefined {
  if (value.includes('\u0000')) return `${field} must not contain U+0000 (NUL)`;
  const control = FORBIDDEN_IN_VALUES.exec(value);
  if (control) return `${field} must not contain control characters (found ${codePoint(control[0])})`;
  if (LONE_SURROGATE.test(value)) return `${field} must be well-formed Unicode (it has a lone surrogate)`;
  return undefined;
}

function keyProblem(key: string, field: string): string | undefined {
  if (key.includes('\u0000')) return `keys of ${field} must not contain U+0000 (NUL)`;
  const control = FORBIDDEN_IN_KEYS.exec(key);
  if (control) return `keys of ${field} must not contain control characters (found ${codePoint(control[0])})`;
  if (LONE_SURROGATE.test(key)) return `keys of ${field} must be well-formed Unicode (a key has a lone surrogate)`;
  if (RESERVED_KEYS.has(key)) return `${field} must not have the key "${key}"`;
  return undefined;
}

/** A JSON object: plain, null-prototype, or a parser's dictionary class (Fastify's query objects); not a Date, Map, Buffer… */
function isPlainObject(value: object): boolean {
  return Object.prototype.toString.call(value) === '[object Object]';
}

/**
 * The problems of `value`, at most a few, each `{ field, reason }` with a dotted path below `root`
 * (array items by index: `capabilities.3`). `root` names the value itself: '' for a body (its
 * problems are reported as `rootName`, `(body)` by default, when they concern the whole), or the
 * parameter's name.
 */
export function untrustedInputErrors(
  value: unknown,
  root = '',
  limits: UntrustedInputLimits = UNTRUSTED_INPUT_LIMITS,
  rootName = root || '(body)',
): FieldError[] {
  const errors: FieldError[] = [];
  let nodes = 0;
  // Iterative, so depth is bounded by the check, not by the call stack.
  const stack: { value: unknown; path: string; depth: number }[] = [{ value, path: root, depth: 0 }];
  while (stack.length && errors.length < MAX_REPORTED) {
    const node = stack.pop() as { value: unknown; path: string; depth: number };
    const field = node.path || rootName;
    if (++nodes > limits.maxNodes) {
      errors.push({ field: rootName, reason: `${rootName} has more than ${limits.maxNodes} values` });
      break;
    }
    const v = node.value;
    if (v === null || v === undefined || typeof v === 'boolean') continue;
    if (typeof v === 'string') {
      const reason = stringProblem(v, field);
      if (reason) errors.push({ field, reason });
      continue;
    }
    if (typeof v === 'number') {
      if (!Number.isFinite(v)) errors.push({ field, reason: `${field} must be a finite number` });
      continue;
    }
    if (typeof v !== 'object' || !(Array.isArray(v) || isPlainObject(v))) {
      errors.push({ field, reason: `${field} must be a JSON value` });
      continue;
    }
    if (node.depth >= limits.maxDepth) {
      errors.push({ field, reason: `${field} is nested deeper than ${limits.maxDepth} levels` });
      continue;
    }
    const prefix = node.path ? `${node.path}.` : '';
    if (Array.isArray(v)) {
      if (v.length > limits.maxNodes) {
        errors.push({ field, reason: `${field} has more than ${limits.maxNodes} items` });
        continue;
      }
      for (let i = v.length - 1; i >= 0; i--) stack.push({ value: v[i], path: `${prefix}${i}`, depth: node.depth + 1 });
      continue;
    }
    const keys = Object.keys(v);
    if (keys.length > limits.maxNodes) {
      errors.push({ field, reason: `${field} has more than ${limits.maxNodes} keys` });
      continue;
    }
    for (let i = keys.length - 1; i >= 0; i--) {
      const key = keys[i];
      const reason = keyProblem(key, field);
      if (reason) {
        errors.push({ field: `${prefix}${escapeControlChars(key)}`, reason });
        continue;
      }
      stack.push({ value: (v as Record<string, unknown>)[key], path: `${prefix}${key}`, depth: node.depth + 1 });
    }
  }
  return errors;
}

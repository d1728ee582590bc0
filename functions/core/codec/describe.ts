/**
 * How the codec quotes client-supplied values inside error messages: short, JSON-like, and bounded so that a
 * 10 MB string or a 100,000-dimension shape never ends up in a log line or a response body.
 */
import { NonFiniteToken } from './json-text.js';

const MAX_SHOWN_CHARS = 64;
const MAX_SHOWN_DIMS = 8;

function truncate(text: string): string {
  return text.length > MAX_SHOWN_CHARS ? `${text.slice(0, MAX_SHOWN_CHARS)}...` : text;
}

/** A tensor or output name as it appears in messages: JSON-quoted and truncated. */
export function quoteName(name: string): string {
  return JSON.stringify(truncate(name));
}

/** `[2,3]`, or `[1,1,1,1,1,1,1,1,...] (1000 dims)` for absurd ranks. */
export function formatShape(shape: readonly unknown[]): string {
  if (shape.length <= MAX_SHOWN_DIMS) return `[${shape.map(show).join(',')}]`;
  return `[${shape.slice(0, MAX_SHOWN_DIMS).map(show).join(',')},...] (${shape.length} dims)`;
}

/** Any JSON value, briefly: `"abc"`, `1.5`, `NaN`, `null`, `an array`, `an object`. */
export function show(value: unknown): string {
  if (typeof value === 'string') return quoteName(value);
  if (value instanceof NonFiniteToken) return value.text;
  if (Array.isArray(value)) return 'an array';
  if (value === null) return 'null';
  if (value === undefined) return 'missing';
  if (typeof value === 'object') return 'an object';
  return truncate(String(value));
}

/** `1 element`, `2 elements`. */
export function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

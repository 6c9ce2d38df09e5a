/**
 * Random JSON Schemas of what the grammar enforces strictly (chat/json-grammar.ts),
 * for the property tests: objects (required and optional properties, odd
 * names), arrays (bounded or not, tuples), every scalar type, bounded integers
 * and numbers, multipleOf, string lengths, patterns and formats, enum, const,
 * anyOf, allOf, a discriminated oneOf, type lists, nullable, and recursion
 * through $defs. Small, so that a generation can finish in a few dozen tokens.
 */
import type { Rng } from '../src/engine/sampler/rng.ts';

const NAMES = ['a', 'city', 'n', 'ok', 'été', 'with space', 'quo"te', 'x_1'];

export function randomSchema(rng: Rng): Record<string, unknown> {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rng.next() * xs.length)];
  const scalar = (): Record<string, unknown> =>
    pick([
      () => ({ type: 'string' }),
      () => ({ type: 'number' }),
      () => ({ type: 'integer' }),
      () => ({ type: 'boolean' }),
      () => ({ type: 'null' }),
      () => ({ enum: ['red', 'green', 'é"\\', 3, null] }),
      () => ({ type: 'string', enum: ['a', 'b', 7] }),
      () => ({ const: { fixed: [1, 'two'] } }),
      () => ({ type: ['string', 'null'] }),
      () => ({ type: 'integer', minimum: -20, maximum: 300 }),
      () => ({ type: 'number', exclusiveMinimum: -1.5, maximum: 2.25 }),
      () => ({ type: 'number', multipleOf: 0.25 }),
      () => ({ type: 'string', minLength: 1, maxLength: 4 }),
      () => ({ type: 'string', pattern: '^[a-c]+-\\d{1,2}$' }),
      () => ({ type: 'string', format: pick(['date', 'email', 'uuid', 'ipv4', 'date-time', 'uri']) }),
      () => ({ type: 'string', nullable: true, maxLength: 3 }),
      () => ({ allOf: [{ type: 'integer', minimum: 0 }, { maximum: 5 }] }),
    ])();
  const gen = (depth: number): Record<string, unknown> => {
    if (depth >= 2 || rng.next() < 0.3) return scalar();
    return pick([
      () => {
        const names = NAMES.filter(() => rng.next() < 0.35).slice(0, 3);
        const properties = Object.fromEntries(names.map((n) => [n, gen(depth + 1)]));
        return { type: 'object', properties, required: names.filter(() => rng.next() < 0.6), additionalProperties: false };
      },
      () => ({ type: 'array', items: gen(depth + 1) }),
      () => ({ type: 'array', items: gen(depth + 1), minItems: 1, maxItems: 3 }),
      () => ({ anyOf: [gen(depth + 1), gen(depth + 1)] }),
      () => ({ type: 'object', additionalProperties: scalar() }),
      () => ({ type: 'array', prefixItems: [gen(depth + 1), scalar()], items: false, minItems: 1 }),
      () => ({
        oneOf: [
          { type: 'object', properties: { kind: { const: 'a' }, x: gen(depth + 1) }, required: ['kind', 'x'], additionalProperties: false },
          { type: 'object', properties: { kind: { const: 'b' } }, required: ['kind'], additionalProperties: false },
        ],
      }),
      () => ({ $ref: '#/$defs/tree' }),
    ])();
  };
  const root = gen(0);
  // Every root carries the recursive definition; some refer to it.
  return {
    ...root,
    $defs: {
      tree: {
        type: 'object',
        properties: { v: { type: 'integer' }, kids: { type: 'array', items: { $ref: '#/$defs/tree' } } },
        required: ['v'],
        additionalProperties: false,
      },
    },
  };
}

/**
 * Random JSON Schemas from the supported subset (chat/json-grammar.ts), for
 * the property tests: objects (required and optional properties, odd names),
 * arrays (bounded or not), every scalar type, bounded integers, enum, const,
 * anyOf, type lists, and recursion through $defs. Small, so that a generation can finish in a few dozen tokens.
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

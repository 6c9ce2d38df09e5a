/**
 * The regular parts of the schema grammar: ECMAScript patterns (regex.ts),
 * formats (formats.ts), lengths, and numbers (json-number.ts) compiled into
 * byte automata. Random strings each automaton accepts (a random walk to an
 * accepting state) must satisfy the original: RegExp with the u flag (as ajv
 * and zod run patterns), ajv-formats' full validators, ajv on number
 * keywords; and strings the original accepts must be accepted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { FORMATS } from '../../src/chat/formats.ts';
import { inclusiveBounds, nextDown, nextUp, numberAutomaton } from '../../src/chat/json-number.ts';
import { lengthAutomaton, patternAutomaton } from '../../src/chat/json-string.ts';
import { parsePattern, RegexError } from '../../src/chat/regex.ts';
import type { ByteDfa } from '../../src/engine/constraint/byte-dfa.ts';
import { createRng, type Rng } from '../../src/engine/sampler/rng.ts';

const LIMITS = { nfaStates: 100_000, dfaStates: 8192 };
const ajv = new Ajv2020.default({ strict: false });
addFormats.default(ajv);

/** A random byte string the automaton accepts: random moves, then the shortest way to acceptance after `soft` bytes. */
function sample(dfa: ByteDfa, rng: Rng, soft = 30): Uint8Array {
  const out: number[] = [];
  let s = 0;
  for (;;) {
    if (dfa.accept[s] && (rng.next() < 0.15 || out.length > soft)) return Uint8Array.from(out);
    const moves: number[] = [];
    for (let b = 0; b < 256; b++) {
      const t = dfa.next(s, b);
      if (t >= 0 && (out.length < soft || dfa.dist[t] < dfa.dist[s])) moves.push(b);
    }
    if (moves.length === 0 && dfa.accept[s]) return Uint8Array.from(out);
    assert.ok(moves.length > 0, 'every state left after trimming leads to acceptance');
    const b = moves[Math.floor(rng.next() * moves.length)];
    out.push(b);
    s = dfa.next(s, b);
  }
}

/** The decoded value of a JSON string body. */
const decode = (body: Uint8Array) => JSON.parse(`"${new TextDecoder().decode(body)}"`) as string;
/** A string as a JSON string body (JSON.stringify's escapes). */
const body = (s: string) => new TextEncoder().encode(JSON.stringify(s).slice(1, -1));

test('patterns: what the automaton writes matches the RegExp, what the RegExp matches (written as JSON does) is accepted', () => {
  const rng = createRng(11);
  const cases: Array<[string, string[], string[]]> = [
    ['^[A-Z]{3}-\\d+$', ['ABC-1', 'XYZ-0042'], ['AB-1', 'ABC-', 'abc-1', 'ABC-1x']],
    ['abc', ['abc', 'xxabcxx', 'é abc "'], ['ab', 'acb']],
    ['^a|b$', ['a', 'ab', 'xb', 'b'], ['ba', 'x']],
    ['^[^"\\\\]{2,4}$', ['ab', 'été!', '\n\t'], ['a', '"ab', 'abcde', 'a\\b']],
    ['^.$', ['a', 'é', '🙂'], ['\n', '', 'ab', '\u2028']],
    ['^[\\s\\S]*$', ['', 'anything\n"at all"'], []],
    ['^\\w+\\s\\d{2}$', ['word 12', 'x_1\t99'], ['word 1', ' 12']],
    ['^(?:[A-Za-z0-9_\'+\\-]+\\.)*[A-Za-z0-9_\'+\\-]*[A-Za-z0-9_+-]@(?:[A-Za-z0-9][A-Za-z0-9\\-]*\\.)+[A-Za-z]{2,}$', ['a.b@c.de', "o'brien+x@mail.example.org"], ['a@b', '@b.cd', 'a.@b.cd']],
    ['^\\u00e9\\x41\\u{1F642}[\\0-\\x1f]$', ['éA🙂\u0000', 'éA🙂\u001f'], ['éA🙂 ']],
    ['^(?<year>\\d{4})-(?:0[1-9]|1[0-2])$', ['2024-01', '1999-12'], ['2024-13', '24-01']],
    ['^x{2}y{1,}z{0,2}$', ['xxy', 'xxyyyzz'], ['xy', 'xxyzzz']],
    ['^[^]?$', ['', 'a', '\n'], ['ab']],
  ];
  for (const [pattern, good, bad] of cases) {
    const dfa = patternAutomaton(pattern, 'json-string', LIMITS);
    const re = new RegExp(pattern, 'u');
    for (let i = 0; i < 200; i++) {
      const s = decode(sample(dfa, rng));
      assert.ok(re.test(s), `${pattern} wrote ${JSON.stringify(s)}`);
    }
    for (const s of good) assert.ok(re.test(s) && dfa.accepts(body(s)), `${pattern} accepts ${JSON.stringify(s)}`);
    for (const s of bad) assert.ok(!re.test(s) && !dfa.accepts(body(s)), `${pattern} rejects ${JSON.stringify(s)}`);
  }
});

test('patterns outside the supported syntax are refused with a reason', () => {
  const refused: Array<[string, RegExp]> = [
    ['(?=a)b', /lookahead/],
    ['(?<!a)b', /lookahead and lookbehind/],
    ['(a)\\1', /backreferences/],
    ['\\k<n>', /backreferences/],
    ['a\\bc', /word boundary/],
    ['\\p{L}', /Unicode property/],
    ['a^b', /"\^" is supported only at the start/],
    ['(a$)', /"\$" is supported only at the end/],
  ];
  for (const [pattern, reason] of refused) assert.throws(() => parsePattern(pattern), (e: unknown) => e instanceof RegexError && reason.test(e.message), pattern);
});

test('formats: every string written is valid for ajv-formats (full mode)', () => {
  const rng = createRng(5);
  for (const [name, source] of Object.entries(FORMATS)) {
    const dfa = patternAutomaton(`^(?:${source})$`, 'json-string', LIMITS);
    const validate = ajv.compile({ type: 'string', format: name });
    for (let i = 0; i < 300; i++) {
      const s = decode(sample(dfa, rng));
      assert.ok(validate(s), `${name} wrote ${JSON.stringify(s)}`);
    }
  }
  const accepts = (name: string, s: string) => patternAutomaton(`^(?:${FORMATS[name]})$`, 'json-string', LIMITS).accepts(body(s));
  for (const [name, s] of [
    ['date-time', '2024-02-28T23:59:59.123Z'],
    ['date-time', '2024-06-01T00:00:00+02:00'],
    ['date', '1999-12-31'],
    ['time', '08:30:00Z'],
    ['email', 'first.last+tag@example.co.uk'],
    ['uuid', '123e4567-e89b-12d3-a456-426614174000'],
    ['uri', 'https://example.com/a/b?c=d#e'],
    ['ipv4', '192.168.0.1'],
    ['ipv6', '2001:db8:0:0:0:0:0:1'],
    ['hostname', 'api.example.com'],
    ['duration', 'P1Y2M3DT4H5M6S'],
  ]) {
    assert.ok(accepts(name, s), `${name} accepts ${s}`);
  }
  for (const [name, s] of [
    ['date', '2023-02-30'],
    ['date-time', '2024-01-01 00:00:00Z'],
    ['ipv4', '256.0.0.1'],
    ['uri', 'not a uri'],
    ['email', 'a@'],
  ]) {
    assert.ok(!accepts(name, s), `${name} rejects ${s}`);
  }
});

test('lengths count characters (code points), escapes included, exactly', () => {
  const rng = createRng(9);
  for (const [min, max] of [
    [0, 0],
    [2, 5],
    [1, Infinity],
    [3, 3],
  ]) {
    const dfa = lengthAutomaton(min, max, LIMITS);
    for (let i = 0; i < 200; i++) {
      const s = decode(sample(dfa, rng, 12));
      const n = [...s].length;
      assert.ok(n >= min && n <= max, `${min}..${max}: ${JSON.stringify(s)} has ${n}`);
    }
  }
  const five = lengthAutomaton(0, 5, LIMITS);
  assert.ok(five.accepts(body('🙂🙂🙂"\n')));
  assert.ok(!five.accepts(body('🙂🙂🙂"\n!')));
});

test('numbers: bounds, multipleOf and digit caps, against ajv; always finite', () => {
  const rng = createRng(13);
  const schemas: Array<Record<string, unknown>> = [
    { type: 'number' },
    { type: 'integer' },
    { type: 'number', minimum: 0, maximum: 100 },
    { type: 'number', exclusiveMinimum: 1, exclusiveMaximum: 5 },
    { type: 'number', minimum: -2.5, maximum: 0.125 },
    { type: 'number', maximum: -0.001 },
    { type: 'number', minimum: 0.1 },
    { type: 'number', minimum: -1e-7, maximum: 1e-7 },
    { type: 'integer', minimum: -9007199254740991, maximum: 9007199254740991 },
    { type: 'integer', exclusiveMinimum: 5, maximum: 12 },
    { type: 'number', multipleOf: 0.5 },
    { type: 'integer', multipleOf: 5, minimum: -100, maximum: 100 },
    { type: 'number', multipleOf: 0.25, minimum: 1, maximum: 3 },
    { type: 'integer', minimum: -1e300, maximum: 1e300 },
    { type: 'number', exclusiveMinimum: 2 ** 60 },
  ];
  for (const schema of schemas) {
    const dfa = numberAutomaton({ integer: schema.type === 'integer', ...inclusiveBounds(schema), multipleOf: schema.multipleOf as number | undefined }, LIMITS);
    const validate = ajv.compile(schema);
    for (let i = 0; i < 300; i++) {
      const text = String.fromCharCode(...sample(dfa, rng, 14));
      const value = JSON.parse(text);
      assert.ok(Number.isFinite(value) && validate(value), `${JSON.stringify(schema)} wrote ${text}`);
      assert.ok(!/^-?0\d/.test(text) && text !== '-0', `no leading zeros, no -0: ${text}`);
    }
  }
  const plain = numberAutomaton({ integer: false }, LIMITS);
  const bytes = (s: string) => new TextEncoder().encode(s);
  for (const s of ['0', '-12.5', '9999999999999999', '1.0000000000000001', '2e10', '3E-99']) assert.ok(plain.accepts(bytes(s)), s);
  for (const s of ['01', '1.', '.5', '99999999999999999', '1.00000000000000001', '1e100', '-0', '+1']) assert.ok(!plain.accepts(bytes(s)), s);
  // An exclusive bound is moved to the next double: no text rounds onto it.
  assert.equal(nextUp(1), 1.0000000000000002);
  assert.equal(nextDown(1), 0.9999999999999999);
  const above = numberAutomaton({ integer: false, ...inclusiveBounds({ exclusiveMinimum: 1 }) }, LIMITS);
  assert.ok(!above.accepts(bytes('1.0000000000000001')), 'rounds to 1');
  assert.ok(above.accepts(bytes('1.0000000000000003')));
});

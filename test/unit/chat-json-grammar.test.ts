/**
 * JSON Schema → grammar (src/chat/json-grammar.ts) and the reply grammar
 * (src/chat/reply-grammar.ts): what each keyword accepts and rejects, the
 * errors for what is outside the subset, and a property test without a model:
 * random schemas, random allowed tokens (the real vocabulary), every finished
 * output valid against the schema according to ajv.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { replyGrammar } from '../../src/chat/reply-grammar.ts';
import { TemplateError } from '../../src/chat/template.ts';
import { GrammarConstraint } from '../../src/engine/constraint/grammar-constraint.ts';
import { createRng } from '../../src/engine/sampler/rng.ts';
import { randomSchema } from '../random-schema.ts';
import { compileSchema, JsonGrammar, SchemaError } from '../../src/chat/json-grammar.ts';
import { GrammarBuilder } from '../../src/engine/constraint/grammar.ts';
import { EOT, TOOL_CALL, run, schemaGrammar, symbols, tokenizer, vocabulary } from './constraint-helpers.ts';

const accepts = (schema: unknown, text: string) => run(schemaGrammar(schema), symbols(text)) === 'complete';

test('each keyword of the subset: compact texts accepted, invalid ones not', () => {
  const cases: Array<[unknown, string[], string[]]> = [
    [{ type: 'string' }, ['""', '"a b"', '"\\u00e9\\n"'], ['"a', 'a', '"a" ', '1', '"a"b"', '"a\\"']],
    [{ type: 'integer' }, ['0', '-12', '120'], ['01', '1.5', '-', '1e3', '+1']],
    [{ type: 'number' }, ['0', '-0.5', '1e10', '2.5E-3'], ['.5', '1.', '01', '1e']],
    [{ type: 'boolean' }, ['true', 'false'], ['True', '1']],
    [{ type: 'null' }, ['null'], ['nul', '""']],
    [{ type: ['string', 'null'] }, ['"x"', 'null'], ['1']],
    [{ enum: ['a', 1, null, { k: [true] }] }, ['"a"', '1', 'null', '{"k":[true]}'], ['"b"', '2', '{"k":[]}']],
    [{ type: 'string', enum: ['a', 1] }, ['"a"'], ['1']],
    [{ const: 'x"y' }, ['"x\\"y"'], ['"xy"']],
    [{ anyOf: [{ type: 'integer' }, { type: 'string' }] }, ['5', '"5"'], ['true']],
    [{ type: 'array', items: { type: 'integer' } }, ['[]', '[1]', '[1,2,3]'], ['[1,]', '[,1]', '["a"]', '[1, 2]']],
    [{ type: 'object' }, ['{}', '{"any":[1,{"x":null}]}'], ['{"a"}', '{1:2}']],
    [{ type: 'object', additionalProperties: { type: 'integer' } }, ['{}', '{"a":1,"b":2}'], ['{"a":"x"}']],
    [{ type: 'object', additionalProperties: false }, ['{}'], ['{"a":1}']],
    [
      { type: 'object', properties: { a: { type: 'integer' }, b: { type: 'string' }, c: { type: 'boolean' } }, required: ['b'] },
      ['{"b":"x"}', '{"a":1,"b":"x"}', '{"b":"x","c":true}', '{"a":1,"b":"x","c":false}'],
      ['{}', '{"a":1}', '{"b":"x","a":1}', '{"b":"x",}', '{"b":"x","d":1}'],
    ],
    [{ type: 'object', properties: { a: { type: 'integer' }, b: { type: 'integer' } } }, ['{}', '{"a":1}', '{"b":2}', '{"a":1,"b":2}'], ['{"b":2,"a":1}']],
    [{ properties: { 'quo"te': { const: 1 } }, required: ['quo"te', 'extra'] }, ['{"quo\\"te":1,"extra":[null]}'], ['{"quo\\"te":1}']],
    [true, ['1', '"s"', '{"a":[]}'], ['', 'nope']],
  ];
  for (const [schema, good, bad] of cases) {
    for (const t of good) assert.ok(accepts(schema, t), `${JSON.stringify(schema)} accepts ${t}`);
    for (const t of bad) assert.ok(!accepts(schema, t), `${JSON.stringify(schema)} rejects ${t}`);
  }
});

test('strings, numbers, combinators, tuples: what each keyword accepts and rejects', () => {
  const cases: Array<[unknown, string[], string[]]> = [
    [{ type: 'string', minLength: 2, maxLength: 3 }, ['"ab"', '"été"', '"\\n\\""', '"🙂🙂"'], ['"a"', '"abcd"', '""']],
    [{ type: 'string', pattern: '^[A-Z]{2}\\d$' }, ['"AB1"'], ['"AB"', '"ab1"', '"AB12"']],
    [{ type: 'string', pattern: 'x' }, ['"x"', '"axb"'], ['"ab"']],
    [{ type: 'string', format: 'date' }, ['"2024-02-28"'], ['"2024-02-30"', '"24-01-01"']],
    [{ type: 'string', format: 'email', maxLength: 6 }, ['"a@b.cd"'], ['"ab@c.de"', '"a@b"']],
    [{ allOf: [{ type: 'string', pattern: '^a' }, { pattern: 'z$' }] }, ['"az"', '"abz"'], ['"a"', '"bz"']],
    [{ type: 'number', minimum: 0, exclusiveMaximum: 1 }, ['0', '0.5', '0.999'], ['1', '-0.1', '1.0']],
    [{ type: 'number', multipleOf: 0.5 }, ['1', '1.5', '-2.50'], ['1.2', '0.25']],
    [{ type: 'integer', multipleOf: 3 }, ['0', '-3', '12'], ['4', '1.5']],
    [{ type: 'integer', minimum: 1, exclusiveMinimum: true }, ['2', '3'], ['1', '0']],
    [{ type: 'string', nullable: true }, ['"x"', 'null'], ['1']],
    [{ enum: ['a', 'b'], nullable: true }, ['"a"', 'null'], ['"c"']],
    [{ type: 'string', enum: ['a', 'bb', 'ccc'], maxLength: 2 }, ['"a"', '"bb"'], ['"ccc"']],
    [
      { allOf: [{ type: 'object', properties: { a: { type: 'string' } }, required: ['a'] }, { properties: { b: { type: 'integer' } }, required: ['b'] }] },
      ['{"a":"x","b":1}'],
      ['{"a":"x"}', '{"b":1}'],
    ],
    [{ allOf: [{ type: 'object', properties: { a: { type: 'integer' } }, additionalProperties: false }, { properties: { b: { type: 'integer' } } }] }, ['{}', '{"a":1}'], ['{"b":1}']],
    [{ $ref: '#/$defs/s', minLength: 2, $defs: { s: { type: 'string' } } }, ['"ab"'], ['"a"']],
    [{ type: 'object', anyOf: [{ properties: { a: { const: 1 } }, required: ['a'] }, { properties: { b: { const: 2 } }, required: ['b'] }] }, ['{"a":1}', '{"b":2}'], ['{}', '[]']],
    [
      { oneOf: [{ type: 'object', properties: { kind: { const: 'a' }, x: { type: 'integer' } }, required: ['kind', 'x'] }, { type: 'object', properties: { kind: { const: 'b' } }, required: ['kind'] }] },
      ['{"kind":"a","x":1}', '{"kind":"b"}'],
      ['{"kind":"c"}', '{"kind":"a"}'],
    ],
    [{ type: 'array', prefixItems: [{ type: 'string' }, { type: 'integer' }], items: false, minItems: 1 }, ['["a"]', '["a",1]'], ['[]', '["a",1,2]', '[1]']],
    [{ type: 'array', items: [{ type: 'string' }], additionalItems: { type: 'integer' } }, ['[]', '["a"]', '["a",1,2]'], ['["a","b"]']],
    [{ type: 'object', propertyNames: { enum: ['x', 'y'] }, additionalProperties: { type: 'integer' } }, ['{}', '{"x":1}', '{"x":1,"y":2}'], ['{"z":1}', '{"x":"a"}']],
    [{ type: 'object', properties: { a: { type: 'integer' }, bb: { type: 'integer' } }, propertyNames: { maxLength: 1 } }, ['{}', '{"a":1}'], ['{"bb":1}']],
    [{ type: 'object', required: ['k'], additionalProperties: { type: 'boolean' } }, ['{"k":true}'], ['{"k":1}']],
  ];
  for (const [schema, good, bad] of cases) {
    for (const t of good) assert.ok(accepts(schema, t), `${JSON.stringify(schema)} accepts ${t}`);
    for (const t of bad) assert.ok(!accepts(schema, t), `${JSON.stringify(schema)} rejects ${t}`);
  }
});

test('not strict: what the grammar cannot enforce is accepted, left unenforced, and reported', () => {
  const loosened: Array<{ keyword: string; at: string }> = [];
  const g = new GrammarBuilder();
  const schema = { type: 'object', properties: { tags: { type: 'array', items: { type: 'string' }, uniqueItems: true }, v: { type: 'string', not: { const: '' }, 'x-ui': 'hidden' } }, required: ['tags', 'v'] };
  const root = compileSchema(new JsonGrammar(g), schema, { strict: false, onLoosen: (l) => loosened.push(l) });
  g.check(root);
  assert.deepEqual(loosened.map((l) => l.at).sort(), ['#/properties/tags/uniqueItems', '#/properties/v/not', '#/properties/v/x-ui']);
  // The rest still holds: tags are strings, v is a string (possibly empty: not is not enforced).
  assert.equal(run(root, symbols('{"tags":["a","a"],"v":""}')), 'complete');
  assert.equal(run(root, symbols('{"tags":[1],"v":""}')), 'rejected');
  assert.throws(() => schemaGrammar(schema), SchemaError, 'strict: refused');
});

test('integer bounds: exactly the integers in range, written one way', () => {
  const ranges: Array<[number | undefined, number | undefined, Record<string, number>]> = [
    [-15, 123, { minimum: -15, maximum: 123 }],
    [7, undefined, { minimum: 7 }],
    [undefined, -3, { maximum: -3 }],
    [0, 0, { minimum: 0, maximum: 0 }],
    [1, 99, { exclusiveMinimum: 0, exclusiveMaximum: 100 }],
    [-9, 10, { minimum: -9.5, maximum: 10.5 }],
    [100, 250, { minimum: 50, exclusiveMinimum: 99, maximum: 250, exclusiveMaximum: 300 }],
  ];
  for (const [lo, hi, bounds] of ranges) {
    const grammar = schemaGrammar({ type: 'integer', ...bounds });
    for (let n = -300; n <= 300; n++) {
      const inRange = (lo === undefined || n >= lo) && (hi === undefined || n <= hi);
      assert.equal(run(grammar, symbols(String(n))) === 'complete', inRange, `${JSON.stringify(bounds)}: ${n}`);
    }
    for (const form of ['007', '-0', '+5', '1.0', '1e2']) assert.notEqual(run(grammar, symbols(form)), 'complete', `${JSON.stringify(bounds)}: ${form}`);
  }
  // zod's z.int(): the safe-integer range.
  const safe = schemaGrammar({ type: 'integer', minimum: -9007199254740991, maximum: 9007199254740991 });
  for (const n of ['9007199254740991', '-9007199254740991', '9007199254740990', '1000000000000000', '0', '42']) assert.equal(run(safe, symbols(n)), 'complete', n);
  for (const n of ['9007199254740992', '-9007199254740992', '10000000000000000']) assert.notEqual(run(safe, symbols(n)), 'complete', n);
  assert.equal(run(schemaGrammar({ type: 'integer', minimum: 1e20 }), symbols('100000000000000000000')), 'complete');
  assert.notEqual(run(schemaGrammar({ type: 'integer', minimum: 1e20 }), symbols('99999999999999999999')), 'complete');
});

test('array bounds: minItems and maxItems', () => {
  const count = (min: number | undefined, max: number | undefined, n: number) =>
    run(schemaGrammar({ type: 'array', items: { const: 1 }, ...(min === undefined ? {} : { minItems: min }), ...(max === undefined ? {} : { maxItems: max }) }), symbols(JSON.stringify(Array(n).fill(1)))) === 'complete';
  for (const [min, max] of [[0, 0], [0, 2], [1, undefined], [2, 4], [3, 3], [undefined, 1]] as Array<[number | undefined, number | undefined]>) {
    for (let n = 0; n <= 6; n++) assert.equal(count(min, max, n), n >= (min ?? 0) && (max === undefined || n <= max), `minItems ${min}, maxItems ${max}: ${n} items`);
  }
  assert.throws(() => schemaGrammar({ type: 'array', minItems: 3, maxItems: 2 }), /no JSON value satisfies/);
});

test('$ref into $defs and definitions, recursion included', () => {
  const tree = {
    $ref: '#/$defs/node',
    $defs: { node: { type: 'object', properties: { v: { type: 'integer' }, kids: { type: 'array', items: { $ref: '#/$defs/node' } } }, required: ['v'] } },
  };
  assert.ok(accepts(tree, '{"v":1,"kids":[{"v":2},{"v":3,"kids":[{"v":4,"kids":[]}]}]}'));
  assert.ok(!accepts(tree, '{"v":1,"kids":[{"kids":[]}]}'));
  const list = { type: 'object', properties: { next: { anyOf: [{ $ref: '#' }, { type: 'null' }] } }, required: ['next'] };
  assert.ok(accepts(list, '{"next":{"next":{"next":null}}}'));
  const draft7 = { type: 'object', properties: { p: { $ref: '#/definitions/P' } }, definitions: { P: { enum: [1, 2] } } };
  assert.ok(accepts(draft7, '{"p":2}'));
  assert.ok(accepts({ properties: { 'a/b': { const: 1 }, c: { $ref: '#/properties/a~1b' } }, required: ['c'] }, '{"c":1}'));
});

test('what is outside the subset is an error naming the keyword and where it is', () => {
  const error = (schema: unknown): SchemaError => {
    try {
      schemaGrammar(schema);
    } catch (e) {
      assert.ok(e instanceof SchemaError, String(e));
      return e;
    }
    assert.fail(`${JSON.stringify(schema)} was accepted`);
  };
  const cases: Array<[unknown, RegExp, string]> = [
    [{ type: 'array', items: { type: 'integer' }, uniqueItems: true }, /"uniqueItems" is not enforced/, '#/uniqueItems'],
    [{ type: 'object', properties: { a: { not: { type: 'string' } } } }, /"not" is not enforced/, '#/properties/a/not'],
    [{ if: { type: 'string' }, then: { minLength: 1 } }, /"if" is not enforced/, '#/if'],
    [{ type: 'string', pattern: '^(?=a)b' }, /"pattern" uses what the grammar cannot enforce: lookahead/, '#/pattern'],
    [{ type: 'string', pattern: '(a)\\1' }, /backreferences/, '#/pattern'],
    [{ type: 'string', pattern: '[' }, /not a valid regular expression/, '#/pattern'],
    [{ type: 'string', format: 'color' }, /"format" "color" is not one of the formats enforced/, '#/format'],
    [{ type: 'object', patternProperties: { '^x': {} } }, /"patternProperties" is not enforced/, '#/patternProperties'],
    [{ type: 'object', properties: { a: {} }, minProperties: 1 }, /"minProperties" is enforced only through required/, '#/minProperties'],
    [{ oneOf: [{ type: 'string' }, { type: 'string', minLength: 2 }] }, /"oneOf" is enforced only when its branches cannot overlap/, '#/oneOf'],
    [{ type: 'string', 'x-custom': 1 }, /"x-custom" is not a keyword the grammar knows/, '#/x-custom'],
    [{ type: 'integer', exclusiveMinimum: true }, /"exclusiveMinimum": true needs "minimum"/, '#/exclusiveMinimum'],
    [{ type: 'number', multipleOf: 0 }, /"multipleOf" must be greater than 0/, '#/multipleOf'],
    [{ type: 'array', maxItems: 5000 }, /"maxItems" above 1000/, '#/maxItems'],
    [{ type: 'array', minItems: -1 }, /"minItems" must be a non-negative integer/, '#/minItems'],
    [{ type: 'integer', minimum: 5, maximum: 4 }, /no JSON value satisfies/, '#'],
    [{ $defs: { unused: { type: 'number', not: {} } } }, /"not"/, '#/$defs/unused/not'],
    [{ type: 'text' }, /"type" must be one of/, '#/type'],
    [{ type: 'object', required: 'a' }, /"required" must be an array/, '#/required'],
    [{ $ref: '#/$defs/missing' }, /does not resolve/, '#/$ref'],
    [{ $ref: 'https://example.com/schema.json' }, /only references into the same schema/, '#/$ref'],
    [{ allOf: [{ type: 'string' }, { type: 'integer' }] }, /no JSON value satisfies/, '#'],
    [{ enum: [1], properties: {} }, /no JSON value satisfies/, '#'],
    [{ anyOf: [{ $ref: '#' }, { type: 'string' }] }, /refers back to itself/, '#'],
    [{ type: 'object', properties: { me: { $ref: '#' } }, required: ['me'] }, /no JSON value satisfies/, '#'],
    [{ type: 'integer', enum: ['a'] }, /no JSON value satisfies/, '#'],
    [false, /no JSON value satisfies/, '#'],
    [42, /must be an object or a boolean/, '#'],
  ];
  for (const [schema, message, at] of cases) {
    const e = error(schema);
    assert.match(e.message, message, JSON.stringify(schema));
    assert.equal(e.at, at, JSON.stringify(schema));
  }
});

const tokens = { endOfText: EOT, toolCall: TOOL_CALL };
/** Tool definitions are checked when the reply grammar is compiled. */
const checkTools = (list: Array<{ name: string; parameters?: unknown; strict?: boolean }>) => replyGrammar({ tools: { list, choice: 'auto', parallel: true } }, tokens);
const weather = { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } };
const time = { name: 'get_time', parameters: { type: 'object', properties: { tz: { enum: ['UTC', 'CET'] } }, required: ['tz'] } };
const call = (name: string, args: string) => [TOOL_CALL, `{"name":"${name}","arguments":${args}}`];

test('reply grammar: tool choice auto, required, named, parallel or not, JSON content', () => {
  const tools = (choice: 'auto' | 'required' | { name: string }, parallel = true) => replyGrammar({ tools: { list: [weather, time], choice, parallel } }, tokens).root;
  const end = ['\n', EOT];
  const accept = (root: ReturnType<typeof tools>, ...parts: Array<string | number>) => run(root, symbols(...parts)) === 'complete';
  // auto: free text, or text then calls; the calls themselves are constrained.
  assert.ok(accept(tools('auto'), 'Anything at all, even {"json": 1}\n', EOT));
  assert.ok(accept(tools('auto'), 'Let me check.', ...call('get_weather', '{"city":"Paris"}'), ...end));
  assert.ok(!accept(tools('auto'), ...call('get_weather', '{"town":"Paris"}'), ...end));
  assert.ok(!accept(tools('auto'), ...call('get_wether', '{"city":"Paris"}'), ...end));
  // required: a call from the first token; several when parallel.
  assert.ok(!accept(tools('required'), 'Hi\n', EOT));
  assert.ok(accept(tools('required'), ...call('get_weather', '{"city":"Paris"}'), ...call('get_time', '{"tz":"CET"}'), ...end));
  assert.ok(!accept(tools('required', false), ...call('get_weather', '{"city":"Paris"}'), ...call('get_time', '{"tz":"CET"}'), ...end));
  assert.ok(accept(tools('required', false), ...call('get_time', '{"tz":"UTC"}'), ...end));
  // named: that function only, once.
  assert.ok(accept(tools({ name: 'get_time' }), ...call('get_time', '{"tz":"UTC"}'), ...end));
  assert.ok(!accept(tools({ name: 'get_time' }), ...call('get_weather', '{"city":"Paris"}'), ...end));
  assert.throws(() => tools({ name: 'nope' }), (e: unknown) => e instanceof TemplateError && e.param === 'tool_choice.function.name');
  // JSON content, or (auto) calls instead.
  const json = replyGrammar({ json: { kind: 'object' }, tools: { list: [weather], choice: 'auto', parallel: true } }, tokens).root;
  assert.ok(accept(json, '{"a":1}', ...end));
  assert.ok(accept(json, ...call('get_weather', '{"city":"Rome"}'), ...end));
  assert.ok(!accept(json, 'text', ...end));
  assert.ok(!accept(json, '[1]', ...end));
  // A tool without parameters takes {} only.
  const bare = replyGrammar({ tools: { list: [{ name: 'ping' }], choice: 'required', parallel: true } }, tokens).root;
  assert.ok(accept(bare, ...call('ping', '{}'), ...end));
  assert.ok(!accept(bare, ...call('ping', '{"x":1}'), ...end));
});

test('tool definitions: duplicates, unsupported or non-object parameters name the tool', () => {
  const bad = (tools: Array<{ name: string; parameters?: unknown; strict?: boolean }>, param: string, message: RegExp) =>
    assert.throws(() => checkTools(tools), (e: unknown) => e instanceof TemplateError && e.param === param && message.test(e.message), JSON.stringify(tools));
  bad([weather, weather], 'tools[1].function.name', /tools\[1\] "get_weather": duplicate function name \(tools\[0\]/);
  bad([weather, { name: 'f', strict: true, parameters: { type: 'object', properties: { d: { type: 'string', format: 'color' } } } }], 'tools[1].function.parameters', /tools\[1\] "f": parameters: "format" "color" is not one of the formats enforced .* \(at #\/properties\/d\/format\)/);
  bad([{ name: 'g', parameters: { type: 'array' } }], 'tools[0].function.parameters', /tools\[0\] "g": parameters must describe a JSON object/);
  bad([{ name: 'h', parameters: { anyOf: [{ type: 'object' }, { type: 'string' }] } }], 'tools[0].function.parameters', /must describe a JSON object/);
  checkTools([weather, time, { name: 'r', parameters: { $ref: '#/$defs/a', $defs: { a: { type: 'object' } } } }]);
});

test('property: random schemas, random allowed tokens, every finished output validates (ajv)', () => {
  const ajv = addFormats.default(new Ajv2020.default({ strict: false }));
  const vocab = vocabulary();
  const rng = createRng(2024);
  // Tokens that close things, drawn half the time so that outputs finish; any choice among allowed tokens is fair game.
  const closers = new Set([...Array(vocab.size).keys()].filter((id) => /^[\]}",]+$/.test(new TextDecoder().decode(vocab.tokenBytes(id) ?? new Uint8Array()))));
  let finished = 0;
  const cases = 60;
  for (let c = 0; c < cases; c++) {
    const schema = randomSchema(rng);
    const constraint = new GrammarConstraint(replyGrammar({ json: { kind: 'schema', schema, strict: true } }, tokens), vocab);
    const m = constraint.start();
    const out: number[] = [];
    for (let k = 0; k < 60 && !m.done; k++) {
      const row = new Float32Array(vocab.size);
      m.allowed().apply(row);
      const allowed: number[] = [];
      for (let id = 0; id < row.length; id++) if (row[id] === 0) allowed.push(id);
      const preferred = rng.next() < 0.5 ? allowed.filter((id) => closers.has(id) || id === EOT) : [];
      const pool = preferred.length > 0 ? preferred : allowed;
      const id = pool[Math.floor(rng.next() * pool.length)];
      m.accept(id);
      out.push(id);
    }
    if (!m.done) continue;
    finished++;
    const text = tokenizer.decode(out.slice(0, -1));
    assert.ok(text.endsWith('\n'), 'JSON content ends with the format newline');
    const value = JSON.parse(text.slice(0, -1));
    assert.ok(ajv.validate(schema, value), `${JSON.stringify(schema)}\n${text}\n${ajv.errorsText()}`);
  }
  assert.ok(finished >= cases * 0.6, `${finished} of ${cases} finished within 60 tokens`);
});

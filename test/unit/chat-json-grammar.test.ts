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
import { SchemaError } from '../../src/chat/json-grammar.ts';
import { replyGrammar } from '../../src/chat/reply-grammar.ts';
import { TemplateError } from '../../src/chat/template.ts';
import { GrammarConstraint } from '../../src/engine/constraint/grammar-constraint.ts';
import { createRng } from '../../src/engine/sampler/rng.ts';
import { randomSchema } from '../random-schema.ts';
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
    [{ type: 'string', pattern: '^a' }, /unsupported keyword "pattern"/, '#/pattern'],
    [{ type: 'object', properties: { a: { type: 'string', format: 'date' } } }, /unsupported keyword "format"/, '#/properties/a/format'],
    [{ type: 'array', items: { type: 'integer' }, uniqueItems: true }, /unsupported keyword "uniqueItems"/, '#/uniqueItems'],
    [{ type: 'number', minimum: 0 }, /"minimum" on a number is not supported/, '#/minimum'],
    [{ type: 'integer', exclusiveMinimum: true }, /"exclusiveMinimum" must be a number/, '#/exclusiveMinimum'],
    [{ type: 'array', maxItems: 5000 }, /"maxItems" above 1000/, '#/maxItems'],
    [{ type: 'array', minItems: -1 }, /"minItems" must be a non-negative integer/, '#/minItems'],
    [{ type: 'integer', minimum: 5, maximum: 4 }, /no JSON value satisfies/, '#'],
    [{ oneOf: [{ type: 'string' }] }, /"oneOf"/, '#/oneOf'],
    [{ $defs: { unused: { type: 'number', minimum: 0 } } }, /"minimum"/, '#/$defs/unused/minimum'],
    [{ type: 'text' }, /"type" must be one of/, '#/type'],
    [{ type: 'object', required: 'a' }, /"required" must be an array/, '#/required'],
    [{ $ref: '#/$defs/missing' }, /does not resolve/, '#/$ref'],
    [{ $ref: 'https://example.com/schema.json' }, /only references into the same schema/, '#/$ref'],
    [{ $ref: '#/$defs/a', type: 'object', $defs: { a: {} } }, /"\$ref" together with "type"/, '#/type'],
    [{ anyOf: [{ type: 'string' }], type: 'string' }, /"anyOf" together with "type"/, '#/type'],
    [{ type: 'array', items: [{ type: 'string' }] }, /tuple/, '#/items'],
    [{ enum: [1], properties: {} }, /"enum" together with "properties"/, '#/properties'],
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
const checkTools = (list: Array<{ name: string; parameters?: unknown }>) => replyGrammar({ tools: { list, choice: 'auto', parallel: true } }, tokens);
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
  const bad = (tools: Array<{ name: string; parameters?: unknown }>, param: string, message: RegExp) =>
    assert.throws(() => checkTools(tools), (e: unknown) => e instanceof TemplateError && e.param === param && message.test(e.message), JSON.stringify(tools));
  bad([weather, weather], 'tools[1].function.name', /tools\[1\] "get_weather": duplicate function name \(tools\[0\]/);
  bad([weather, { name: 'f', parameters: { type: 'object', properties: { d: { type: 'string', format: 'date' } } } }], 'tools[1].function.parameters', /tools\[1\] "f": parameters: unsupported keyword "format" \(at #\/properties\/d\/format\)/);
  bad([{ name: 'g', parameters: { type: 'array' } }], 'tools[0].function.parameters', /tools\[0\] "g": parameters must describe a JSON object/);
  bad([{ name: 'h', parameters: { anyOf: [{ type: 'object' }, { type: 'string' }] } }], 'tools[0].function.parameters', /must describe a JSON object/);
  checkTools([weather, time, { name: 'r', parameters: { $ref: '#/$defs/a', $defs: { a: { type: 'object' } } } }]);
});

test('property: random schemas, random allowed tokens, every finished output validates (ajv)', () => {
  const ajv = new Ajv2020.default({ strict: false });
  const vocab = vocabulary();
  const rng = createRng(2024);
  // Tokens that close things, drawn half the time so that outputs finish; any choice among allowed tokens is fair game.
  const closers = new Set([...Array(vocab.size).keys()].filter((id) => /^[\]}",]+$/.test(new TextDecoder().decode(vocab.tokenBytes(id) ?? new Uint8Array()))));
  let finished = 0;
  const cases = 60;
  for (let c = 0; c < cases; c++) {
    const schema = randomSchema(rng);
    const constraint = new GrammarConstraint(replyGrammar({ json: { kind: 'schema', schema } }, tokens), vocab);
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

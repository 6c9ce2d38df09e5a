import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, envName, helpText, parseConfig, resolveEvalEmbeddingModel, resolveModelDirs, resolveServedNames, SETTINGS, type ServerConfig } from '../../src/config.ts';
import { configTable, replaceConfigTable } from '../../src/config-doc.ts';

function parse(argv: string[], env: Record<string, string> = {}): ServerConfig {
  const r = parseConfig(argv, env);
  assert.equal(r.help, false);
  return (r as { config: ServerConfig }).config;
}

test('defaults: 127.0.0.1:8000, models/, device auto, no keys', () => {
  const c = parse([]);
  assert.equal(c.host, '127.0.0.1');
  assert.equal(c.port, 8000);
  assert.equal(c.modelsDir, 'models');
  assert.deepEqual(c.models, []);
  assert.deepEqual(c.apiKeys, []);
  assert.equal(c.device, 'auto');
});

test('flags in both forms, and a flag wins over the environment', () => {
  const c = parse(['--port', '8001', '--host=0.0.0.0', '--device', 'cpu'], { MMREC_PORT: '9000', MMREC_HOST: '1.2.3.4', MMREC_MAX_QUEUE: '3' });
  assert.equal(c.port, 8001);
  assert.equal(c.host, '0.0.0.0');
  assert.equal(c.device, 'cpu');
  assert.equal(c.maxQueue, 3);
});

test('--device takes auto, cuda, webgpu and cpu, from the flag or MMREC_DEVICE', () => {
  for (const device of ['auto', 'cuda', 'webgpu', 'cpu']) {
    assert.equal(parse(['--device', device]).device, device);
    assert.equal(parse([], { MMREC_DEVICE: device }).device, device);
  }
  assert.equal(parse(['--device=webgpu'], { MMREC_DEVICE: 'cpu' }).device, 'webgpu');
  assert.match(helpText(), /--device <auto\|cuda\|webgpu\|cpu>/);
});

test('every setting has an environment variable', () => {
  for (const s of SETTINGS) {
    const env = { [envName(s.flag)]: s.kind === 'int' ? String(s.min ?? 1) : s.kind === 'enum' ? s.values![0] : 'x' };
    const c = parse([], env) as unknown as Record<string, unknown>;
    const expected = s.kind === 'int' ? (s.min ?? 1) : s.kind === 'list' ? ['x'] : s.kind === 'enum' ? s.values![0] : 'x';
    assert.deepEqual(c[s.key], expected, s.flag);
  }
});

test('lists: repeated flags and comma-separated values', () => {
  const c = parse(['--api-key', 'a,b', '--api-key', 'c', '--model', 'm1']);
  assert.deepEqual(c.apiKeys, ['a', 'b', 'c']);
  assert.deepEqual(c.models, ['m1']);
  assert.deepEqual(parse([], { MMREC_API_KEY: 'k1, k2' }).apiKeys, ['k1', 'k2']);
});

test('invalid values fail with one line naming the setting', () => {
  const cases: Array<[string[], Record<string, string>, RegExp]> = [
    [['--port', 'abc'], {}, /--port must be an integer/],
    [['--port', '70000'], {}, /--port must be between 0 and 65535/],
    [['--device', 'tpu'], {}, /--device must be one of auto, cuda, webgpu, cpu/],
    [[], { MMREC_MAX_N: '0' }, /MMREC_MAX_N must be between 1/],
    [['--bogus', '1'], {}, /unknown option --bogus/],
    [['--port'], {}, /--port needs a value/],
    [['--port', '1', '--port', '2'], {}, /given more than once/],
    [['stray'], {}, /unexpected argument/],
  ];
  for (const [argv, env, re] of cases) {
    assert.throws(
      () => parseConfig(argv, env),
      (e: unknown) => e instanceof ConfigError && re.test(e.message) && !e.message.includes('\n'),
      `${argv.join(' ')} ${JSON.stringify(env)}`,
    );
  }
});

test('--help is recognised and lists every flag with its environment variable', () => {
  assert.deepEqual(parseConfig(['--port', '1', '--help']), { help: true });
  assert.deepEqual(parseConfig(['-h']), { help: true });
  const text = helpText();
  for (const s of SETTINGS) {
    assert.ok(text.includes(`--${s.flag} `), s.flag);
    assert.ok(text.includes(envName(s.flag)), envName(s.flag));
  }
});

test('model directories: scanned under --models-dir, named by directory, validated', () => {
  const root = mkdtempSync(join(tmpdir(), 'mmrec-models-'));
  for (const id of ['b-model', 'a-model']) {
    mkdirSync(join(root, id));
    writeFileSync(join(root, id, 'model.onnx'), '');
    writeFileSync(join(root, id, 'config.json'), '{}');
  }
  mkdirSync(join(root, 'not-a-model'));
  const found = resolveModelDirs(parse(['--models-dir', root]));
  assert.deepEqual(found.map((m) => m.id), ['a-model', 'b-model']);
  assert.deepEqual(resolveModelDirs(parse(['--model', join(root, 'b-model')])).map((m) => m.id), ['b-model']);
  assert.throws(() => resolveModelDirs(parse(['--model', join(root, 'not-a-model')])), /is not a model directory/);
  assert.throws(() => resolveModelDirs(parse(['--models-dir', join(root, 'not-a-model')])), /no model directory/);
  assert.throws(() => resolveModelDirs(parse(['--models-dir', join(root, 'missing')])), /is not a directory/);
});

test("the README's configuration table is the settings table (npm run config-table rewrites it)", () => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  assert.equal(replaceConfigTable(readme, configTable()), readme, 'README.md is stale: run `npm run config-table`');
  for (const s of SETTINGS) assert.ok(readme.includes(`\`--${s.flag}\``), `--${s.flag} is documented`);
});

test('--served-model-name: several names for one model, MODEL=NAME with several; clashes refused', () => {
  const one = [{ id: 'tiny' }];
  const two = [{ id: 'tiny' }, { id: 'big' }];
  assert.deepEqual(resolveServedNames(parse(['--served-model-name', 'gpt-4o-mini,text-embedding-3-small', '--served-model-name', 'tiny']), one), { tiny: ['gpt-4o-mini', 'text-embedding-3-small'] });
  assert.deepEqual(resolveServedNames(parse([], { MMREC_SERVED_MODEL_NAME: 'a, b' }), one), { tiny: ['a', 'b'] });
  assert.deepEqual(resolveServedNames(parse(['--served-model-name', 'big=gpt-4o,tiny=gpt-4o-mini,big=org/Model-1.5@v2']), two), { big: ['gpt-4o', 'org/Model-1.5@v2'], tiny: ['gpt-4o-mini'] });
  assert.deepEqual(resolveServedNames(parse([]), two), {});
  const refused = (argv: string[], models: Array<{ id: string }>, why: RegExp) => assert.throws(() => resolveServedNames(parse(argv), models), (e) => e instanceof ConfigError && why.test(e.message));
  refused(['--served-model-name', 'gpt-4o'], two, /2 models are served .*MODEL=gpt-4o/);
  refused(['--served-model-name', 'huge=gpt-4o'], two, /no served model has the id "huge"/);
  refused(['--served-model-name', 'tiny=big'], two, /already the id of another served model/);
  refused(['--served-model-name', 'tiny=x,big=x'], two, /"x" names two models/);
  refused(['--served-model-name', 'tiny='], two, /a name is 1 to 256 characters/);
  refused(['--served-model-name', 'tiny=a b'], two, /a name is 1 to 256 characters/);
});

test('--eval-embedding-model: the first configured model by default, else a configured id or alias; any other name stops the start', () => {
  const two = [{ id: 'big' }, { id: 'tiny' }];
  const aliases = { tiny: ['text-embedding-3-small'] };
  assert.equal(resolveEvalEmbeddingModel(parse([]), two, aliases), 'big');
  assert.equal(resolveEvalEmbeddingModel(parse(['--eval-embedding-model', 'tiny']), two, aliases), 'tiny');
  assert.equal(resolveEvalEmbeddingModel(parse([], { MMREC_EVAL_EMBEDDING_MODEL: 'text-embedding-3-small' }), two, aliases), 'text-embedding-3-small');
  assert.throws(
    () => resolveEvalEmbeddingModel(parse(['--eval-embedding-model', 'ft:tiny:mmrec:x:ftjob-1']), two, aliases),
    (e) => e instanceof ConfigError && /--eval-embedding-model ft:tiny:mmrec:x:ftjob-1: no configured model has that name \(served: big, tiny, text-embedding-3-small\)/.test(e.message),
  );
});

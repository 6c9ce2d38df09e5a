/**
 * The production build (what the Docker image runs): `npm run build` emits
 * JavaScript to dist/, the model worker included; everything the built
 * server and its worker import is a node: builtin or a production
 * dependency (the image installs no dev dependencies); and `node
 * dist/server.js`, without tsx, serves chat and embeddings and stops cleanly.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { builtinModules } from 'node:module';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { MODEL, ROOT, run, startServer, type ServerProcess } from './helpers.ts';

const DIST = join(ROOT, 'dist');
let server: ServerProcess | undefined;

before(async () => {
  const built = await run('npm', ['run', 'build'], { timeoutMs: 300_000 });
  assert.equal(built.code, 0, built.stdout + built.stderr);
});

after(async () => {
  if (server) assert.equal(await server.stop(), 0);
});

/** Bare specifiers imported by `entry` and the modules it reaches through relative imports. */
function bareImports(entry: string): Set<string> {
  const seen = new Set<string>();
  const bare = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/(?:^|[\s;])(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|^import\s+['"]([^'"]+)['"]/gm)) {
      const spec = m[1] ?? m[2] ?? m[3];
      if (spec.startsWith('.')) {
        const target = resolve(dirname(file), spec);
        assert.ok(target.endsWith('.js'), `${file} imports ${spec}: relative imports in the build end in .js`);
        assert.ok(existsSync(target), `${file} imports ${spec}, which the build did not emit`);
        visit(target);
      } else bare.add(spec);
    }
  };
  visit(entry);
  return bare;
}

test('dist/ holds the server and the model worker; their imports are builtins or production dependencies', () => {
  assert.ok(existsSync(join(DIST, 'server.js')));
  assert.ok(existsSync(join(DIST, 'engine', 'model-worker.js')), 'the worker entry loaded by URL from engine/worker-model.js');
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
  const production = new Set(Object.keys(pkg.dependencies));
  const builtins = new Set(builtinModules);
  const imports = new Set([...bareImports(join(DIST, 'server.js')), ...bareImports(join(DIST, 'engine', 'model-worker.js'))]);
  assert.ok(imports.has('fastify') && imports.has('onnxruntime-node'), `the scan finds the real imports: ${[...imports].join(', ')}`);
  for (const spec of imports) {
    if (spec.startsWith('node:') || builtins.has(spec)) continue;
    const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0];
    assert.ok(production.has(name), `the built server imports ${spec}, but ${name} is not in dependencies (the image installs those only)`);
  }
});

test("paths the code finds relative to its own file still hold in the build: the kit's directory", async () => {
  const { DEFAULT_KIT_DIR } = (await import(join(DIST, 'jobs', 'fine-tuning', 'trainer.js'))) as { DEFAULT_KIT_DIR: string };
  assert.equal(resolve(DEFAULT_KIT_DIR), resolve(ROOT, 'kit'));
});

test('node dist/server.js serves chat (in its model worker) and embeddings, and stops with exit 0', async () => {
  server = await startServer([], {}, 60_000, ['--enable-source-maps', 'dist/server.js']);
  const post = (path: string, body: unknown) => fetch(`${server!.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const chat = await post('/v1/chat/completions', { model: MODEL, messages: [{ role: 'user', content: 'What is the capital of France?' }], temperature: 0, max_tokens: 12 });
  assert.equal(chat.status, 200);
  assert.match((await chat.json()).choices[0].message.content, /Paris/);
  const embedded = await post('/v1/embeddings', { model: MODEL, input: ['a', 'b'] });
  assert.equal(embedded.status, 200);
  assert.equal((await embedded.json()).data.length, 2);
  assert.equal(await server.stop(), 0);
  server = undefined;
});

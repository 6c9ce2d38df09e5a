/**
 * A client that disconnects aborts its generation: the real engine (real
 * model) stops stepping. The app is built in-process around the real engine so
 * the test can watch the model's steps (EngineOptions.onStep).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildApp } from '../../src/app.ts';
import { parseConfig, type ServerConfig } from '../../src/config.ts';
import { loadServedModel } from '../../src/serving/model-loading.ts';
import { ModelRegistry } from '../../src/serving/registry.ts';
import { MODEL, MODEL_DIR } from './helpers.ts';

const config = (parseConfig(['--intra-op-threads', '1'], {}) as { config: ServerConfig }).config;

test('disconnecting (streamed and not) stops the model stepping', async () => {
  let steps = 0;
  const model = await loadServedModel(config, MODEL, MODEL_DIR, { onStep: () => steps++ });
  const registry = new ModelRegistry([MODEL]);
  registry.add(model);
  registry.markReady();
  const app = await buildApp({ registry, limits: { maxTokens: 4000, maxN: 1 } });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  try {
    for (const stream of [true, false]) {
      steps = 0;
      const ac = new AbortController();
      const res = fetch(`${url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'Go on and on.' }], max_tokens: 4000, ignore_eos: true, stream }),
        signal: ac.signal,
      });
      if (stream) {
        const reader = (await res).body!.getReader();
        await reader.read();
        await reader.read();
      } else {
        while (steps < 20) await new Promise((r) => setTimeout(r, 5));
      }
      ac.abort();
      await res.then(() => {}, () => {});
      // Let the abort reach the engine, then the model must be idle.
      await new Promise((r) => setTimeout(r, 300));
      const atRest = steps;
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(steps, atRest, `stream=${stream}: the model kept stepping after the client left`);
      assert.ok(atRest < 4000, `stream=${stream}: stopped early (${atRest} steps)`);
    }
  } finally {
    // fetch opens a spare connection after an abort; do not wait for it to time out.
    app.server.closeAllConnections();
    await app.close();
    await model.engine.close();
  }
});

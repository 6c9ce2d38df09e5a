/**
 * CORS (--allowed-origins): preflights answered before authentication, the
 * headers a browser needs on every answer to an allowed origin (errors
 * included), nothing for other origins, and the flag's values.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildApp } from '../../src/app.ts';
import { ConfigError, parseConfig, type ServerConfig } from '../../src/config.ts';
import { parseAllowedOrigins, type AllowedOrigins } from '../../src/http/cors.ts';
import { fakeRegistry } from './http-fake-engine.ts';

const MODEL = 'fake-model';
const KEY = 'sk-test';

const app = (allowedOrigins: AllowedOrigins | undefined) => buildApp({ registry: fakeRegistry(), limits: { maxTokens: 20, maxN: 1 }, apiKeys: [KEY], allowedOrigins });

function preflight(origin: string, url = '/v1/chat/completions') {
  return { method: 'OPTIONS' as const, url, headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type,x-stainless-os' } };
}

function chat(origin: string, key = KEY) {
  return {
    method: 'POST' as const,
    url: '/v1/chat/completions',
    headers: { origin, authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    payload: { model: MODEL, messages: [{ role: 'user', content: 'hi' }] },
  };
}

test('the default (localhost): pages from this machine may call, with a key; preflights need none', async () => {
  const a = await app(parseAllowedOrigins((parseConfig([], {}) as { config: ServerConfig }).config.allowedOrigins));
  for (const origin of ['http://localhost:5173', 'http://127.0.0.1:3000', 'https://localhost', 'http://[::1]:8080']) {
    const pre = await a.inject(preflight(origin));
    assert.equal(pre.statusCode, 204, `${origin}: ${pre.body}`);
    assert.equal(pre.headers['access-control-allow-origin'], origin);
    assert.match(String(pre.headers['access-control-allow-methods']), /POST/);
    assert.equal(pre.headers['access-control-allow-headers'], 'authorization,content-type,x-stainless-os');
    assert.equal(pre.headers['access-control-max-age'], '600');
    const r = await a.inject(chat(origin));
    assert.equal(r.statusCode, 200, r.body);
    assert.equal(r.headers['access-control-allow-origin'], origin);
    assert.match(String(r.headers['access-control-expose-headers']), /x-request-id/);
    assert.match(String(r.headers.vary), /Origin/i);
    // A refusal must be readable by the page too, or the SDK sees only a network error.
    const denied = await a.inject(chat(origin, 'wrong'));
    assert.equal(denied.statusCode, 401);
    assert.equal(denied.headers['access-control-allow-origin'], origin);
    assert.equal(denied.json().error.code, 'invalid_api_key');
  }
  for (const origin of ['https://evil.example', 'http://localhost.evil.example', 'http://127.0.0.1.nip.io:3000', 'null']) {
    const pre = await a.inject(preflight(origin));
    assert.equal(pre.headers['access-control-allow-origin'], undefined, origin);
    const r = await a.inject(chat(origin));
    assert.equal(r.statusCode, 200, 'not a browser: the request is served, but a browser would not let the page read it');
    assert.equal(r.headers['access-control-allow-origin'], undefined, origin);
  }
});

test('exact origins, * and none', async () => {
  const exact = await app(parseAllowedOrigins(['https://chat.example.com', 'http://ui.internal:8443']));
  assert.equal((await exact.inject(preflight('https://chat.example.com'))).headers['access-control-allow-origin'], 'https://chat.example.com');
  assert.equal((await exact.inject(chat('http://ui.internal:8443'))).headers['access-control-allow-origin'], 'http://ui.internal:8443');
  assert.equal((await exact.inject(chat('http://localhost:3000'))).headers['access-control-allow-origin'], undefined);
  assert.equal((await exact.inject(chat('https://chat.example.com.evil'))).headers['access-control-allow-origin'], undefined);

  const any = await app(parseAllowedOrigins(['*']));
  assert.equal((await any.inject(preflight('https://anywhere.example'))).headers['access-control-allow-origin'], '*');
  assert.equal((await any.inject({ method: 'GET', url: '/v1/models', headers: { origin: 'https://x.example', authorization: `Bearer ${KEY}` } })).headers['access-control-allow-origin'], '*');

  for (const off of [await app(parseAllowedOrigins(['none'])), await app(undefined)]) {
    const pre = await off.inject(preflight('http://localhost:5173'));
    // No CORS: OPTIONS is no route (401 here, since the key is checked before routing), and nothing allows the page.
    assert.equal(pre.statusCode, 401);
    assert.equal(pre.headers['access-control-allow-origin'], undefined);
    assert.equal((await off.inject(chat('http://localhost:5173'))).headers['access-control-allow-origin'], undefined);
  }
});

test('--allowed-origins values: localhost, exact origins, *, none; anything else stops start-up', () => {
  const parse = (argv: string[], env = {}) => (parseConfig(argv, env) as { config: ServerConfig }).config.allowedOrigins;
  assert.deepEqual(parse([]), ['localhost']);
  assert.deepEqual(parse([], { MMREC_ALLOWED_ORIGINS: 'https://a.example,localhost' }), ['https://a.example', 'localhost']);
  assert.equal(parseAllowedOrigins(['*', 'https://a.example']), '*');
  assert.equal(parseAllowedOrigins(['none']), false);
  for (const bad of [['none', 'localhost'], ['https://a.example/'], ['https://a.example/path'], ['a.example'], ['localhost:3000'], ['file:///x']]) {
    assert.throws(() => parseAllowedOrigins(bad), ConfigError, JSON.stringify(bad));
  }
});

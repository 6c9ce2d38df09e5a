import { test } from 'node:test';
import assert from 'node:assert/strict';
import { paramName, toApiError, validationError } from '../../src/http/errors.ts';
import { ApiError } from '../../src/protocol/errors.ts';

test('instance paths become OpenAI param names', () => {
  assert.equal(paramName('/messages/0/content/1/type'), 'messages[0].content[1].type');
  assert.equal(paramName(''), null);
  assert.equal(paramName('', 'params'), 'params');
  // With the data at hand, a numeric key of an object stays a key.
  assert.equal(paramName('/logit_bias/15', 'body', { logit_bias: { '15': 200 } }), 'logit_bias.15');
  assert.equal(paramName('/stop/1', 'body', { stop: ['a', 5] }), 'stop[1]');
});

test('the most specific ajv error wins, and says what was wrong', () => {
  // temperature: 3 against anyOf [number ≤ 2, null]
  const range = validationError([
    { keyword: 'maximum', instancePath: '/temperature', message: 'must be <= 2', params: { limit: 2 } },
    { keyword: 'type', instancePath: '/temperature', message: 'must be null', params: { type: 'null' } },
    { keyword: 'anyOf', instancePath: '/temperature', message: 'must match a schema in anyOf', params: {} },
  ]);
  assert.equal(range.param, 'temperature');
  assert.equal(range.message, "Invalid 'temperature': must be <= 2.");
  const type = validationError([
    { keyword: 'type', instancePath: '/stop', params: { type: 'string' } },
    { keyword: 'type', instancePath: '/stop', params: { type: 'array' } },
    { keyword: 'anyOf', instancePath: '/stop', params: {} },
  ]);
  assert.equal(type.message, "Invalid type for 'stop': expected string or array.");
  assert.equal(type.code, 'invalid_type');
  const missing = validationError([{ keyword: 'required', instancePath: '/messages/0', params: { missingProperty: 'role' } }]);
  assert.equal(missing.param, 'messages[0].role');
  assert.equal(missing.code, 'missing_required_parameter');
});

test('anything else becomes a 500 server_error without internals', () => {
  const e = toApiError(new Error('secret internal detail'));
  assert.equal(e.status, 500);
  assert.equal(e.type, 'server_error');
  assert.ok(!e.message.includes('secret'));
  const api = ApiError.modelNotFound('x');
  assert.equal(toApiError(api), api);
});

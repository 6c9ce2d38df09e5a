/**
 * Checks a part of a request against its TypeBox schema after the route has
 * accepted it loosely (a testing criterion of some type, a data source), with
 * the same ajv settings as Fastify's and the same OpenAI-shaped 400 (the
 * param names the field under the request, e.g. testing_criteria[1].operation).
 */
import Ajv, { type ValidateFunction } from 'ajv';
import type { TSchema } from 'typebox';
import { validationError } from '../http/errors.ts';

const ajv = new Ajv.default({ strict: false, allErrors: true, coerceTypes: false, useDefaults: false, removeAdditional: false });
const compiled = new WeakMap<TSchema, ValidateFunction>();

/** Throws the ApiError Fastify would have sent, its path under `at` (a JSON pointer such as /testing_criteria/0). */
export function checkShape<T>(schema: TSchema, value: unknown, at: string, body: unknown): asserts value is T {
  let validate = compiled.get(schema);
  if (!validate) {
    validate = ajv.compile(schema);
    compiled.set(schema, validate);
  }
  if (validate(value)) return;
  throw validationError((validate.errors ?? []).map((e) => ({ ...e, instancePath: at + e.instancePath })), 'body', body);
}

/**
 * A model directory (MM-REC.md §3): model.onnx beside config.json. Reads and
 * validates config.json; every error names the file and the field.
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

export interface ModelConfig {
  modelId: string;
  vocabSize: number;
  contextLength: number;
  /** Shaped like the chat tokenizer's spec, so it can be handed to it as is. */
  tokenizer: { encoding: string; special_tokens: Record<string, number> };
  eosTokenIds: number[];
  defaultSampling: { temperature: number; topP: number };
  /** The architecture description (free form; the graph is the authority). */
  model: Record<string, unknown>;
}

export interface ModelDir {
  dir: string;
  onnxPath: string;
  configPath: string;
  config: ModelConfig;
  /** Unix seconds: when model.onnx was written (OpenAI's `created`). */
  createdAt: number;
}

export class ModelDirError extends Error {}

type Json = Record<string, unknown>;

class FieldReader {
  constructor(readonly file: string) {}

  fail(field: string, expected: string, got: unknown): never {
    throw new ModelDirError(`${this.file}: field "${field}" must be ${expected} (got ${JSON.stringify(got) ?? 'nothing'})`);
  }

  object(obj: Json, field: string, path = field): Json {
    const v = obj[field];
    if (typeof v !== 'object' || v === null || Array.isArray(v)) this.fail(path, 'an object', v);
    return v as Json;
  }

  string(obj: Json, field: string, path = field): string {
    const v = obj[field];
    if (typeof v !== 'string' || v === '') this.fail(path, 'a non-empty string', v);
    return v;
  }

  integer(obj: Json, field: string, min: number, path = field): number {
    const v = obj[field];
    if (!Number.isSafeInteger(v) || (v as number) < min) this.fail(path, `an integer ≥ ${min}`, v);
    return v as number;
  }

  number(obj: Json, field: string, min: number, max: number, path = field): number {
    const v = obj[field];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) this.fail(path, `a number in [${min}, ${max}]`, v);
    return v;
  }
}

export function parseModelConfig(raw: unknown, file: string): ModelConfig {
  const r = new FieldReader(file);
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ModelDirError(`${file}: must hold a JSON object`);
  const json = raw as Json;
  const vocabSize = r.integer(json, 'vocab_size', 1);

  const tokenizer = r.object(json, 'tokenizer');
  const encoding = r.string(tokenizer, 'encoding', 'tokenizer.encoding');
  const specials = r.object(tokenizer, 'special_tokens', 'tokenizer.special_tokens');
  const special_tokens: Record<string, number> = {};
  for (const name of Object.keys(specials)) {
    special_tokens[name] = r.integer(specials, name, 0, `tokenizer.special_tokens.${name}`);
    if (special_tokens[name] >= vocabSize) r.fail(`tokenizer.special_tokens.${name}`, `an id below vocab_size ${vocabSize}`, special_tokens[name]);
  }

  const eos = json.eos_token_ids;
  if (!Array.isArray(eos) || eos.length === 0 || !eos.every((id) => Number.isSafeInteger(id) && id >= 0 && id < vocabSize)) {
    r.fail('eos_token_ids', `a non-empty array of token ids below vocab_size ${vocabSize}`, eos);
  }

  const sampling = r.object(json, 'default_sampling');
  return {
    modelId: r.string(json, 'model_id'),
    vocabSize,
    contextLength: r.integer(json, 'context_length', 1),
    tokenizer: { encoding, special_tokens },
    eosTokenIds: eos as number[],
    defaultSampling: {
      temperature: r.number(sampling, 'temperature', 0, 2, 'default_sampling.temperature'),
      topP: r.number(sampling, 'top_p', Number.MIN_VALUE, 1, 'default_sampling.top_p'),
    },
    model: r.object(json, 'model'),
  };
}

export function readModelDir(dir: string): ModelDir {
  const configPath = join(dir, 'config.json');
  const onnxPath = join(dir, 'model.onnx');
  let text: string;
  try {
    text = readFileSync(configPath, 'utf8');
  } catch (e) {
    throw new ModelDirError(`${configPath}: cannot be read (${(e as Error).message})`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new ModelDirError(`${configPath}: is not valid JSON (${(e as Error).message})`);
  }
  const config = parseModelConfig(raw, configPath);
  let createdAt: number;
  try {
    createdAt = Math.floor(statSync(onnxPath).mtimeMs / 1000);
  } catch {
    throw new ModelDirError(`${onnxPath}: missing (a model directory holds model.onnx beside config.json)`);
  }
  return { dir, onnxPath, configPath, config, createdAt };
}

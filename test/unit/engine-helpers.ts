import { existsSync } from 'node:fs';
import assert from 'node:assert/strict';
import type { GenerateRequest, GeneratedToken, Generation, SamplingParams } from '../../src/engine/types.ts';
import { GREEDY_SAMPLING } from '../../src/engine/sampler/presets.ts';

export const MODEL_DIR = process.env.MMREC_TEST_MODEL ?? 'models/mm-rec-tiny';

/** The engine tests need a real model directory; a missing one is a failure that says how to make it. */
export function requireModelDir(): string {
  if (!existsSync(`${MODEL_DIR}/model.onnx`) || !existsSync(`${MODEL_DIR}/config.json`)) {
    assert.fail(
      `${MODEL_DIR}/model.onnx or config.json is missing. Create it with:\n` +
        `  cd kit && /usr/bin/python3 -m mmrec.export --random --preset tiny --out ../${MODEL_DIR}\n` +
        `(or point MMREC_TEST_MODEL at another model directory)`,
    );
  }
  return MODEL_DIR;
}

export const GREEDY: SamplingParams = GREEDY_SAMPLING;

export function request(promptIds: number[], overrides: Partial<GenerateRequest> = {}): GenerateRequest {
  return { promptIds, maxTokens: 8, stopTokenIds: [], sampling: GREEDY, ...overrides };
}

export async function collect(generation: Generation): Promise<GeneratedToken[]> {
  const tokens: GeneratedToken[] = [];
  for await (const t of generation.tokens) tokens.push(t);
  return tokens;
}

/** A prompt of `n` ordinary token ids, different for each `salt`. */
export function prompt(n: number, salt = 0): number[] {
  return Array.from({ length: n }, (_, i) => (i * 7919 + salt * 104729 + 13) % 100000);
}

/**
 * The recurrent state a stored response keeps, and when it may be continued.
 *
 * A response's state is the state after exactly the tokens a rendering of its
 * whole conversation (its context, its input, its output as the items say)
 * gives, so the next turn, rendered as a continuation, sees the same tokens
 * and makes the same greedy choices as the whole conversation sent to chat
 * completions. The model's own tokens need not be those: ".\n" may be one
 * token where the rendering has "." and "\n", and a reply cut at
 * max_output_tokens has no "\n<|endoftext|>" yet. Then the rendering's reply
 * is prefilled from the state at the end of the prompt instead.
 *
 * A state is only continued by the exact model it came from (its id and the
 * digest of its graph file, or of a state-tuned model's base graph and
 * initial state) and under the same context (instructions and tools render
 * before a conversation's first message): anything else falls back to
 * prefilling the items.
 */
import { createHash, randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderToolsBlock, type ChatMessage, type ToolSpec } from '../chat/template.ts';
import { decodeState, encodeState, stateLayout } from '../engine/state-blob.ts';
import type { RecurrentState } from '../engine/state.ts';
import { GREEDY_SAMPLING } from '../engine/sampler/presets.ts';
import type { InitialState } from '../engine/types.ts';
import type { StoredState } from '../store/responses.ts';
import { sha256OfFile } from './model-loading.ts';
import type { ServedModel } from './registry.ts';

const keys = new WeakMap<ServedModel, Promise<string>>();

/** The identity a state is tied to; the graph's digest is computed once per served model. */
export function modelStateKey(model: ServedModel): Promise<string> {
  let key = keys.get(model);
  if (!key) {
    key = computeModelKey(model);
    keys.set(model, key);
  }
  return key;
}

async function computeModelKey(model: ServedModel): Promise<string> {
  if (model.dir) {
    const onnx = join(model.dir, 'model.onnx');
    if (existsSync(onnx)) return `${model.id}|onnx:${await sha256OfFile(onnx)}`;
    const cfgPath = join(model.dir, 'config.json');
    if (existsSync(cfgPath)) {
      const cfg = JSON.parse(readFileSync(cfgPath, 'utf8')) as { base_model?: { sha256?: string }; initial_state?: { file?: string } };
      if (cfg.base_model?.sha256 && cfg.initial_state?.file) {
        return `${model.id}|base:${cfg.base_model.sha256}|initial:${await sha256OfFile(join(model.dir, cfg.initial_state.file))}`;
      }
    }
  }
  return `${model.id}|${model.fingerprint}`;
}

/** What renders before a conversation's first message: a state is continued only under the same. */
export function contextKey(instructions: string | null, shownTools: readonly ToolSpec[] | undefined): string {
  const text = JSON.stringify([instructions, shownTools && shownTools.length > 0 ? renderToolsBlock([...shownTools]) : null]);
  return createHash('sha256').update(text).digest('hex').slice(0, 32);
}

export type Restored = { ok: true; initialState: InitialState; tokens: number } | { ok: false; reason: string };

/** A stored state as an initial state for `model` under `context`, or why it cannot be one. */
export function restoreState(model: ServedModel, modelKey: string, context: string, stored: StoredState, owner: string): Restored {
  if (stored.modelKey !== modelKey) return { ok: false, reason: `it comes from another model or another version of its graph (${stored.modelKey.slice(0, 80)}, now ${modelKey.slice(0, 80)})` };
  if (stored.contextKey !== context) return { ok: false, reason: 'the instructions or tools differ from the ones it was made under' };
  const specs = model.engine.stateSpecs;
  if (!specs) return { ok: false, reason: 'this engine takes no initial state' };
  const decoded = decodeState(specs, stored.layout, stored.state);
  if (!decoded.ok) return { ok: false, reason: decoded.reason };
  // A stored state never changes, so its owner names it (prompts continuing it may share a prefill).
  return { ok: true, initialState: { key: `stored:${owner}`, state: decoded.state, transient: true }, tokens: stored.tokens };
}

/** The states a generation reports (ChoiceRequest's hooks fill it). */
export class StateCapture {
  promptState?: RecurrentState;
  finalState?: RecurrentState;
  output?: readonly number[];

  readonly onPromptState = (s: RecurrentState) => (this.promptState = s);
  readonly onFinalState = (s: RecurrentState, output: readonly number[]) => {
    this.finalState = s;
    this.output = output;
  };
}

export interface CapturedState {
  state: RecurrentState;
  /** 'generated': the model's tokens were the rendering's; 'reprefilled': the rendering's reply was prefilled from the prompt's state. */
  how: 'generated' | 'reprefilled';
  replyTokens: number;
}

function sameTokens(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((t, i) => t === b[i]);
}

/**
 * The state after the prompt and the reply as the rendering writes it, from
 * what the generation reported; undefined when it reported nothing (aborted).
 */
export async function replyState(model: ServedModel, capture: StateCapture, reply: ChatMessage): Promise<CapturedState | undefined> {
  const canonical = model.template.replyTokens(reply);
  if (capture.finalState && capture.output && sameTokens(capture.output, canonical)) {
    return { state: capture.finalState, how: 'generated', replyTokens: canonical.length };
  }
  if (!capture.promptState) return undefined;
  let state: RecurrentState | undefined;
  const g = model.engine.generate({
    promptIds: canonical,
    maxTokens: 1,
    stopTokenIds: [],
    sampling: GREEDY_SAMPLING,
    initialState: { key: `reply:${randomUUID()}`, state: capture.promptState, transient: true },
    onPromptState: (s) => (state = s),
  });
  for await (const _ of g.tokens);
  await g.result;
  return state && { state, how: 'reprefilled', replyTokens: canonical.length };
}

/** A state as the store keeps it. */
export function toStoredState(model: ServedModel, modelKey: string, context: string, state: RecurrentState, tokens: number): StoredState | undefined {
  const specs = model.engine.stateSpecs;
  if (!specs) return undefined;
  return { modelKey, contextKey: context, layout: stateLayout(specs), tokens, state: encodeState(specs, state) };
}

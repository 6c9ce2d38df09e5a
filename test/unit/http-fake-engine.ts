/**
 * A scripted Engine for the HTTP layer's unit tests: it "generates" the token
 * ids of a fixed reply, one step at a time, honouring maxTokens, stop tokens
 * and the abort signal like the real engine's contract (src/engine/types.ts)
 * says, and counts its steps so tests can see it stop. With a constraint in
 * the request, every scripted token must be one it allows: a script the
 * request's grammar rejects fails the generation.
 */
import type { Engine, GenerateRequest, Generation, GeneratedToken, GenerationResult, ModelInfo } from '../../src/engine/types.ts';
import { ChatTokenizer } from '../../src/chat/tokenizer.ts';
import { DEFAULT_SPECIAL_TOKEN_IDS, DEFAULT_VOCAB_SIZE } from '../../src/chat/special-tokens.ts';
import { createServedModel, ModelRegistry, type ServedModel } from '../../src/serving/registry.ts';

export const TOKENIZER_SPEC = { encoding: 'cl100k_base', special_tokens: DEFAULT_SPECIAL_TOKEN_IDS };
export const tokenizer = new ChatTokenizer(TOKENIZER_SPEC);
export const EOS = DEFAULT_SPECIAL_TOKEN_IDS['<|endoftext|>'];

export interface FakeOptions {
  id?: string;
  contextLength?: number;
  /** Token ids to produce for a request (EOS included where the reply should end). */
  script?: (req: GenerateRequest) => number[];
  /** Milliseconds per step. */
  delayMs?: number;
  /** Throw from the engine after this many steps. */
  failAfter?: number;
}

/** The chat format's reply: content "\n" <|endoftext|>. */
export function reply(text: string): number[] {
  return [...tokenizer.encodeText(text), ...tokenizer.encodeText('\n'), EOS];
}

export class FakeEngine implements Engine {
  readonly info: ModelInfo;
  steps = 0;
  readonly requests: GenerateRequest[] = [];
  readonly results: Promise<GenerationResult>[] = [];
  private closed = false;

  constructor(private readonly opts: FakeOptions = {}) {
    this.info = {
      id: opts.id ?? 'fake-model',
      contextLength: opts.contextLength ?? 256,
      vocabSize: DEFAULT_VOCAB_SIZE,
      eosTokenIds: [EOS],
      executionProvider: 'cpu',
      createdAt: 1700000000,
    };
  }

  generate(req: GenerateRequest): Generation {
    if (this.closed) throw new Error('engine closed');
    this.requests.push(req);
    const script = (this.opts.script ?? (() => reply('Hello world!')))(req);
    const started = performance.now();
    let resolveResult!: (r: GenerationResult) => void;
    let rejectResult!: (e: unknown) => void;
    const result = new Promise<GenerationResult>((res, rej) => {
      resolveResult = res;
      rejectResult = rej;
    });
    this.results.push(result);
    const self = this;
    let produced = 0;
    let ttft: number | undefined;
    const matcher = req.constraint?.start();
    async function* tokens(): AsyncGenerator<GeneratedToken> {
      let finish: GenerationResult['finishReason'] = 'length';
      try {
        for (let k = 0; ; k++) {
          if (req.signal?.aborted) {
            finish = 'abort';
            break;
          }
          if (produced >= req.maxTokens) break;
          if (self.opts.delayMs) await new Promise((r) => setTimeout(r, self.opts.delayMs));
          if (req.signal?.aborted) {
            finish = 'abort';
            break;
          }
          self.steps++;
          if (self.opts.failAfter !== undefined && self.steps > self.opts.failAfter) throw new Error('fake engine failure');
          // Past the end of the script, keep producing a filler token (as a model ignoring EOS would).
          const id = k < script.length ? script[k] : tokenizer.encodeText(' la')[0];
          if (matcher && !matcher.allowed().has(id)) throw new Error(`the script's token ${id} (${JSON.stringify(tokenizer.decode([id]))}) is not allowed by the constraint`);
          matcher?.accept(id);
          if (req.stopTokenIds.includes(id)) {
            // Counted, as the real engine counts the stop token it generated (but does not yield it).
            produced++;
            finish = 'stop';
            break;
          }
          produced++;
          ttft ??= performance.now() - started;
          const tok: GeneratedToken = { id };
          if (req.sampling.logprobs) {
            tok.logprob = -0.25;
            tok.topLogprobs = Array.from({ length: req.sampling.topLogprobs }, (_, j) => ({ id: j === 0 ? id : 100 + j, logprob: -0.25 - j }));
          }
          yield tok;
        }
        resolveResult({ finishReason: finish, promptTokens: req.promptIds.length, completionTokens: produced, timeToFirstTokenMs: ttft });
      } catch (e) {
        rejectResult(e);
        throw e;
      } finally {
        // The consumer stopped early: the generation ends as aborted.
        resolveResult({ finishReason: 'abort', promptTokens: req.promptIds.length, completionTokens: produced, timeToFirstTokenMs: ttft });
      }
    }
    return { tokens: tokens(), result };
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

export function fakeModel(engine: FakeEngine = new FakeEngine()): ServedModel {
  return createServedModel(engine, TOKENIZER_SPEC, {});
}

export function fakeRegistry(...engines: FakeEngine[]): ModelRegistry {
  const list = engines.length > 0 ? engines : [new FakeEngine()];
  const registry = new ModelRegistry(list.map((e) => e.info.id));
  for (const e of list) registry.add(fakeModel(e));
  registry.markReady();
  return registry;
}

/** POST /tokenize and POST /detokenize (vLLM's extension endpoints). */
import { toChatMessages, toToolSpecs } from '../chat/openai-messages.ts';
import { ApiError } from '../protocol/errors.ts';
import type { DetokenizeRequest, DetokenizeResponse, TokenizeRequest, TokenizeResponse } from '../protocol/tokenize.ts';
import type { Limits } from './params.ts';
import type { ModelRegistry } from './registry.ts';
import { asInvalidRequest, asInvalidRequestAsync } from './util.ts';

export class TokenizeServing {
  constructor(
    private readonly registry: ModelRegistry,
    private readonly limits?: Limits,
  ) {}

  async tokenize(req: TokenizeRequest): Promise<TokenizeResponse> {
    const model = await this.registry.resolve(req.model);
    if ((req.prompt === undefined) === (req.messages === undefined)) {
      throw ApiError.invalid('give exactly one of prompt and messages', req.prompt === undefined ? 'prompt' : 'messages');
    }
    let tokens: number[];
    if (req.prompt !== undefined) tokens = await model.tokenizer.encodeTextAsync(req.prompt);
    else {
      const messages = asInvalidRequest(() => toChatMessages(req.messages, this.limits?.maxJsonDepth));
      const tools = asInvalidRequest(() => toToolSpecs(req.tools));
      tokens = (await asInvalidRequestAsync(() => model.template.renderAsync(messages, { tools, addGenerationPrompt: req.add_generation_prompt ?? true }))).ids;
    }
    return { tokens, count: tokens.length, max_model_len: model.info.contextLength };
  }

  async detokenize(req: DetokenizeRequest): Promise<DetokenizeResponse> {
    const model = await this.registry.resolve(req.model);
    req.tokens.forEach((id, k) => {
      if (!model.tokenizer.isKnown(id)) throw ApiError.invalid(`tokens[${k}] = ${id} is not a token id of this model`, `tokens[${k}]`, 'invalid_value');
    });
    return { prompt: model.tokenizer.decode(req.tokens) };
  }
}

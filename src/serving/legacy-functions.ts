/**
 * OpenAI's deprecated function calling, mapped onto tools as OpenAI still
 * maps it: `functions` are function tools, `function_call` is tool_choice
 * (default "auto"), one call at most (no parallel calls), and the reply
 * speaks the old shape: `message.function_call` instead of `tool_calls`,
 * `finish_reason: "function_call"`, and streamed `delta.function_call`
 * pieces. Histories in the old shape (`function_call` on assistant messages,
 * `function` messages) are read by chat/openai-messages.ts.
 */
import type { ToolCallEvent } from '../chat/tool-call-parser.ts';
import type { ChatCompletionChunk, ChatCompletionRequest, ChatCompletionResponse, ToolCall } from '../protocol/chat.ts';
import type { FinishReason } from '../protocol/common.ts';
import { ApiError } from '../protocol/errors.ts';

type Message = ChatCompletionResponse['choices'][number]['message'];
type ChunkDelta = ChatCompletionChunk['choices'][number]['delta'];

/** The request with its functions as tools; `legacy` says whether the reply must speak the old shape. */
export function toolsFromFunctions(req: ChatCompletionRequest): { request: ChatCompletionRequest; legacy: boolean } {
  if (req.functions === undefined || req.functions === null) {
    if (req.function_call !== undefined && req.function_call !== null) throw ApiError.invalid('function_call requires functions', 'function_call');
    return { request: req, legacy: false };
  }
  if (req.tools !== undefined && req.tools !== null) throw ApiError.invalid('Give tools or the deprecated functions, not both.', 'functions');
  if (req.tool_choice !== undefined && req.tool_choice !== null) {
    throw ApiError.invalid('tool_choice goes with tools; with the deprecated functions, use function_call.', 'tool_choice');
  }
  const call = req.function_call ?? 'auto';
  const { functions: _functions, function_call: _call, ...rest } = req;
  return {
    request: {
      ...rest,
      tools: req.functions.map((f) => ({ type: 'function' as const, function: f })),
      tool_choice: typeof call === 'string' ? call : { type: 'function', function: { name: call.name } },
      parallel_tool_calls: false,
    },
    legacy: true,
  };
}

/** An error about `tools[i].function…` or `tool_choice` names what the request sent: `functions[i]…`, `function_call`. */
export function asFunctionsError(e: unknown): unknown {
  if (!(e instanceof ApiError) || e.param === null || !/^(tools\[\d+\]|tool_choice)/.test(e.param)) return e;
  const rename = (s: string) => s.replace(/\btools\[(\d+)\](\.function)?/g, 'functions[$1]').replace(/\btool_choice(\.function)?/g, 'function_call');
  return new ApiError(e.status, rename(e.message), e.type, rename(e.param), e.code, e.headers);
}

export function legacyFinishReason(reason: FinishReason): FinishReason {
  return reason === 'tool_calls' ? 'function_call' : reason;
}

/** The reply message in the old shape: its one call as function_call. */
export function legacyMessage(text: string, calls: readonly ToolCall[]): Message {
  const call = calls[0];
  if (!call) return { role: 'assistant', content: text, refusal: null };
  return { role: 'assistant', content: text === '' ? null : text, refusal: null, function_call: { name: call.function.name, arguments: call.function.arguments } };
}

/** Streamed call events in the old shape: the name first (with arguments ""), then pieces of the arguments. */
export function legacyDelta(events: readonly ToolCallEvent[]): ChunkDelta {
  let name: string | undefined;
  let args = '';
  for (const e of events) {
    if ('name' in e) name = e.name;
    else args += e.arguments;
  }
  return { function_call: name !== undefined ? { name, arguments: args } : { arguments: args } };
}

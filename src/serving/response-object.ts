/**
 * The Response object as OpenAI shapes it, from what a response was asked
 * (its stored request) and what it became (status, output, usage). One
 * function for live, stored and background responses alike.
 */
import type { ConversationItem, ResponseToolDef } from '../chat/response-items.ts';
import type { ResponseObject, ResponseUsage } from '../protocol/responses.ts';
import type { ResponseError, ResponseStatus } from '../store/responses.ts';

/** A tool as a response echoes it (and as it is kept): a function tool or a namespace of them. */
export type ToolEcho = ResponseToolDef;

/** The text format as a response echoes it. */
export type TextFormat =
  | { type: 'text' }
  | { type: 'json_object' }
  | { type: 'json_schema'; name: string; schema: Record<string, unknown>; strict: boolean; description?: string };

/** What a response was asked, normalised: kept with it, echoed by it, and all a background run needs besides its input items. */
export interface StoredRequest {
  instructions: string | null;
  tools: ToolEcho[];
  tool_choice: ResponseObject['tool_choice'];
  parallel_tool_calls: boolean;
  text: { format: TextFormat };
  /** The sampling the response ran with (the request's, or the model's defaults). */
  temperature: number;
  top_p: number;
  max_output_tokens: number | null;
  truncation: 'auto' | 'disabled';
  metadata: Record<string, string>;
  store: boolean;
}

export interface ResponseState {
  id: string;
  createdAt: number;
  completedAt: number | null;
  model: string;
  status: ResponseStatus;
  background: boolean;
  previousResponseId: string | null;
  conversationId: string | null;
  request: StoredRequest;
  usage: ResponseUsage | null;
  error: ResponseError | null;
  incompleteDetails: { reason: string } | null;
}

export function responseObject(r: ResponseState, output: readonly ConversationItem[]): ResponseObject {
  return {
    id: r.id,
    object: 'response',
    created_at: r.createdAt,
    status: r.status,
    completed_at: r.completedAt,
    background: r.background,
    error: r.error,
    incomplete_details: r.incompleteDetails,
    instructions: r.request.instructions,
    max_output_tokens: r.request.max_output_tokens,
    model: r.model,
    output: output as unknown as ResponseObject['output'],
    parallel_tool_calls: r.request.parallel_tool_calls,
    previous_response_id: r.previousResponseId,
    conversation: r.conversationId ? { id: r.conversationId } : null,
    reasoning: { effort: null, summary: null },
    store: r.request.store,
    temperature: r.request.temperature,
    text: r.request.text,
    tool_choice: r.request.tool_choice,
    tools: r.request.tools,
    top_p: r.request.top_p,
    truncation: r.request.truncation,
    // OpenAI's schema has no null usage: a response still running has none.
    ...(r.usage ? { usage: r.usage } : {}),
    metadata: r.request.metadata,
  };
}

export function responseUsage(inputTokens: number, cachedTokens: number, outputTokens: number): ResponseUsage {
  return {
    input_tokens: inputTokens,
    input_tokens_details: { cached_tokens: cachedTokens, cache_write_tokens: 0 },
    output_tokens: outputTokens,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: inputTokens + outputTokens,
  };
}

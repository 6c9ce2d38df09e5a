/**
 * OpenAI message objects (chat requests and fine-tuning JSONL alike) → the
 * template's ChatMessage. Shared by the server and training-data preparation so
 * both read messages the same way. Errors name the offending field.
 */
import { DEFAULT_MAX_JSON_DEPTH, jsonDepthExceeds } from './json-depth.ts';
import { TemplateError, type ChatMessage, type ToolSpec } from './template.ts';

const ROLES = new Set(['system', 'developer', 'user', 'assistant', 'tool', 'function']);

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** String content, or an array of `{type:"text", text}` parts joined by "\n". Other part types are refused. */
export function contentText(content: unknown, param: string): string {
  if (content === null || content === undefined) return '';
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) throw new TemplateError(`${param} must be a string or an array of content parts`, param);
  return content
    .map((part, k) => {
      if (!isObject(part)) throw new TemplateError(`${param}[${k}] must be a content part object`, `${param}[${k}]`);
      if (part.type === 'text' && typeof part.text === 'string') return part.text;
      if (part.type === 'refusal' && typeof part.refusal === 'string') return part.refusal;
      throw new TemplateError(
        `${param}[${k}] has type "${String(part.type)}": this model accepts text only (no image, audio or file input)`,
        `${param}[${k}].type`,
      );
    })
    .join('\n');
}

/** `maxJsonDepth`: the deepest tool-call arguments accepted (they are parsed and re-serialised when rendered). */
export function toChatMessages(raw: unknown, maxJsonDepth = DEFAULT_MAX_JSON_DEPTH): ChatMessage[] {
  if (!Array.isArray(raw) || raw.length === 0) throw new TemplateError('messages must be a non-empty array', 'messages');
  const messages = raw.map((m, i) => {
    const p = `messages[${i}]`;
    if (!isObject(m)) throw new TemplateError(`${p} must be an object`, p);
    if (typeof m.role !== 'string' || !ROLES.has(m.role)) {
      throw new TemplateError(`${p}.role must be one of system, developer, user, assistant, tool (got ${JSON.stringify(m.role)})`, `${p}.role`);
    }
    // OpenAI's deprecated function calling: a `function` message is a tool result, an assistant's `function_call` its one call.
    const role = (m.role === 'function' ? 'tool' : m.role) as ChatMessage['role'];
    const content = contentText(m.content, `${p}.content`);
    const msg: ChatMessage = { role, content };
    const legacyCall = role === 'assistant' && m.function_call !== undefined && m.function_call !== null;
    if (legacyCall && m.tool_calls !== undefined && m.tool_calls !== null) {
      throw new TemplateError(`${p} has both tool_calls and the deprecated function_call: give one`, `${p}.function_call`);
    }
    if (role === 'assistant' && ((m.tool_calls !== undefined && m.tool_calls !== null) || legacyCall)) {
      if (!legacyCall && !Array.isArray(m.tool_calls)) throw new TemplateError(`${p}.tool_calls must be an array`, `${p}.tool_calls`);
      const calls = legacyCall ? [{ type: 'function', function: m.function_call }] : (m.tool_calls as unknown[]);
      msg.tool_calls = calls.map((c, j) => {
        const cp = legacyCall ? `${p}.function_call` : `${p}.tool_calls[${j}]`;
        if (isObject(c) && c.type !== undefined && c.type !== 'function') {
          throw new TemplateError(`${cp}.type ${JSON.stringify(c.type)} is not supported: only "function" tool calls are`, `${cp}.type`);
        }
        if (!isObject(c) || !isObject(c.function) || typeof c.function.name !== 'string') {
          throw new TemplateError(legacyCall ? `${cp} must be {name, arguments}` : `${cp} must be {type:"function", function:{name, arguments}}`, cp);
        }
        const args = c.function.arguments;
        const ap = legacyCall ? `${cp}.arguments` : `${cp}.function.arguments`;
        if (args !== undefined && typeof args !== 'string') throw new TemplateError(`${ap} must be a JSON string`, ap);
        if (args !== undefined && jsonDepthExceeds(args, maxJsonDepth)) {
          throw new TemplateError(`${ap} is JSON nested more than ${maxJsonDepth} levels deep (--max-json-depth)`, ap);
        }
        return { name: c.function.name, arguments: args ?? '{}', id: typeof c.id === 'string' ? c.id : undefined };
      });
    } else if (role !== 'tool' && m.content === undefined) {
      throw new TemplateError(`${p}.content is required`, `${p}.content`);
    }
    if (role === 'tool' && typeof m.tool_call_id === 'string') msg.tool_call_id = m.tool_call_id;
    return msg;
  });
  checkToolResults(messages);
  return messages;
}

/**
 * OpenAI's rule: a tool message answers a call of the assistant message just
 * before it (other tool messages may come between), and names one of that
 * message's call ids when the calls carry ids.
 */
function checkToolResults(messages: ChatMessage[]): void {
  let calls: ChatMessage['tool_calls'];
  messages.forEach((m, i) => {
    if (m.role === 'assistant') calls = m.tool_calls && m.tool_calls.length > 0 ? m.tool_calls : undefined;
    else if (m.role !== 'tool') calls = undefined;
    if (m.role !== 'tool') return;
    if (!calls) {
      throw new TemplateError(`messages[${i}]: messages with role 'tool' must be a response to a preceding message with 'tool_calls'`, `messages[${i}].role`);
    }
    const ids = calls.map((c) => c.id).filter((id) => id !== undefined);
    if (m.tool_call_id !== undefined && ids.length > 0 && !ids.includes(m.tool_call_id)) {
      throw new TemplateError(`messages[${i}].tool_call_id ${JSON.stringify(m.tool_call_id)} does not match any tool call of the preceding assistant message`, `messages[${i}].tool_call_id`);
    }
  });
}

/** Tools as the template renders them; `strict` (function.strict) says how their arguments are enforced (see chat/reply-grammar.ts). */
export function toToolSpecs(raw: unknown, param = 'tools'): Array<ToolSpec & { strict?: boolean }> | undefined {
  if (raw === undefined || raw === null) return undefined;
  if (!Array.isArray(raw)) throw new TemplateError(`${param} must be an array`, param);
  return raw.map((t, i) => {
    const tp = `${param}[${i}]`;
    if (isObject(t) && t.type === 'custom') {
      throw new TemplateError(
        `${tp} is a custom tool (type "custom", free-form text input): this server supports function tools only (type "function", JSON arguments valid against their parameters)`,
        `${tp}.type`,
        'unsupported_value',
      );
    }
    if (!isObject(t) || t.type !== 'function' || !isObject(t.function) || typeof t.function.name !== 'string' || t.function.name === '') {
      throw new TemplateError(`${tp} must be {type:"function", function:{name, description?, parameters?}}`, tp);
    }
    const f = t.function;
    return {
      name: f.name as string,
      description: typeof f.description === 'string' ? f.description : undefined,
      parameters: f.parameters,
      ...(f.strict === true ? { strict: true } : {}),
    };
  });
}

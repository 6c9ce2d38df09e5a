/**
 * The Responses API's items ⇄ the chat template's messages. Input items
 * (messages, function calls, their outputs) are checked and normalised into
 * the items a server keeps and returns; a conversation's items become the
 * messages the template renders, the same way whether they come from a
 * request, a stored response or a conversation. Function tools, alone or in
 * namespaces, become the tools the template shows. Errors name the offending
 * field, and anything this text-only model cannot take (images, files,
 * reasoning, hosted tools) is refused by name.
 */
import { DEFAULT_MAX_JSON_DEPTH, jsonDepthExceeds } from './json-depth.ts';
import { TemplateError, type ChatMessage, type ToolCallSpec, type ToolSpec } from './template.ts';

export interface InputTextPart {
  type: 'input_text';
  text: string;
}

export interface OutputTextPart {
  type: 'output_text';
  text: string;
  annotations: unknown[];
  logprobs: unknown[];
}

export type ItemStatus = 'in_progress' | 'completed' | 'incomplete';

export interface MessageItem {
  type: 'message';
  id: string;
  role: 'user' | 'system' | 'developer' | 'assistant';
  content: Array<InputTextPart | OutputTextPart>;
  status: ItemStatus;
}

export interface FunctionCallItem {
  type: 'function_call';
  id: string;
  call_id: string;
  /** The namespace tool the function belongs to (absent for a top-level function tool). */
  namespace?: string;
  /** The function's own name (within its namespace, if any). */
  name: string;
  /** JSON text of the arguments object. */
  arguments: string;
  status: ItemStatus;
}

export interface FunctionCallOutputItem {
  type: 'function_call_output';
  id: string;
  call_id: string;
  output: string;
  status: ItemStatus;
}

/** What a response's input and output and a conversation are made of. */
export type ConversationItem = MessageItem | FunctionCallItem | FunctionCallOutputItem;

/** An input item that names a stored item by id (resolved by the caller). */
export interface ItemReference {
  type: 'item_reference';
  id: string;
  param: string;
}

export type InputItem = ConversationItem | ItemReference;

/** Item types of OpenAI's Responses API that this server does not take, and why, for the error message. */
const UNSUPPORTED_ITEMS: Record<string, string> = {
  reasoning: 'reasoning items (this model does not reason in a separate channel)',
  file_search_call: 'file search',
  web_search_call: 'web search',
  computer_call: 'computer use',
  computer_call_output: 'computer use',
  image_generation_call: 'image generation',
  code_interpreter_call: 'the code interpreter',
  local_shell_call: 'the local shell tool',
  local_shell_call_output: 'the local shell tool',
  shell_call: 'the shell tool',
  shell_call_output: 'the shell tool',
  apply_patch_call: 'the apply_patch tool',
  apply_patch_call_output: 'the apply_patch tool',
  mcp_list_tools: 'MCP',
  mcp_approval_request: 'MCP',
  mcp_approval_response: 'MCP',
  mcp_call: 'MCP',
  custom_tool_call: 'custom tools',
  custom_tool_call_output: 'custom tools',
  compaction: 'compaction',
};

const TAKEN = 'message, function_call, function_call_output and item_reference items';

/** A function tool's (and a namespace's) name, as OpenAI restricts it. */
const TOOL_NAME = /^[a-zA-Z0-9_-]{1,64}$/;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function partsText(content: unknown, param: string, role: string): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) throw new TemplateError(`${param} must be a string or an array of content parts`, param);
  return content
    .map((part, k) => {
      const pp = `${param}[${k}]`;
      if (!isObject(part)) throw new TemplateError(`${pp} must be a content part object`, pp);
      const type = part.type;
      if ((type === 'input_text' || type === 'output_text' || type === 'text') && typeof part.text === 'string') return part.text;
      if (type === 'refusal' && typeof part.refusal === 'string' && role === 'assistant') return part.refusal;
      if (type === 'input_image' || type === 'input_file' || type === 'input_audio') {
        throw new TemplateError(`${pp} has type "${type}": this model takes text only (no image, file or audio input)`, `${pp}.type`);
      }
      throw new TemplateError(`${pp} has type ${JSON.stringify(type)}: a message's content parts are input_text (or output_text and refusal for the assistant)`, `${pp}.type`);
    })
    .join('\n');
}

function requireString(item: Record<string, unknown>, key: string, param: string, what: string): string {
  const v = item[key];
  if (typeof v !== 'string') throw new TemplateError(`${param}.${key} is required: ${what}`, `${param}.${key}`);
  return v;
}

export interface ParseOptions {
  /** Ids for items that come without one. */
  newId: (prefix: string) => string;
  /** The deepest function-call arguments accepted. */
  maxJsonDepth?: number;
  /** Most items accepted; more is refused. */
  maxItems?: number;
  /** The field the items are in (input, items). */
  param?: string;
}

/** One input item (a request's `input`, or items added to a conversation) → a kept item or a reference. */
export function parseInputItem(raw: unknown, param: string, opts: ParseOptions): InputItem {
  if (!isObject(raw)) throw new TemplateError(`${param} must be an object`, param);
  const type = raw.type ?? (raw.role !== undefined ? 'message' : undefined);
  const id = typeof raw.id === 'string' && raw.id !== '' ? raw.id : undefined;
  switch (type) {
    case 'message': {
      const role = raw.role;
      if (role !== 'user' && role !== 'system' && role !== 'developer' && role !== 'assistant') {
        throw new TemplateError(`${param}.role must be one of user, assistant, system, developer (got ${JSON.stringify(role)})`, `${param}.role`);
      }
      if (raw.content === undefined || raw.content === null) throw new TemplateError(`${param}.content is required`, `${param}.content`);
      const text = partsText(raw.content, `${param}.content`, role);
      const content: MessageItem['content'] = role === 'assistant' ? [{ type: 'output_text', text, annotations: [], logprobs: [] }] : [{ type: 'input_text', text }];
      return { type: 'message', id: id ?? opts.newId('msg_'), role, content, status: 'completed' };
    }
    case 'function_call': {
      const call_id = requireString(raw, 'call_id', param, 'the id that its function_call_output answers');
      const name = requireString(raw, 'name', param, 'the function called');
      const namespace = raw.namespace ?? undefined;
      if (namespace !== undefined && (typeof namespace !== 'string' || !TOOL_NAME.test(namespace))) {
        throw new TemplateError(`${param}.namespace must be 1 to 64 letters, digits, _ or - (the name of a namespace tool)`, `${param}.namespace`);
      }
      const args = raw.arguments === undefined ? '{}' : raw.arguments;
      if (typeof args !== 'string') throw new TemplateError(`${param}.arguments must be a JSON string`, `${param}.arguments`);
      const depth = opts.maxJsonDepth ?? DEFAULT_MAX_JSON_DEPTH;
      if (jsonDepthExceeds(args, depth)) throw new TemplateError(`${param}.arguments is JSON nested more than ${depth} levels deep (--max-json-depth)`, `${param}.arguments`);
      try {
        JSON.parse(args === '' ? '{}' : args);
      } catch {
        throw new TemplateError(`${param}.arguments is not valid JSON: ${args.slice(0, 80)}`, `${param}.arguments`);
      }
      return { type: 'function_call', id: id ?? opts.newId('fc_'), call_id, ...(namespace !== undefined ? { namespace } : {}), name, arguments: args, status: 'completed' };
    }
    case 'function_call_output': {
      const call_id = requireString(raw, 'call_id', param, 'the call_id of the function_call it answers');
      if (raw.output === undefined || raw.output === null) throw new TemplateError(`${param}.output is required`, `${param}.output`);
      const output = partsText(raw.output, `${param}.output`, 'tool');
      return { type: 'function_call_output', id: id ?? opts.newId('fco_'), call_id, output, status: 'completed' };
    }
    case 'item_reference':
      if (id === undefined) throw new TemplateError(`${param}.id is required: the id of a stored item`, `${param}.id`);
      return { type: 'item_reference', id, param };
    default: {
      const why = typeof type === 'string' ? UNSUPPORTED_ITEMS[type] : undefined;
      if (why) throw new TemplateError(`${param} has type "${type}", which is not supported: this server has no ${why}; it takes ${TAKEN}`, `${param}.type`);
      throw new TemplateError(`${param} has type ${JSON.stringify(type)}: this server takes ${TAKEN}`, `${param}.type`);
    }
  }
}

/** A request's `input`: a string (one user message) or an array of items. */
export function parseInput(input: unknown, opts: ParseOptions): InputItem[] {
  const param = opts.param ?? 'input';
  if (input === undefined || input === null) return [];
  if (typeof input === 'string') return [{ type: 'message', id: opts.newId('msg_'), role: 'user', content: [{ type: 'input_text', text: input }], status: 'completed' }];
  if (!Array.isArray(input)) throw new TemplateError(`${param} must be a string or an array of items`, param);
  if (opts.maxItems !== undefined && input.length > opts.maxItems) {
    throw new TemplateError(`${param} has ${input.length} items: at most ${opts.maxItems} are accepted (--max-input-items)`, param);
  }
  return input.map((item, i) => parseInputItem(item, `${param}[${i}]`, opts));
}

function messageText(item: MessageItem): string {
  return item.content.map((p) => p.text).join('\n');
}

/**
 * Items → the template's messages. An assistant message and the function
 * calls right after it are one assistant message (its text, then its calls),
 * as a response's output is one reply; a call output is a tool message.
 */
export function itemsToMessages(items: readonly ConversationItem[]): ChatMessage[] {
  const messages: ChatMessage[] = [];
  /** The assistant message that the next call (or text after calls) belongs to. */
  let open: ChatMessage | undefined;
  let afterCall = false;
  for (const item of items) {
    if (item.type === 'message') {
      if (item.role !== 'assistant') {
        messages.push({ role: item.role, content: messageText(item) });
        open = undefined;
      } else if (open && afterCall) {
        // Text a reply wrote after its calls: the same reply.
        open.content += messageText(item);
      } else {
        open = { role: 'assistant', content: messageText(item) };
        messages.push(open);
      }
      afterCall = false;
    } else if (item.type === 'function_call') {
      const call: ToolCallSpec = { name: shownToolName(item.namespace, item.name), arguments: item.arguments, id: item.call_id };
      if (!open) {
        open = { role: 'assistant', content: '' };
        messages.push(open);
      }
      (open.tool_calls ??= []).push(call);
      afterCall = true;
    } else {
      messages.push({ role: 'tool', content: item.output, tool_call_id: item.call_id });
      open = undefined;
      afterCall = false;
    }
  }
  return messages;
}

/** Hosted tool types of OpenAI's Responses API: OpenAI runs them itself, and this server has none of them. */
const HOSTED_TOOLS: Record<string, string> = {
  file_search: 'file search',
  web_search: 'web search',
  web_search_preview: 'web search',
  web_search_2025_08_26: 'web search',
  web_search_preview_2025_03_11: 'web search',
  computer_use_preview: 'computer use',
  computer: 'computer use',
  mcp: 'MCP servers',
  code_interpreter: 'the code interpreter',
  image_generation: 'image generation',
  local_shell: 'the local shell tool',
  shell: 'the shell tool',
  apply_patch: 'the apply_patch tool',
  tool_search: 'tool search',
};

/** What a client that sends a hosted tool by default can set to stop sending it. */
const HOSTED_HINTS: Record<string, string> = {
  'web search': ' (Codex CLI: web_search = "disabled" in config.toml)',
};

/**
 * Between a namespace and a function's name in the tools the model sees and
 * the calls it writes: no function or namespace name can contain it, so
 * `<namespace>.<name>` never clashes with a top-level function tool.
 */
const NAMESPACE_SEPARATOR = '.';

/** A function tool as a response keeps it and echoes it. */
export interface FunctionToolDef {
  type: 'function';
  name: string;
  description: string | null;
  parameters: Record<string, unknown> | null;
  strict: boolean;
}

/** A namespace tool: function tools grouped under a name, which the model sees as `<namespace>.<name>`. */
export interface NamespaceToolDef {
  type: 'namespace';
  name: string;
  description: string;
  tools: FunctionToolDef[];
}

export type ResponseToolDef = FunctionToolDef | NamespaceToolDef;

/** A function as the template and the grammar take it, with where the request declared it (for error messages). */
export type FunctionToolSpec = ToolSpec & { strict: boolean; param: string };

/** The name the model sees (and calls) for a function of a namespace, or a top-level one. */
export function shownToolName(namespace: string | undefined, name: string): string {
  return namespace === undefined ? name : `${namespace}${NAMESPACE_SEPARATOR}${name}`;
}

/** A called name back to its namespace and function name (the inverse of shownToolName). */
export function splitToolName(shown: string): { namespace?: string; name: string } {
  const at = shown.indexOf(NAMESPACE_SEPARATOR);
  return at < 0 ? { name: shown } : { namespace: shown.slice(0, at), name: shown.slice(at + 1) };
}

function refusedTool(t: Record<string, unknown>, tp: string, taken: string): TemplateError {
  const what = typeof t.type === 'string' ? HOSTED_TOOLS[t.type] : undefined;
  if (what) {
    return new TemplateError(
      `${tp} has type ${JSON.stringify(t.type)}, a hosted tool: OpenAI runs hosted tools itself, and this server has no ${what}. Remove it from tools${HOSTED_HINTS[what] ?? ''}; ${taken}`,
      `${tp}.type`,
    );
  }
  if (t.type === 'custom') return new TemplateError(`${tp} has type "custom": this server has no custom (grammar or free-text) tools; ${taken}`, `${tp}.type`);
  return new TemplateError(`${tp} has type ${JSON.stringify(t.type)}; ${taken}`, `${tp}.type`);
}

function functionTool(t: Record<string, unknown>, tp: string): FunctionToolDef {
  if (typeof t.name !== 'string' || !TOOL_NAME.test(t.name)) {
    throw new TemplateError(`${tp}.name must be 1 to 64 letters, digits, _ or - (the Responses API's function tools are flat: {type, name, description, parameters, strict})`, `${tp}.name`);
  }
  if (t.parameters !== undefined && t.parameters !== null && !isObject(t.parameters)) throw new TemplateError(`${tp}.parameters must be a JSON Schema object`, `${tp}.parameters`);
  return {
    type: 'function',
    name: t.name,
    description: typeof t.description === 'string' ? t.description : null,
    parameters: (t.parameters as Record<string, unknown> | undefined) ?? null,
    strict: t.strict !== false,
  };
}

function namespaceTool(t: Record<string, unknown>, tp: string): NamespaceToolDef {
  if (typeof t.name !== 'string' || !TOOL_NAME.test(t.name)) throw new TemplateError(`${tp}.name must be 1 to 64 letters, digits, _ or - (the namespace's name, used in its calls)`, `${tp}.name`);
  if (t.description !== undefined && t.description !== null && typeof t.description !== 'string') throw new TemplateError(`${tp}.description must be a string`, `${tp}.description`);
  if (!Array.isArray(t.tools) || t.tools.length === 0) throw new TemplateError(`${tp}.tools must be a non-empty array of function tools: namespace "${t.name}" has none`, `${tp}.tools`);
  const seen = new Map<string, number>();
  const tools = t.tools.map((inner, j) => {
    const ip = `${tp}.tools[${j}]`;
    if (!isObject(inner)) throw new TemplateError(`${ip} must be a tool object`, ip);
    if (inner.type !== 'function') throw refusedTool(inner, ip, 'a namespace holds function tools ({type: "function", name, parameters}) only');
    const f = functionTool(inner, ip);
    const first = seen.get(f.name);
    if (first !== undefined) throw new TemplateError(`${ip}.name "${f.name}": duplicate function name in namespace "${t.name}" (${tp}.tools[${first}] has it too)`, `${ip}.name`);
    seen.set(f.name, j);
    return f;
  });
  return { type: 'namespace', name: t.name, description: typeof t.description === 'string' ? t.description : '', tools };
}

/**
 * The Responses API's tools → the definitions a response keeps and echoes:
 * function tools in their flat shape (`strict` true unless false, as OpenAI's
 * Responses API has it) and namespaces of them. Anything else is refused by
 * name; a hosted tool with what to do about it.
 */
export function parseResponseTools(raw: unknown, param = 'tools'): ResponseToolDef[] | undefined {
  if (raw === undefined || raw === null) return undefined;
  if (!Array.isArray(raw)) throw new TemplateError(`${param} must be an array`, param);
  const namespaces = new Map<string, number>();
  return raw.map((t, i) => {
    const tp = `${param}[${i}]`;
    if (!isObject(t)) throw new TemplateError(`${tp} must be a tool object`, tp);
    if (t.type === 'function') return functionTool(t, tp);
    if (t.type !== 'namespace') throw refusedTool(t, tp, 'only function tools ({type: "function", name, parameters}) and namespaces of them are supported');
    const ns = namespaceTool(t, tp);
    const first = namespaces.get(ns.name);
    if (first !== undefined) throw new TemplateError(`${tp}.name "${ns.name}": duplicate namespace name (${param}[${first}] has it too)`, `${tp}.name`);
    namespaces.set(ns.name, i);
    return ns;
  });
}

/**
 * The functions the model is offered, in request order, a namespace's in its
 * place: named `<namespace>.<name>`, described by the namespace's description
 * and then their own (the tools block has one line per function, nowhere to
 * say a namespace's description once).
 */
export function functionToolSpecs(tools: readonly ResponseToolDef[], param = 'tools'): FunctionToolSpec[] {
  const spec = (f: FunctionToolDef, p: string, ns?: NamespaceToolDef): FunctionToolSpec => {
    const description = [ns?.description, f.description].filter((d) => d).join('\n');
    return { name: shownToolName(ns?.name, f.name), description: description || undefined, parameters: f.parameters ?? undefined, strict: f.strict, param: p };
  };
  return tools.flatMap((t, i) => (t.type === 'function' ? [spec(t, `${param}[${i}]`)] : t.tools.map((f, j) => spec(f, `${param}[${i}].tools[${j}]`, t))));
}

/** The call ids an item list's function calls carry. */
export function callIds(items: readonly InputItem[]): Set<string> {
  return new Set(items.flatMap((i) => (i.type === 'function_call' ? [i.call_id] : [])));
}

/**
 * A fine-tuning file, checked line by line and prepared for the trainer.
 *
 * Checks: OpenAI's cookbook ones (each line a JSON object, a messages list,
 * messages with known keys, a known role and content, at least one assistant
 * message), and ours: the tools and tool calls are well formed (a call names a
 * declared tool, its arguments are a JSON object, a tool result answers a
 * call), the conversation fits the model's context, and it has a token to
 * train on. Every bad line is reported with its number (up to MAX_REPORTED);
 * nothing is dropped silently. The file is streamed: the work is bounded by
 * its size (--max-file-bytes) and a line by MAX_LINE_BYTES, and the event loop
 * gets a turn between lines.
 */
import type { Readable } from 'node:stream';
import { DatasetLineError, DatasetWriter, parseLine, prepareRecord, type PrepareStats } from '../../chat/dataset.ts';
import type { ChatTemplate } from '../../chat/template.ts';

export const MAX_LINE_BYTES = 4 * 1024 * 1024;
const MAX_REPORTED = 5;

const TOP_LEVEL_KEYS = new Set(['messages', 'tools', 'parallel_tool_calls']);
const MESSAGE_KEYS = new Set(['role', 'content', 'name', 'weight', 'tool_calls', 'tool_call_id', 'refusal']);
const ROLES = new Set(['system', 'developer', 'user', 'assistant', 'tool']);

export interface LineProblem {
  line: number;
  reason: string;
}

export interface PreparedData extends PrepareStats {
  /** The longest conversation, in tokens (the trainer's sequence length). */
  longest: number;
  problems: LineProblem[];
  /** Bad lines in all (problems holds the first MAX_REPORTED). */
  badLines: number;
}

/** Lines of a stream (UTF-8, "\n"-separated, a trailing "\r" dropped), numbered from 1; a line over maxBytes is reported, not buffered. */
export async function* lines(source: Readable, maxBytes = MAX_LINE_BYTES): AsyncGenerator<{ line: number; text?: string; tooLong?: boolean }> {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let tooLong = false;
  let line = 1;
  const emit = (): { line: number; text?: string; tooLong?: boolean } => {
    const out = tooLong ? { line, tooLong: true } : { line, text: Buffer.concat(pending).toString('utf8').replace(/\r$/, '') };
    pending = [];
    pendingBytes = 0;
    tooLong = false;
    line++;
    return out;
  };
  for await (const chunk of source as AsyncIterable<Buffer>) {
    let at = 0;
    for (let nl = chunk.indexOf(0x0a, at); nl !== -1; nl = chunk.indexOf(0x0a, at)) {
      if (!tooLong) pending.push(chunk.subarray(at, nl));
      pendingBytes += nl - at;
      if (pendingBytes > maxBytes) tooLong = true;
      yield emit();
      at = nl + 1;
    }
    if (at < chunk.length) {
      pendingBytes += chunk.length - at;
      if (pendingBytes > maxBytes) tooLong = true;
      if (!tooLong) pending.push(chunk.subarray(at));
      else pending = [];
    }
  }
  if (pendingBytes > 0 || tooLong) yield emit();
}

/** The cookbook's structural checks of one parsed example; the first problem found, or undefined. */
function structuralProblem(rec: Record<string, unknown>): string | undefined {
  const unknown = Object.keys(rec).find((k) => !TOP_LEVEL_KEYS.has(k));
  if (unknown !== undefined) return `unknown key "${unknown}" (an example has messages, and optionally tools and parallel_tool_calls)`;
  const messages = rec.messages;
  if (!Array.isArray(messages) || messages.length === 0) return 'no "messages" list';
  for (const [i, m] of messages.entries()) {
    if (typeof m !== 'object' || m === null || Array.isArray(m)) return `messages[${i}] is not an object`;
    const msg = m as Record<string, unknown>;
    const key = Object.keys(msg).find((k) => !MESSAGE_KEYS.has(k));
    if (key !== undefined) return `messages[${i}] has the unknown key "${key}"`;
    if (!('role' in msg)) return `messages[${i}] is missing the key "role"`;
    if (typeof msg.role !== 'string' || !ROLES.has(msg.role)) return `messages[${i}] has the unrecognised role ${JSON.stringify(msg.role)}`;
    const hasCalls = Array.isArray(msg.tool_calls) && msg.tool_calls.length > 0;
    if (!hasCalls && (msg.content === undefined || msg.content === null)) return `messages[${i}] (${msg.role}) is missing its content`;
    if (msg.role === 'tool' && typeof msg.tool_call_id !== 'string') return `messages[${i}] (tool) is missing its tool_call_id`;
  }
  if (!messages.some((m) => (m as Record<string, unknown>).role === 'assistant')) return 'no assistant message';
  return undefined;
}

/** Tool calls name declared tools and carry a JSON object of arguments. */
function toolProblem(rec: Record<string, unknown>): string | undefined {
  const declared = Array.isArray(rec.tools)
    ? new Set(rec.tools.map((t) => (t as { function?: { name?: unknown } })?.function?.name).filter((n): n is string => typeof n === 'string'))
    : undefined;
  for (const [i, m] of (rec.messages as Array<Record<string, unknown>>).entries()) {
    if (!Array.isArray(m.tool_calls)) continue;
    for (const [j, c] of m.tool_calls.entries()) {
      const call = c as { function?: { name?: unknown; arguments?: unknown } };
      const name = call?.function?.name;
      if (typeof name === 'string' && declared && !declared.has(name)) return `messages[${i}].tool_calls[${j}] calls "${name}", which is not among the example's tools`;
      const args = call?.function?.arguments;
      if (typeof args === 'string') {
        let parsed: unknown;
        try {
          parsed = JSON.parse(args);
        } catch {
          return `messages[${i}].tool_calls[${j}].function.arguments is not valid JSON`;
        }
        if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return `messages[${i}].tool_calls[${j}].function.arguments is not a JSON object`;
      }
    }
  }
  return undefined;
}

/**
 * Checks every line of `source` and, while no line is bad, writes the
 * prepared dataset to `outPath` (the trainer's input). When a line is bad the
 * scan goes on to count and report them, but nothing is written.
 */
export async function prepareTrainingData(
  source: Readable,
  template: ChatTemplate,
  opts: { contextLength: number; outPath: string; spec: { encoding: string; special_tokens: Record<string, number>; vocab_size: number }; signal?: AbortSignal },
): Promise<PreparedData> {
  const writer = new DatasetWriter(opts.outPath, opts.spec);
  const problems: LineProblem[] = [];
  let badLines = 0;
  let longest = 0;
  let sinceYield = 0;
  const report = (line: number, reason: string) => {
    badLines++;
    if (problems.length < MAX_REPORTED) problems.push({ line, reason });
  };
  try {
    for await (const { line, text, tooLong } of lines(source)) {
      opts.signal?.throwIfAborted();
      if (tooLong) {
        report(line, `longer than ${MAX_LINE_BYTES} bytes`);
        continue;
      }
      if (text === undefined || text.trim() === '') continue;
      try {
        const rec = parseLine(text, line);
        const problem = structuralProblem(rec) ?? toolProblem(rec);
        if (problem) throw new DatasetLineError(line, problem);
        const conversation = prepareRecord(template, rec, line);
        if (conversation.ids.length > opts.contextLength) {
          throw new DatasetLineError(line, `${conversation.ids.length} tokens, longer than the model's context of ${opts.contextLength}`);
        }
        longest = Math.max(longest, conversation.ids.length);
        if (badLines === 0) writer.add(conversation);
      } catch (e) {
        if (!(e instanceof DatasetLineError)) throw e;
        report(line, e.message.replace(/^line \d+: /, ''));
      }
      // A turn for the event loop every few hundred kilobytes of examples.
      sinceYield += text.length;
      if (sinceYield > 256 * 1024) {
        sinceYield = 0;
        await new Promise((r) => setImmediate(r));
      }
    }
  } catch (e) {
    writer.abandon();
    throw e;
  }
  if (badLines > 0 || writer.conversations === 0) {
    writer.abandon();
    return { conversations: 0, tokens: 0, trainedTokens: 0, longest, problems, badLines };
  }
  return { ...writer.finish(), longest, problems, badLines };
}

/** The job error message for a file's problems: the lines and their reasons. */
export function describeProblems(fileId: string, data: PreparedData): string {
  if (data.badLines === 0) return `${fileId} has no examples`;
  const shown = data.problems.map((p) => `line ${p.line}: ${p.reason}`).join('; ');
  const more = data.badLines > data.problems.length ? ` (and ${data.badLines - data.problems.length} more bad lines)` : '';
  return `${fileId} is not valid fine-tuning data: ${shown}${more}`;
}

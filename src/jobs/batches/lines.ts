/**
 * A batch's input file, line by line: read without holding a line longer than
 * the limit, each line checked as the endpoint's route checks a request body
 * (the same JSON parser, depth limit, body size limit and schema validator,
 * handed over by the HTTP layer as LineServing), plus the batch's own rules
 * (custom_id, method, url, no streaming).
 */
import { StringDecoder } from 'node:string_decoder';
import { jsonDepthExceeds } from '../../chat/json-depth.ts';
import type { ApiError } from '../../protocol/errors.ts';
import type { BatchError, LineUsage } from '../../store/batches.ts';

/** What an endpoint answered a line with: 200 and its body, or an error status and OpenAI's error body. */
export interface LineAnswer {
  status: number;
  body: unknown;
  usage?: LineUsage;
}

/** One endpoint as the batch worker runs it: its route's checks, and its serving without HTTP. */
export interface LineEndpoint {
  /** The 400 the route would answer this body with before serving it (its schema), or undefined. */
  check(body: unknown): ApiError | undefined;
  /** Serves a checked body in the background (no admission slot; the engine's free rows), never throwing: errors are answers. */
  run(body: Record<string, unknown>, signal: AbortSignal): Promise<LineAnswer>;
}

/** What the HTTP layer hands the worker once the app is ready. */
export interface LineServing {
  /** The endpoints a batch may name, by URL (/v1/chat/completions). */
  endpoints: ReadonlyMap<string, LineEndpoint>;
  /** The server's JSON body parser (prototype poisoning refused); undefined when the text is not JSON. */
  parseJson(text: string): { value: unknown } | undefined;
  /** --max-json-depth: a body nested deeper is refused, as the route refuses it. */
  maxJsonDepth: number;
  /** --max-body-size: a line larger than a body may be (plus the envelope) is refused, as the route refuses the body. */
  maxBodyBytes: number;
}

export interface RawLine {
  /** 1-based. */
  line: number;
  /** Undefined when the line was longer than the limit (its bytes were skipped, never held). */
  text?: string;
}

/** The envelope around a body: custom_id (≤ MAX_CUSTOM_ID), method and url. */
export const ENVELOPE_BYTES = 1024;
export const MAX_CUSTOM_ID = 512;

/**
 * The lines of `source`, split at \n (a \r before it dropped), blank lines
 * skipped (but counted). A line longer than `maxLineBytes` is reported
 * without its text, and its bytes are not kept.
 */
export async function* readLines(source: AsyncIterable<Buffer | Uint8Array>, maxLineBytes: number): AsyncGenerator<RawLine> {
  let parts: Buffer[] = [];
  let length = 0;
  let tooLong = false;
  let line = 0;
  const finish = (): RawLine | undefined => {
    line++;
    const over = tooLong;
    const bytes = Buffer.concat(parts, length);
    parts = [];
    length = 0;
    tooLong = false;
    if (over) return { line };
    const decoder = new StringDecoder('utf8');
    let text = decoder.write(bytes) + decoder.end();
    if (text.endsWith('\r')) text = text.slice(0, -1);
    return text.trim() === '' ? undefined : { line, text };
  };
  for await (const chunk of source) {
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    let start = 0;
    for (;;) {
      const nl = buf.indexOf(0x0a, start);
      const end = nl === -1 ? buf.length : nl;
      if (!tooLong) {
        if (length + end - start > maxLineBytes) {
          tooLong = true;
          parts = [];
          length = 0;
        } else if (end > start) {
          parts.push(buf.subarray(start, end));
          length += end - start;
        }
      }
      if (nl === -1) break;
      const r = finish();
      if (r) yield r;
      start = nl + 1;
    }
  }
  if (length > 0 || tooLong) {
    const r = finish();
    if (r) yield r;
  }
}

export interface ParsedLine {
  line: number;
  customId: string;
  body: Record<string, unknown>;
}

export type LineProblem = BatchError & { line: number };

const problem = (line: number, code: string, message: string, param: string | null = null): LineProblem => ({ code, message, param, line });

/** Checks one line for a batch to `endpoint`: a request ready to serve, or what is wrong with it. */
export function parseLine(raw: RawLine, endpointUrl: string, serving: LineServing): ParsedLine | LineProblem {
  const { line, text } = raw;
  const maxLine = serving.maxBodyBytes + ENVELOPE_BYTES;
  if (text === undefined || Buffer.byteLength(text) > maxLine) {
    return problem(line, 'request_too_large', `Line ${line} is longer than ${maxLine} bytes: a request body may have at most ${serving.maxBodyBytes} (--max-body-size).`);
  }
  // The envelope adds one level around the body.
  if (jsonDepthExceeds(text, serving.maxJsonDepth + 1)) {
    return problem(line, 'json_too_deep', `Line ${line}: the body is nested more than ${serving.maxJsonDepth} levels deep, which this server does not accept (--max-json-depth).`, 'body');
  }
  const parsed = serving.parseJson(text);
  if (!parsed) return problem(line, 'invalid_json_line', `Line ${line} is not valid JSON (each line must be one JSON object).`);
  const v = parsed.value;
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return problem(line, 'invalid_json_line', `Line ${line} is not a JSON object.`);
  const input = v as Record<string, unknown>;
  for (const key of ['custom_id', 'method', 'url', 'body']) {
    if (input[key] === undefined) return problem(line, 'missing_required_parameter', `Line ${line}: missing required parameter '${key}'.`, key);
  }
  const customId = input.custom_id;
  if (typeof customId !== 'string' || customId.length === 0 || customId.length > MAX_CUSTOM_ID) {
    return problem(line, 'invalid_value', `Line ${line}: custom_id must be a string of 1 to ${MAX_CUSTOM_ID} characters.`, 'custom_id');
  }
  if (input.method !== 'POST') return problem(line, 'invalid_value', `Line ${line}: method must be "POST" (got ${JSON.stringify(input.method)}).`, 'method');
  if (input.url !== endpointUrl) {
    return problem(line, 'mismatched_endpoint', `Line ${line}: url ${JSON.stringify(input.url)} does not match the batch's endpoint ${endpointUrl}.`, 'url');
  }
  const endpoint = serving.endpoints.get(endpointUrl);
  if (!endpoint) return problem(line, 'unsupported_endpoint', `Line ${line}: ${endpointUrl} is not served by this server.`, 'url');
  const refused = endpoint.check(input.body);
  if (refused) return problem(line, refused.code ?? 'invalid_request', `Line ${line}: ${refused.message}`, refused.param ? `body.${refused.param}` : 'body');
  const body = input.body as Record<string, unknown>;
  if (body.stream === true) return problem(line, 'unsupported_value', `Line ${line}: "stream": true is not supported in a batch: each line gets one response body.`, 'body.stream');
  if (body.background === true) return problem(line, 'unsupported_value', `Line ${line}: "background": true is not supported in a batch: a batch line already runs in the background and gets its finished response.`, 'body.background');
  return { line, customId, body };
}

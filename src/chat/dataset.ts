/**
 * Training-data preparation: OpenAI fine-tuning JSONL → token ids + loss mask.
 *
 * Binary format ("MMRECDS1"), all integers little-endian, read by kit/mmrec/data.py:
 *   bytes 0..8    magic "MMRECDS1"
 *   u32           header length H
 *   H bytes       header, UTF-8 JSON (space-padded so the arrays below are 8-byte aligned):
 *                 {version, conversations, tokens, trained_tokens, vocab_size, encoding, special_tokens}
 *   u64[N+1]      offsets: conversation i is tokens[offsets[i] .. offsets[i+1])
 *   u32[T]        token ids
 *   u8[T]         mask: 1 = the token is a training target (predicted from the previous position)
 *
 * The mask covers assistant output only (content, tool calls, the closing newline
 * and `<|endoftext|>`); an assistant message with `"weight": 0` is masked out.
 */
import { closeSync, fsyncSync, openSync, readFileSync, readSync, rmSync, writeSync } from 'node:fs';
import { ChatTemplate, TemplateError } from './template.ts';
import { toChatMessages, toToolSpecs } from './openai-messages.ts';

export const DATASET_MAGIC = 'MMRECDS1';

export interface PreparedConversation {
  ids: number[];
  mask: Uint8Array;
}

export class DatasetLineError extends Error {
  constructor(readonly line: number, reason: string) {
    super(`line ${line}: ${reason}`);
  }
}

/** Parse and render one JSONL line; throws DatasetLineError naming the line and the reason. */
export function prepareLine(template: ChatTemplate, text: string, line: number): PreparedConversation {
  return prepareRecord(template, parseLine(text, line), line);
}

/** One JSONL line as an object; throws DatasetLineError. */
export function parseLine(text: string, line: number): Record<string, unknown> {
  let obj: unknown;
  try {
    obj = JSON.parse(text);
  } catch (e) {
    throw new DatasetLineError(line, `not valid JSON (${(e as Error).message})`);
  }
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) throw new DatasetLineError(line, 'must be a JSON object with "messages"');
  return obj as Record<string, unknown>;
}

/** Render one parsed example; throws DatasetLineError naming the line and the reason. */
export function prepareRecord(template: ChatTemplate, rec: Record<string, unknown>, line: number): PreparedConversation {
  try {
    const messages = toChatMessages(rec.messages);
    const tools = toToolSpecs(rec.tools);
    const rendered = template.render(messages, { tools });
    const mask = rendered.trainMask;
    // OpenAI's per-message weight: 0 excludes that assistant message from the loss.
    const rawMessages = rec.messages as Array<Record<string, unknown>>;
    for (const span of rendered.spans) {
      if (span.role !== 'assistant') continue;
      const w = rawMessages[span.sourceIndex].weight;
      if (w === undefined) continue;
      if (w !== 0 && w !== 1) throw new TemplateError(`messages[${span.sourceIndex}].weight must be 0 or 1`, 'weight');
      if (w === 0) mask.fill(0, span.start, span.end);
    }
    if (!mask.some((m) => m === 1)) throw new DatasetLineError(line, 'no assistant message to train on (every assistant message is absent or has weight 0)');
    return { ids: rendered.ids, mask };
  } catch (e) {
    if (e instanceof DatasetLineError) throw e;
    if (e instanceof TemplateError) throw new DatasetLineError(line, e.message);
    throw e;
  }
}

export interface PrepareStats {
  conversations: number;
  tokens: number;
  trainedTokens: number;
}

/** Prepare every non-blank line; the first bad line aborts with its number and reason. */
export function prepareJsonl(template: ChatTemplate, jsonl: string): { conversations: PreparedConversation[]; stats: PrepareStats } {
  const conversations: PreparedConversation[] = [];
  let tokens = 0;
  let trainedTokens = 0;
  jsonl.split('\n').forEach((text, i) => {
    if (text.trim() === '') return;
    const conv = prepareLine(template, text, i + 1);
    conversations.push(conv);
    tokens += conv.ids.length;
    for (const m of conv.mask) trainedTokens += m;
  });
  return { conversations, stats: { conversations: conversations.length, tokens, trainedTokens } };
}

export function encodeDataset(spec: { encoding: string; special_tokens: Record<string, number>; vocab_size: number }, conversations: PreparedConversation[]): Buffer {
  const total = conversations.reduce((s, c) => s + c.ids.length, 0);
  const trained = conversations.reduce((s, c) => s + c.mask.reduce((a, b) => a + b, 0), 0);
  let header = JSON.stringify({
    version: 1,
    conversations: conversations.length,
    tokens: total,
    trained_tokens: trained,
    vocab_size: spec.vocab_size,
    encoding: spec.encoding,
    special_tokens: spec.special_tokens,
  });
  const pad = (8 - ((8 + 4 + Buffer.byteLength(header)) % 8)) % 8;
  header += ' '.repeat(pad);
  const headerBytes = Buffer.from(header, 'utf8');
  const buf = Buffer.alloc(8 + 4 + headerBytes.length + 8 * (conversations.length + 1) + 4 * total + total);
  let o = 0;
  o += buf.write(DATASET_MAGIC, o, 'ascii');
  buf.writeUInt32LE(headerBytes.length, o);
  o += 4;
  headerBytes.copy(buf, o);
  o += headerBytes.length;
  let acc = 0;
  buf.writeBigUInt64LE(0n, o);
  o += 8;
  for (const c of conversations) {
    acc += c.ids.length;
    buf.writeBigUInt64LE(BigInt(acc), o);
    o += 8;
  }
  for (const c of conversations) {
    for (const id of c.ids) {
      if (id >= spec.vocab_size) throw new Error(`token id ${id} is outside the vocabulary (${spec.vocab_size})`);
      buf.writeUInt32LE(id, o);
      o += 4;
    }
  }
  for (const c of conversations) {
    Buffer.from(c.mask.buffer, c.mask.byteOffset, c.mask.length).copy(buf, o);
    o += c.mask.length;
  }
  return buf;
}

/**
 * encodeDataset for data too large to hold: conversations are appended one by
 * one (their tokens and masks go to two scratch files beside the output), and
 * `finish` writes the header and offsets, then copies the two sections in.
 * Memory: 8 bytes per conversation.
 */
export class DatasetWriter {
  private readonly offsets: number[] = [0];
  private tokens = 0;
  private trained = 0;
  private readonly idsPath: string;
  private readonly maskPath: string;
  private readonly ids: number;
  private readonly mask: number;

  constructor(
    private readonly path: string,
    private readonly spec: { encoding: string; special_tokens: Record<string, number>; vocab_size: number },
  ) {
    this.idsPath = `${path}.ids.part`;
    this.maskPath = `${path}.mask.part`;
    this.ids = openSync(this.idsPath, 'w');
    this.mask = openSync(this.maskPath, 'w');
  }

  get conversations(): number {
    return this.offsets.length - 1;
  }

  add(c: PreparedConversation): void {
    const ids = new Uint32Array(c.ids.length);
    c.ids.forEach((id, i) => {
      if (id >= this.spec.vocab_size) throw new Error(`token id ${id} is outside the vocabulary (${this.spec.vocab_size})`);
      ids[i] = id;
    });
    writeAll(this.ids, new Uint8Array(ids.buffer));
    writeAll(this.mask, c.mask);
    this.tokens += c.ids.length;
    for (const m of c.mask) this.trained += m;
    this.offsets.push(this.tokens);
  }

  /** Writes the dataset file and removes the scratch files. */
  finish(): PrepareStats {
    closeSync(this.ids);
    closeSync(this.mask);
    let header = JSON.stringify({
      version: 1,
      conversations: this.conversations,
      tokens: this.tokens,
      trained_tokens: this.trained,
      vocab_size: this.spec.vocab_size,
      encoding: this.spec.encoding,
      special_tokens: this.spec.special_tokens,
    });
    header += ' '.repeat((8 - ((8 + 4 + Buffer.byteLength(header)) % 8)) % 8);
    const headerBytes = Buffer.from(header, 'utf8');
    const out = openSync(this.path, 'w');
    try {
      const prefix = Buffer.alloc(12);
      prefix.write(DATASET_MAGIC, 0, 'ascii');
      prefix.writeUInt32LE(headerBytes.length, 8);
      writeAll(out, prefix);
      writeAll(out, headerBytes);
      writeAll(out, new Uint8Array(BigUint64Array.from(this.offsets.map(BigInt)).buffer));
      for (const part of [this.idsPath, this.maskPath]) {
        const fd = openSync(part, 'r');
        try {
          const buf = Buffer.alloc(1 << 20);
          for (let n = readSync(fd, buf); n > 0; n = readSync(fd, buf)) writeAll(out, buf.subarray(0, n));
        } finally {
          closeSync(fd);
        }
      }
      fsyncSync(out);
    } finally {
      closeSync(out);
      rmSync(this.idsPath, { force: true });
      rmSync(this.maskPath, { force: true });
    }
    return { conversations: this.conversations, tokens: this.tokens, trainedTokens: this.trained };
  }

  /** Stops without a dataset (the scratch files are removed). */
  abandon(): void {
    for (const fd of [this.ids, this.mask]) {
      try {
        closeSync(fd);
      } catch {
        // already closed by finish()
      }
    }
    rmSync(this.idsPath, { force: true });
    rmSync(this.maskPath, { force: true });
  }
}

function writeAll(fd: number, data: Uint8Array): void {
  for (let off = 0; off < data.byteLength; ) off += writeSync(fd, data, off);
}

/** Reads a dataset file back (the validation set a job scores with): its conversations, up to `limit` of them. */
export function readDataset(path: string, limit = Infinity): PreparedConversation[] {
  const raw = readFileSync(path);
  if (raw.subarray(0, 8).toString('ascii') !== DATASET_MAGIC) throw new Error(`${path}: not a ${DATASET_MAGIC} file`);
  const headerLength = raw.readUInt32LE(8);
  const header = JSON.parse(raw.subarray(12, 12 + headerLength).toString('utf8')) as { conversations: number; tokens: number };
  const n = header.conversations;
  let at = 12 + headerLength;
  const offsets: number[] = [];
  for (let i = 0; i <= n; i++, at += 8) offsets.push(Number(raw.readBigUInt64LE(at)));
  const tokensAt = at;
  const maskAt = tokensAt + 4 * header.tokens;
  const out: PreparedConversation[] = [];
  for (let i = 0; i < Math.min(n, limit); i++) {
    const ids: number[] = [];
    for (let t = offsets[i]; t < offsets[i + 1]; t++) ids.push(raw.readUInt32LE(tokensAt + 4 * t));
    out.push({ ids, mask: Uint8Array.from(raw.subarray(maskAt + offsets[i], maskAt + offsets[i + 1])) });
  }
  return out;
}

/**
 * Batches as a state machine on the store:
 *
 *   validating → in_progress → finalizing → completed | expired | failed
 *        ↓             ↓
 *     failed       cancelling → cancelled
 *
 * Every transition is written to the store (a conditional update: only from
 * the statuses it names) before it takes effect, and this module is the only
 * one that makes them. The worker checks a batch's input file (one batch at a
 * time), then runs its lines through the endpoint's serving as background
 * work (no admission slot; the engine admits them only into the rows
 * interactive requests leave), at most --batch-max-in-flight lines at once
 * over all batches. Each finished line is recorded at once, with the batch's
 * counters, in one transaction (store/batches.ts); when every line is, the
 * records become the output and error files (purpose batch_output), whose
 * ids were reserved with the move to finalizing, so that writing them again
 * after an interruption finds them.
 *
 * After a restart (even SIGKILL) a batch found in_progress continues with the
 * lines that have no record: a line is never recorded twice, and a line in
 * flight when the process stopped is run again. A batch found finalizing or
 * cancelling writes its files (again); one found validating is validated again.
 */
import { setMaxListeners } from 'node:events';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { BatchError, BatchOutcome, BatchRecord, BatchStatus, ResultKind } from '../../store/batches.ts';
import { FINISHED_BATCH } from '../../store/batches.ts';
import { newId, nowSeconds } from '../../store/ids.ts';
import type { Store } from '../../store/store.ts';
import { ENVELOPE_BYTES, parseLine, readLines, type LineAnswer, type LineEndpoint, type LineServing, type RawLine } from './lines.ts';
import { Slots } from './slots.ts';

export interface BatchSettings {
  /** Request lines one input file may hold. */
  maxLines: number;
  /** Lines being served at once, over all batches. */
  maxInFlight: number;
  /** Problems listed in a refused batch's errors (the rest are counted in a last entry). */
  maxErrors?: number;
  /** How often running batches are checked against their expiry, ms. */
  expiryCheckMs?: number;
}

const DEFAULT_MAX_ERRORS = 100;
const DEFAULT_EXPIRY_CHECK_MS = 30_000;
/** Lines checked between two yields to the event loop while an input file is validated. */
const VALIDATION_SLICE = 256;
/** Bytes gathered before a write while a batch's file is assembled. */
const WRITE_CHUNK = 64 * 1024;

const OPEN: readonly BatchStatus[] = ['validating', 'in_progress', 'finalizing', 'cancelling'];
/** Batches worked on at once (each holds its input file open); the others wait their turn, oldest first. */
const MAX_ACTIVE_BATCHES = 8;

interface Active {
  /** Aborts the lines of the batch in flight: on cancel, expiry and shutdown. */
  lines: AbortController;
  reason?: 'cancel' | 'expire' | 'close';
  expiresAt: number;
  done: Promise<void>;
}

export class BatchWorker {
  private serving?: LineServing;
  private started = false;
  /** No new line starts (shutdown has begun). */
  private stopping = false;
  private closed = false;
  private readonly active = new Map<string, Active>();
  /** Batches stopped by an error or by making no progress: left as they are until the next start. */
  private readonly stalled = new Set<string>();
  private readonly slots: Slots;
  /** Input files are validated one at a time (it is CPU work on this thread). */
  private validationQueue: Promise<void> = Promise.resolve();
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly deps: {
      store: Store;
      settings: BatchSettings;
      log: Pick<Logger, 'info' | 'warn' | 'error'>;
    },
  ) {
    this.slots = new Slots(deps.settings.maxInFlight);
  }

  private get store(): Store {
    return this.deps.store;
  }

  /** The endpoints, as the HTTP layer checks and serves them (given once the app is ready). */
  attach(serving: LineServing): void {
    this.serving = serving;
    this.pump();
  }

  /** The endpoints a batch may name (empty until attached). */
  get endpoints(): string[] {
    return [...(this.serving?.endpoints.keys() ?? [])];
  }

  /** Starts work (once the models are served): unfinished batches first, in the order they were created. */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    await this.store.batches.dropFinishedResults();
    this.timer = setInterval(() => this.checkExpiry(), this.deps.settings.expiryCheckMs ?? DEFAULT_EXPIRY_CHECK_MS);
    this.timer.unref();
    this.pump();
  }

  /** A batch was created. */
  notify(): void {
    this.pump();
  }

  private pump(): void {
    if (!this.started || !this.serving || this.stopping) return;
    this.store.batches.withStatus(OPEN).then(
      (open) => {
        // Batches that only have their files to write go first: they take no line slot and end at once.
        const ending = (b: BatchRecord) => b.status === 'finalizing' || b.status === 'cancelling';
        const waiting = open.filter((b) => !this.stalled.has(b.id));
        for (const b of [...waiting.filter(ending), ...waiting.filter((b) => !ending(b))]) {
          if (this.active.size >= MAX_ACTIVE_BATCHES) break;
          this.drive(b);
        }
      },
      (e) => this.deps.log.error({ err: e }, 'batches: cannot read the open batches'),
    );
  }

  /** Runs a batch through its states until it has finished (or the server stops). */
  private drive(batch: BatchRecord): void {
    if (this.active.has(batch.id) || this.stopping) return;
    const a: Active = { lines: new AbortController(), expiresAt: batch.expiresAt, done: Promise.resolve() };
    // Every line in flight (and every line waiting for a slot) listens to it: more than Node's warning threshold of 10.
    setMaxListeners(0, a.lines.signal);
    this.active.set(batch.id, a);
    a.done = (async () => {
      let previous = '';
      for (;;) {
        if (this.closed) return;
        const b = await this.store.batches.get(batch.id);
        if (!b || FINISHED_BATCH.includes(b.status)) return;
        // Each step moves the batch on or records lines; one that did neither would loop for ever.
        const progress = `${b.status}:${b.counts.completed + b.counts.failed}`;
        if (progress === previous) {
          this.deps.log.error({ batch: b.id, status: b.status }, 'batch made no progress; left as it is until the next start');
          this.stalled.add(b.id);
          return;
        }
        previous = progress;
        if (b.status === 'validating') await this.validateInTurn(b, a);
        else if (b.status === 'in_progress') await this.runLines(b, a);
        else await this.finalize(b);
        if (this.stopping) return;
      }
    })()
      .catch((e) => {
        this.deps.log.error({ err: e, batch: batch.id }, 'batch stopped by an error; it resumes at the next start');
        this.stalled.add(batch.id);
      })
      .finally(() => {
        this.active.delete(batch.id);
        this.pump(); // the next batch waiting for its turn
      });
  }

  // ---------------------------------------------------------------- validating

  private async validateInTurn(b: BatchRecord, a: Active): Promise<void> {
    const previous = this.validationQueue;
    let release!: () => void;
    this.validationQueue = new Promise((r) => (release = r));
    try {
      await previous;
      await this.validate(b, a);
    } finally {
      release();
    }
  }

  private async validate(b: BatchRecord, a: Active): Promise<void> {
    const serving = this.serving!;
    const { maxLines } = this.deps.settings;
    const maxErrors = this.deps.settings.maxErrors ?? DEFAULT_MAX_ERRORS;
    const file = await this.store.files.get(b.inputFileId);
    if (!file) return this.refuse(b, [inputFileGone(b)], 1);
    const errors: BatchError[] = [];
    let problems = 0;
    const note = (e: BatchError) => {
      problems++;
      if (errors.length < maxErrors) errors.push(e);
    };
    const customIds = new Set<string>();
    const models = new Set<unknown>();
    let total = 0;
    let slice = 0;
    try {
      for await (const raw of readLines(this.store.files.content(file), serving.maxBodyBytes + ENVELOPE_BYTES)) {
        // Cancelled (the status says so) or the server is stopping (validated again at the next start).
        if (a.lines.signal.aborted || this.stopping) return;
        if (++total > maxLines) {
          note({ code: 'too_many_requests', message: `The input file has more than ${maxLines} requests, the most a batch may have here (--batch-max-lines).`, param: null, line: raw.line });
          break;
        }
        const p = parseLine(raw, b.endpoint, serving);
        if (!('customId' in p)) note(p);
        else if (customIds.has(p.customId)) note({ code: 'duplicate_custom_id', message: `Line ${raw.line}: custom_id ${JSON.stringify(p.customId)} is used by an earlier line; each must be unique.`, param: 'custom_id', line: raw.line });
        else {
          customIds.add(p.customId);
          models.add(p.body.model);
        }
        if (++slice >= VALIDATION_SLICE) {
          slice = 0;
          await yieldToEventLoop();
        }
      }
    } catch (e) {
      if (await this.store.files.get(b.inputFileId)) throw e;
      return this.refuse(b, [inputFileGone(b)], 1); // deleted while it was read
    }
    if (total === 0) note({ code: 'empty_file', message: 'The input file has no requests.', param: 'input_file_id', line: null });
    if (problems > 0) {
      if (problems > errors.length) errors.push({ code: 'too_many_errors', message: `${problems - errors.length} more problems are not listed.`, param: null, line: null });
      return this.refuse(b, errors, problems);
    }
    const [model] = models;
    const moved = await this.store.batches.transition(b.id, ['validating'], 'in_progress', {
      total,
      inProgressAt: nowSeconds(),
      model: models.size === 1 && typeof model === 'string' ? model : null,
    });
    if (moved) this.deps.log.info({ batch: b.id, requests: total, endpoint: b.endpoint }, `batch ${b.id}: ${total} requests validated`);
  }

  private async refuse(b: BatchRecord, errors: BatchError[], problems: number): Promise<void> {
    const failed = await this.store.batches.transition(b.id, ['validating'], 'failed', { errors, failedAt: nowSeconds() });
    if (failed) this.deps.log.info({ batch: b.id, problems, first: errors[0]?.message }, `batch ${b.id} failed validation`);
  }

  // ---------------------------------------------------------------- in progress

  private async runLines(b: BatchRecord, a: Active): Promise<void> {
    const serving = this.serving!;
    const endpoint = serving.endpoints.get(b.endpoint);
    const file = await this.store.files.get(b.inputFileId);
    if (!file || !endpoint) {
      const gone = endpoint ? inputFileGone(b) : { code: 'unsupported_endpoint', message: `${b.endpoint} is no longer served.`, param: null, line: null };
      return this.toFinalizing(b, 'failed', [gone]);
    }
    const recorded = await this.store.batches.recordedLines(b.id);
    const inFlight = new Set<Promise<void>>();
    let failure: { error: unknown } | undefined;
    const stop = () => this.stopping || a.lines.signal.aborted || failure !== undefined || nowSeconds() >= a.expiresAt;
    let unreadable: unknown;
    try {
      for await (const raw of readLines(this.store.files.content(file), serving.maxBodyBytes + ENVELOPE_BYTES)) {
        if (recorded.has(raw.line)) continue;
        if (stop()) break;
        let release: () => void;
        try {
          release = await this.slots.acquire(a.lines.signal);
        } catch {
          break; // aborted while waiting for a slot
        }
        if (stop()) {
          release();
          break;
        }
        const p = this.runLine(b, raw, endpoint, serving, a.lines.signal)
          .catch((e) => {
            failure ??= { error: e };
          })
          .finally(() => {
            release();
            inFlight.delete(p);
          });
        inFlight.add(p);
      }
    } catch (e) {
      unreadable = e;
    } finally {
      await Promise.allSettled([...inFlight]);
    }
    if (failure) throw failure.error;
    if (unreadable !== undefined) {
      if (await this.store.files.get(b.inputFileId)) throw unreadable;
      return this.toFinalizing(b, 'failed', [inputFileGone(b)]); // deleted while it was read: the lines done are kept
    }
    if (this.stopping) return; // the lines not recorded run at the next start
    const now = await this.store.batches.get(b.id);
    if (!now || now.status !== 'in_progress') return; // cancelled meanwhile
    if (a.reason === 'expire' || nowSeconds() >= now.expiresAt) return this.toFinalizing(now, 'expired');
    if (now.counts.completed + now.counts.failed >= now.counts.total) return this.toFinalizing(now, 'completed');
  }

  /** Serves one line and records its answer; a line stopped by cancel, expiry or shutdown is not recorded. */
  private async runLine(b: BatchRecord, raw: RawLine, endpoint: LineEndpoint, serving: LineServing, signal: AbortSignal): Promise<void> {
    const p = parseLine(raw, b.endpoint, serving);
    let customId: string;
    let answer: LineAnswer;
    if ('customId' in p) {
      customId = p.customId;
      answer = await endpoint.run(p.body, signal);
      if (signal.aborted) return;
    } else {
      // Validated before it ran: only a limit lowered across a restart (--max-body-size, --max-json-depth) gets here.
      customId = bestCustomId(raw);
      answer = { status: 400, body: { error: { message: p.message, type: 'invalid_request_error', param: p.param, code: p.code } } };
    }
    if (answer.status >= 500) this.deps.log.error({ batch: b.id, line: raw.line, status: answer.status, body: answer.body }, 'batch line failed');
    const kind: ResultKind = answer.status === 200 ? 'output' : 'error';
    const text = JSON.stringify({ id: newId('batch_req_'), custom_id: customId, response: { status_code: answer.status, request_id: newId('req_'), body: answer.body }, error: null });
    await this.store.batches.recordResult(b.id, raw.line, kind, text, kind === 'output' ? answer.usage : undefined);
  }

  private async toFinalizing(b: BatchRecord, outcome: BatchOutcome, errors?: BatchError[]): Promise<void> {
    await this.store.batches.transition(b.id, ['in_progress'], 'finalizing', {
      outcome,
      finalizingAt: nowSeconds(),
      outputFileId: this.store.files.newFileId(),
      errorFileId: this.store.files.newFileId(),
      ...(errors ? { errors } : {}),
    });
  }

  // ---------------------------------------------------------------- finalizing

  /** Writes the output and error files from the recorded lines (again, after an interruption: a file already written is kept) and ends the batch. */
  private async finalize(b: BatchRecord): Promise<void> {
    const outcome: BatchOutcome = b.outcome ?? (b.status === 'cancelling' ? 'cancelled' : 'completed');
    if (outcome === 'expired') await this.recordExpired(b);
    const outputFileId = b.outputFileId && (await this.writeFile(b, 'output', b.outputFileId));
    const errorFileId = b.errorFileId && (await this.writeFile(b, 'error', b.errorFileId));
    const at = nowSeconds();
    const stamp = { completed: { completedAt: at }, expired: { expiredAt: at }, cancelled: { cancelledAt: at }, failed: { failedAt: at } }[outcome];
    const done = await this.store.batches.transition(b.id, [b.status], outcome, { ...stamp, outputFileId: outputFileId || null, errorFileId: errorFileId || null });
    if (!done) return;
    await this.store.batches.dropResults(b.id);
    const { completed, failed, total } = done.counts;
    this.deps.log.info({ batch: b.id, status: outcome, completed, failed, total }, `batch ${b.id} ${outcome}: ${completed} completed, ${failed} failed of ${total}`);
  }

  /** OpenAI's answer for the lines an expired batch did not run: an error line each, with no response. */
  private async recordExpired(b: BatchRecord): Promise<void> {
    const file = await this.store.files.get(b.inputFileId);
    if (!file || !this.serving) return;
    const recorded = await this.store.batches.recordedLines(b.id);
    for await (const raw of readLines(this.store.files.content(file), this.serving.maxBodyBytes + ENVELOPE_BYTES)) {
      if (recorded.has(raw.line)) continue;
      const error = { code: 'batch_expired', message: 'This request could not be executed before the completion window expired.' };
      await this.store.batches.recordResult(b.id, raw.line, 'error', JSON.stringify({ id: newId('batch_req_'), custom_id: bestCustomId(raw), response: null, error }));
    }
  }

  /** The file of one kind of recorded lines, under its reserved id; null when there are none. */
  private async writeFile(b: BatchRecord, kind: ResultKind, id: string): Promise<string | null> {
    if (await this.store.files.get(id)) return id;
    if ((await this.store.batches.countResults(b.id, kind)) === 0) return null;
    const lines = this.store.batches.results(b.id, kind);
    async function* chunks(): AsyncGenerator<Buffer> {
      let parts: string[] = [];
      let size = 0;
      for await (const text of lines) {
        parts.push(text, '\n');
        size += text.length + 1;
        if (size >= WRITE_CHUNK) {
          yield Buffer.from(parts.join(''));
          parts = [];
          size = 0;
        }
      }
      if (parts.length > 0) yield Buffer.from(parts.join(''));
    }
    await this.store.files.createFrom(chunks(), { id, filename: `${b.id}_${kind}.jsonl`, purpose: 'batch_output', expiresAfterSeconds: b.outputExpiresAfter ?? undefined });
    return id;
  }

  // ---------------------------------------------------------------- control

  /** validating or in_progress → cancelling: lines in flight are stopped, the ones finished are kept (the output file). */
  async cancel(id: string): Promise<BatchRecord | undefined> {
    const b = await this.store.batches.transition(id, ['validating', 'in_progress'], 'cancelling', {
      outcome: 'cancelled',
      cancellingAt: nowSeconds(),
      outputFileId: this.store.files.newFileId(),
      errorFileId: this.store.files.newFileId(),
    });
    if (!b) return undefined;
    this.stalled.delete(id);
    const a = this.active.get(id);
    if (a) {
      a.reason ??= 'cancel';
      a.lines.abort();
    } else this.pump();
    return b;
  }

  /** Running batches past their window stop their lines (they end expired). */
  private checkExpiry(): void {
    const now = nowSeconds();
    for (const a of this.active.values()) {
      if (a.expiresAt <= now && !a.lines.signal.aborted) {
        a.reason ??= 'expire';
        a.lines.abort();
      }
    }
  }

  /** At the start of shutdown: no new line starts; lines in flight go on until close(). */
  stop(): void {
    this.stopping = true;
  }

  /** Stops the lines in flight (they are not recorded: they run again at the next start) and waits for the batches to let go. */
  async close(): Promise<void> {
    this.stopping = true;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    for (const a of this.active.values()) {
      a.reason ??= 'close';
      a.lines.abort();
    }
    await Promise.race([Promise.allSettled([...this.active.values()].map((a) => a.done)), new Promise((r) => setTimeout(r, 10_000).unref())]);
  }
}

function inputFileGone(b: BatchRecord): BatchError {
  return { code: 'input_file_unavailable', message: `The input file ${b.inputFileId} no longer exists.`, param: 'input_file_id', line: null };
}

/** A line's custom_id when it can be read, for the error line of a line that could not be served. */
function bestCustomId(raw: RawLine): string {
  try {
    const v = JSON.parse(raw.text ?? '') as { custom_id?: unknown };
    return typeof v.custom_id === 'string' ? v.custom_id : '';
  } catch {
    return '';
  }
}

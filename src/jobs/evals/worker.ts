/**
 * Eval runs as a state machine on the store:
 *
 *   queued → in_progress → completed | failed | canceled
 *
 * Every transition is written to the store (a conditional update) before it
 * takes effect, and this module is the only one that makes them. When a
 * run's turn comes (--max-eval-runs at once, oldest first), the worker gives
 * every item of its data source a row (status pending), then grades the
 * pending items, --eval-concurrency at a time (evals/executor.ts), writing
 * each result with the run's counters as it finishes.
 *
 * A graceful stop puts the runs it interrupts back in the queue. After a crash
 * (SIGKILL included) a run found in_progress is queued again and resumes with
 * the items still pending; one interrupted MAX_ATTEMPTS times fails with that
 * reason. No run is left in_progress without a worker on it.
 */
import { QueuePasses } from '../queue-passes.ts';
import { setMaxListeners } from 'node:events';
import type { Logger } from 'pino';
import type { RunDataSource } from '../../protocol/evals.ts';
import { forEachConcurrent, gradeRunItem, RunTally, type ExecutorSettings } from '../../evals/executor.ts';
import type { Criterion, GradingDeps } from '../../evals/graders.ts';
import { criterionModel } from '../../evals/graders.ts';
import type { ItemSchemaLimits } from '../../evals/item-schema.ts';
import { parseItemLine, planRun, type RunPlan, type StoredDataSourceConfig } from '../../evals/run-plan.ts';
import type { ItemSource, RunRecord, RunStatus } from '../../store/evals.ts';
import type { Store } from '../../store/store.ts';

export interface EvalWorkerSettings {
  /** Runs graded at once. */
  maxRuns: number;
  /** Items of one run in flight at once. */
  concurrency: number;
  /** Items one run may have. */
  maxItems: number;
  /** Bytes of one item's JSON (a line of a file, an entry of file_content). */
  maxItemBytes: number;
  itemSchema: ItemSchemaLimits;
  executor: ExecutorSettings;
}

export interface EvalWorkerDeps {
  store: Store;
  settings: EvalWorkerSettings;
  grading: GradingDeps;
  /** Whether a model of that name is served (configured or stored). */
  modelExists(name: string): Promise<boolean>;
  log: Logger;
}

const MAX_ATTEMPTS = 3;
const ACTIVE: readonly RunStatus[] = ['queued', 'in_progress'];
/** Items written in one transaction while a data source is read: at most this many, or this many bytes of JSON. */
const INSERT_CHUNK = 500;
const INSERT_CHUNK_BYTES = 8 << 20;

class RunFailure extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

interface Active {
  abort: AbortController;
  done: Promise<void>;
  /** Why it was stopped from outside. */
  stop?: 'cancel' | 'close';
}

export class EvalRunWorker {
  private readonly active = new Map<string, Active>();
  private closed = false;
  private readonly passes = new QueuePasses(
    () => this.tick(),
    (e) => this.deps.log.error({ err: e }, 'eval worker failed to schedule runs'),
    () => this.closed,
  );
  /** Nothing runs before start(): the models runs use are loaded by then, and runs a crash left are recovered first. */
  private started = false;

  constructor(private readonly deps: EvalWorkerDeps) {}

  private get repo() {
    return this.deps.store.evals;
  }

  /** At start: runs a previous process left in_progress are queued again (or failed, past MAX_ATTEMPTS); then the queue runs. */
  async start(): Promise<void> {
    for (const run of await this.repo.runsWithStatus(['in_progress'])) {
      if (run.attempts >= MAX_ATTEMPTS) {
        await this.fail(run.id, ['in_progress'], 'interrupted', `The run was interrupted ${run.attempts} times (the server stopped while it ran) and is not retried again.`);
        continue;
      }
      if (await this.repo.transitionRun(run.id, ['in_progress'], 'queued')) {
        this.deps.log.warn({ run: run.id, attempts: run.attempts }, 'eval run interrupted by a restart: queued to resume with its pending items');
      }
    }
    this.started = true;
    this.notify();
  }

  notify(): void {
    if (!this.started) return;
    this.passes.notify();
  }

  private async tick(): Promise<void> {
    for (const run of await this.repo.runsWithStatus(['queued'])) {
      if (this.closed || this.active.size >= this.deps.settings.maxRuns) return;
      if (this.active.has(run.id)) continue;
      const a: Active = { abort: new AbortController(), done: Promise.resolve() };
      // Every item in flight listens to the run's signal (its generation, its graders' calls).
      setMaxListeners(8 * this.deps.settings.concurrency + 16, a.abort.signal);
      this.active.set(run.id, a);
      a.done = this.execute(run, a)
        .catch(async (e) => {
          if (a.abort.signal.aborted) return this.stopped(run.id, a);
          this.deps.log.error({ err: e, run: run.id }, 'eval run failed');
          const failure = e instanceof RunFailure ? e : new RunFailure('server_error', `The server could not run the eval: ${(e as Error).message}`);
          await this.fail(run.id, ['in_progress'], failure.code, failure.message).catch(() => {});
        })
        .finally(() => {
          this.active.delete(run.id);
          this.notify();
        });
    }
  }

  private async execute(queued: RunRecord, a: Active): Promise<void> {
    const run = await this.repo.transitionRun(queued.id, ['queued'], 'in_progress', { attempts: queued.attempts + 1 });
    if (!run) return; // canceled meanwhile
    const ev = await this.repo.getEval(run.evalId);
    if (!ev) throw new RunFailure('eval_not_found', `The eval ${run.evalId} no longer exists.`);
    const ds = run.dataSource as RunDataSource;
    const criteria = ev.testingCriteria as Criterion[];
    let plan: RunPlan;
    try {
      plan = planRun(ev.dataSourceConfig as StoredDataSourceConfig, criteria, ds, this.deps.settings.itemSchema);
    } catch (e) {
      throw new RunFailure('invalid_eval', (e as Error).message);
    }
    const runModel = ds.type === 'completions' ? ds.model : undefined;
    for (const m of new Set([runModel, ...criteria.map((c) => criterionModel(c, runModel))])) {
      if (m && !(await this.deps.modelExists(m))) throw new RunFailure('model_not_found', `The model ${m} is not served (any more).`);
    }
    if (!run.itemsReady) await this.readItems(run, ds, a.abort.signal);
    if (a.abort.signal.aborted) return this.stopped(run.id, a);
    await this.grade(run, plan, a.abort.signal);
    if (a.abort.signal.aborted) return this.stopped(run.id, a);
    await this.repo.transitionRun(run.id, ['in_progress'], 'completed');
  }

  /** A run stopped from outside: a cancel has done the rest; a graceful stop puts it back in the queue, the attempt not counted. */
  private async stopped(runId: string, a: Active): Promise<void> {
    if (a.stop !== 'close') return;
    const run = await this.repo.runById(runId);
    if (run) await this.repo.transitionRun(runId, ['in_progress'], 'queued', { attempts: Math.max(0, run.attempts - 1) });
  }

  // ---------------------------------------------------------------- items

  /** Gives every item of the data source its row (read again from the start if an earlier attempt stopped halfway). */
  private async readItems(run: RunRecord, ds: RunDataSource, signal: AbortSignal): Promise<void> {
    const { maxItems, maxItemBytes } = this.deps.settings;
    await this.repo.deleteItems(run.id);
    let chunk: Array<{ index: number; source: ItemSource | null; sourceError: string | null }> = [];
    let chunkBytes = 0;
    let index = 0;
    const add = async (entry: { source: ItemSource | null; sourceError: string | null }, bytes: number) => {
      if (index >= maxItems) throw new RunFailure('too_many_items', `The data source has more than ${maxItems} items (--eval-max-items).`);
      chunk.push({ index: index++, ...entry });
      chunkBytes += bytes;
      if (chunk.length >= INSERT_CHUNK || chunkBytes >= INSERT_CHUNK_BYTES) {
        await this.repo.addItems(run.id, run.evalId, chunk);
        chunk = [];
        chunkBytes = 0;
      }
    };
    if (ds.source.type === 'file_content') {
      for (const row of ds.source.content) {
        const bytes = Buffer.byteLength(JSON.stringify(row));
        if (bytes > maxItemBytes) await add({ source: null, sourceError: `the item is ${bytes} bytes of JSON; at most ${maxItemBytes} are read (--eval-max-item-bytes)` }, 0);
        else await add({ source: row.sample ? { item: row.item, sample: row.sample } : { item: row.item }, sourceError: null }, bytes);
      }
    } else {
      const file = await this.deps.store.files.get(ds.source.id);
      if (!file) throw new RunFailure('file_not_found', `The file ${ds.source.id} no longer exists.`);
      for await (const line of boundedLines(this.deps.store.files.content(file), maxItemBytes)) {
        signal.throwIfAborted();
        if (line === undefined) await add({ source: null, sourceError: `the line is longer than ${maxItemBytes} bytes (--eval-max-item-bytes)` }, 0);
        else if (line.trim() !== '') {
          const { source, error } = parseItemLine(line);
          await add({ source, sourceError: error }, Buffer.byteLength(line));
        }
      }
    }
    await this.repo.addItems(run.id, run.evalId, chunk);
    await this.repo.updateRun(run.id, { itemsReady: true });
  }

  private async grade(run: RunRecord, plan: RunPlan, signal: AbortSignal): Promise<void> {
    const repo = this.repo;
    const tally = new RunTally(plan.criteria, run);
    // Items are read a page at a time, about as many as are in flight: what is held is bounded by concurrency × item size.
    const pageSize = Math.max(8, this.deps.settings.concurrency);
    async function* pending() {
      let after = 0;
      for (;;) {
        if (signal.aborted) return;
        const page = await repo.pendingItems(run.id, after, pageSize);
        if (page.length === 0) return;
        yield* page;
        after = page[page.length - 1].seq;
      }
    }
    // Results are written one after another, each with the counters it leads to.
    let writes: Promise<unknown> = Promise.resolve();
    await forEachConcurrent(pending(), this.deps.settings.concurrency, async (item) => {
      if (signal.aborted) return;
      let outcome;
      try {
        outcome = await gradeRunItem(plan, item, this.deps.grading, this.deps.settings.executor, signal);
      } catch (e) {
        if (signal.aborted) return; // left pending: a later attempt grades it
        throw e;
      }
      const write = writes.then(() => repo.finishItem(run.id, item.id, { status: outcome.status, sample: outcome.sample, results: outcome.results }, tally.add(outcome)));
      writes = write.catch(() => {});
      await write;
    });
    await writes;
  }

  // ---------------------------------------------------------------- control

  /** Cancels a queued or running run: its in-flight items stop, its pending items are dropped. Undefined when it had finished. */
  async cancel(runId: string): Promise<RunRecord | undefined> {
    const run = await this.repo.transitionRun(runId, ACTIVE, 'canceled');
    if (!run) return undefined;
    const a = this.active.get(runId);
    if (a) {
      a.stop = 'cancel';
      a.abort.abort();
      await a.done;
    }
    await this.repo.deleteItems(runId, 'pending');
    return (await this.repo.runById(runId)) ?? run;
  }

  /** At shutdown: in-flight items stop and are left pending; their runs go back to the queue and resume at the next start. */
  async close(): Promise<void> {
    this.closed = true;
    for (const a of this.active.values()) {
      a.stop ??= 'close';
      a.abort.abort();
    }
    await Promise.allSettled([...this.active.values()].map((a) => a.done));
  }

  private async fail(id: string, from: readonly RunStatus[], code: string, message: string): Promise<void> {
    if (await this.repo.transitionRun(id, from, 'failed', { error: { code, message } })) this.deps.log.warn({ run: id, code }, `eval run failed: ${message}`);
  }
}

/**
 * A stream's lines (without their "\n"), each at most `maxBytes`: a longer
 * line is skipped as it streams, never held, and yields undefined in its place.
 */
export async function* boundedLines(source: AsyncIterable<Buffer | string>, maxBytes: number): AsyncGenerator<string | undefined> {
  let parts: Buffer[] = [];
  let size = 0;
  let tooLong = false;
  for await (const chunk of source) {
    let buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    for (;;) {
      const nl = buf.indexOf(10);
      const piece = nl === -1 ? buf : buf.subarray(0, nl);
      if (!tooLong) {
        size += piece.length;
        if (size > maxBytes) {
          tooLong = true;
          parts = [];
        } else parts.push(piece);
      }
      if (nl === -1) break;
      yield tooLong ? undefined : Buffer.concat(parts).toString('utf8').replace(/\r$/, '');
      parts = [];
      size = 0;
      tooLong = false;
      buf = buf.subarray(nl + 1);
    }
  }
  if (tooLong) yield undefined;
  else if (size > 0) yield Buffer.concat(parts).toString('utf8').replace(/\r$/, '');
}

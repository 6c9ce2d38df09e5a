/**
 * Fine-tuning jobs as a state machine on the store:
 *
 *   validating_files → queued → running → succeeded | failed | cancelled
 *                        ↕ paused ↕
 *
 * Every transition is written to the store (a conditional update: only from
 * the statuses it names) before it takes effect, and this module is the only
 * one that makes them. The worker checks a job's files and prepares its data,
 * runs its trainer (kit/mmrec/finetune.py, trainer.ts) when its turn comes
 * (--max-training-jobs at once, oldest first), turns the trainer's progress
 * into events and checkpoints (each scored on the validation file by the
 * served graph: engine/scoring.ts) and publishes the result as a model.
 *
 * After a restart (even SIGKILL) a job found `running` has no trainer: it is
 * queued again and its trainer resumes from the last state it saved
 * (resume.pt, written at every checkpoint and on pause); a job that keeps being
 * interrupted fails with that reason after MAX_ATTEMPTS.
 */
import { QueuePasses } from '../queue-passes.ts';
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { readDataset } from '../../chat/dataset.ts';
import { ChatTemplate } from '../../chat/template.ts';
import { ChatTokenizer } from '../../chat/tokenizer.ts';
import type { ScoreRequest, ScoreResult } from '../../engine/types.ts';
import type { Method, ResolvedHyperparameters, TrainedPart, Hyperparameters } from '../../protocol/fine-tuning.ts';
import type { ServedModel } from '../../serving/registry.ts';
import type { JobRecord, JobStatus } from '../../store/fine-tuning.ts';
import type { Store } from '../../store/store.ts';
import { summarizeScores } from '../../evals/teacher-forcing.ts';
import type { PythonFound, PythonMissing } from '../python.ts';
import { resolveHyperparameters, totalSteps } from './hyperparameters.ts';
import { TrainerProcess, type TrainerEvent } from './trainer.ts';
import { describeProblems, prepareTrainingData } from './training-data.ts';

/** The method as stored with the job: the request's, normalised. */
export interface StoredMethod {
  type: 'supervised';
  hyperparameters: Hyperparameters;
  train: TrainedPart;
}

export type Job = JobRecord<StoredMethod, ResolvedHyperparameters>;

/** What the worker needs to know of a model to fine-tune it. */
export interface BaseModel {
  id: string;
  /** Its directory (a graph, or a state-tuned model's directory). */
  dir: string;
  contextLength: number;
  tokenizer: { encoding: string; special_tokens: Record<string, number> };
  vocabSize: number;
  /** The model at the root of its fine-tuning lineage (what `ft:<base>:…` names carry). */
  rootName: string;
}

export interface FineTuningSettings {
  /** Jobs training at once. */
  maxJobs: number;
  /** Torch threads of a trainer. */
  threads: number;
  /** Added to a trainer's niceness: serving comes first. */
  niceness: number;
  kitDir: string;
  /** OpenAI's organization_id, and the owner part of fine-tuned model names. */
  organization: string;
  /** Checkpoints kept per job (the newest). */
  keepCheckpoints: number;
  /** Validation examples scored at each checkpoint (valid_loss); all of them at the end (full_valid_loss). */
  validSample: number;
}

export interface WorkerDeps {
  store: Store;
  settings: FineTuningSettings;
  python: () => Promise<PythonFound | PythonMissing>;
  /** The base model of a job, or undefined when no served model has that name. */
  describeModel(id: string): Promise<BaseModel | undefined>;
  /** A model directory loaded to be scored (closed by the caller when done). */
  loadForScoring(dir: string): Promise<ServedModel>;
  /** A model was published or deleted: the registry forgets what it knew. */
  modelsChanged(id: string): void;
  log: Logger;
}

const MAX_ATTEMPTS = 3;
const NOT_FINISHED: readonly JobStatus[] = ['validating_files', 'queued', 'running', 'paused'];

interface Running {
  trainer?: TrainerProcess;
  /** What stopped it from outside: a cancel or a pause. */
  stop?: 'cancel' | 'pause';
  abort: AbortController;
}

export class FineTuningWorker {
  private readonly running = new Map<string, Running>();
  private closed = false;
  private readonly passes = new QueuePasses(
    () => this.tick(),
    (e) => this.deps.log.error({ err: e }, 'fine-tuning worker failed to schedule jobs'),
    () => this.closed,
  );

  constructor(private readonly deps: WorkerDeps) {}

  private get store(): Store {
    return this.deps.store;
  }

  /** At start: jobs a previous process left `running` or `validating_files` are taken up again; then the queue runs. */
  async start(): Promise<void> {
    for (const job of (await this.store.fineTuning.withStatus(['running'])) as Job[]) {
      if (job.attempts >= MAX_ATTEMPTS) {
        await this.fail(job.id, ['running'], 'interrupted', `The job was interrupted ${job.attempts} times (the server stopped while it trained) and is not retried again.`);
        continue;
      }
      const resumable = existsSync(join(this.trainerDir(job.id), 'resume.pt'));
      const next = job.pauseRequested && resumable ? 'paused' : 'queued';
      if (await this.store.fineTuning.transition(job.id, ['running'], next, { pauseRequested: false })) {
        await this.event(job.id, 'warn', resumable ? `The server restarted while the job was training; it will resume from its last saved step.` : 'The server restarted while the job was training; it will start again.');
      }
    }
    this.notify();
  }

  /** Something changed (a new job, a resume, a job that ended): look at the queue. */
  notify(): void {
    this.passes.notify();
  }

  private async tick(): Promise<void> {
    for (const job of (await this.store.fineTuning.withStatus(['validating_files'])) as Job[]) {
      if (!this.running.has(job.id)) this.track(job.id, (r) => this.validate(job, r));
    }
    let training = [...this.running.values()].filter((r) => r.trainer).length;
    for (const job of (await this.store.fineTuning.withStatus(['queued'])) as Job[]) {
      if (training >= this.deps.settings.maxJobs) break;
      if (this.running.has(job.id)) continue;
      training++;
      this.track(job.id, (r) => this.train(job, r));
    }
  }

  /** Runs one job's step of work, keeping it in `running` meanwhile; a fault fails the job rather than the worker. */
  private track(id: string, work: (r: Running) => Promise<void>): void {
    const r: Running = { abort: new AbortController() };
    this.running.set(id, r);
    void work(r)
      .catch(async (e) => {
        this.deps.log.error({ err: e, job: id }, 'fine-tuning job failed');
        await this.fail(id, ['validating_files', 'queued', 'running'], 'server_error', `The server could not run the job: ${(e as Error).message}`).catch(() => {});
      })
      .finally(() => {
        this.running.delete(id);
        this.notify();
      });
  }

  // ---------------------------------------------------------------- validation

  private async validate(job: Job, r: Running): Promise<void> {
    const base = await this.deps.describeModel(job.model);
    if (!base) return this.fail(job.id, ['validating_files'], 'model_not_found', `The model ${job.model} is no longer served.`, 'model');
    const python = await this.deps.python();
    if (!python.ok) return this.fail(job.id, ['validating_files'], 'trainer_unavailable', `Fine-tuning is not available on this server: ${python.reason}`);
    const template = new ChatTemplate(new ChatTokenizer(base.tokenizer));
    const spec = { ...base.tokenizer, vocab_size: base.vocabSize };
    const dir = this.store.jobDir(job.id);
    const files: Array<[string, string, 'training_file' | 'validation_file']> = [[job.trainingFile, 'train.mmrecds', 'training_file']];
    if (job.validationFile) files.push([job.validationFile, 'valid.mmrecds', 'validation_file']);
    let examples = 0;
    let longest = 0;
    for (const [fileId, name, param] of files) {
      const file = await this.store.files.get(fileId);
      if (!file) return this.fail(job.id, ['validating_files'], 'file_not_found', `The file ${fileId} no longer exists.`, param);
      await this.event(job.id, 'info', `Validating ${param === 'training_file' ? 'training' : 'validation'} file: ${fileId}`);
      const data = await prepareTrainingData(this.store.files.content(file), template, { contextLength: base.contextLength, outPath: join(dir, name), spec, signal: r.abort.signal });
      if (data.badLines > 0 || data.conversations === 0) {
        return this.fail(job.id, ['validating_files'], param === 'training_file' ? 'invalid_training_file' : 'invalid_validation_file', describeProblems(fileId, data), param);
      }
      if (param === 'training_file') examples = data.conversations;
      longest = Math.max(longest, data.longest);
      await this.event(job.id, 'info', `${fileId}: ${data.conversations} examples, ${data.tokens} tokens, ${data.trainedTokens} to train on.`);
    }
    const hyperparameters = resolveHyperparameters(job.method.hyperparameters, examples);
    const moved = await this.store.fineTuning.transition(job.id, ['validating_files'], job.pauseRequested ? 'paused' : 'queued', {
      hyperparameters: { ...hyperparameters },
      pauseRequested: false,
    });
    if (!moved) return; // cancelled meanwhile
    writeFileSync(join(dir, 'lengths.json'), JSON.stringify({ longest, examples }));
    await this.event(job.id, 'info', `Files validated: ${examples} examples, ${hyperparameters.n_epochs} epochs of batch size ${hyperparameters.batch_size} (${totalSteps(hyperparameters, examples)} steps), learning rate multiplier ${hyperparameters.learning_rate_multiplier}. Moving job to ${moved.status}.`);
  }

  // ---------------------------------------------------------------- training

  private trainerDir(jobId: string): string {
    return join(this.store.jobDir(jobId), 'trainer');
  }

  private async train(queued: Job, r: Running): Promise<void> {
    const python = await this.deps.python();
    if (!python.ok) return this.fail(queued.id, ['queued'], 'trainer_unavailable', `Fine-tuning is not available on this server: ${python.reason}`);
    const base = await this.deps.describeModel(queued.model);
    if (!base) return this.fail(queued.id, ['queued'], 'model_not_found', `The model ${queued.model} is no longer served.`, 'model');
    const job = (await this.store.fineTuning.transition(queued.id, ['queued'], 'running', { attempts: queued.attempts + 1 })) as Job | undefined;
    if (!job || !job.hyperparameters) return;
    const dir = this.store.jobDir(job.id);
    const outDir = this.trainerDir(job.id);
    const resume = existsSync(join(outDir, 'resume.pt'));
    const { longest } = JSON.parse(readFileSync(join(dir, 'lengths.json'), 'utf8')) as { longest: number };
    const name = this.modelName(job, base);
    await this.event(job.id, 'info', resume ? 'Fine-tuning job resumed.' : 'Fine-tuning job started.');
    const valid: ScoreRequest[] = job.validationFile ? readDataset(join(dir, 'valid.mmrecds')) : [];
    const progress = new Progress();
    let finished: Extract<TrainerEvent, { event: 'finished' }> | undefined;
    let paused = false;
    const pending: Array<Promise<void>> = [];
    const trainer = new TrainerProcess(
      {
        python: python.path,
        kitDir: this.deps.settings.kitDir,
        baseModelDir: base.dir,
        trainPath: join(dir, 'train.mmrecds'),
        outDir,
        method: job.method.train === 'initial_state' ? 'state' : 'full',
        epochs: job.hyperparameters.n_epochs,
        batchSize: job.hyperparameters.batch_size,
        learningRateMultiplier: job.hyperparameters.learning_rate_multiplier,
        seed: job.seed,
        threads: this.deps.settings.threads,
        maxLength: longest,
        modelId: name,
        resume,
        niceness: this.deps.settings.niceness,
      },
      (e) => {
        // Events are handled in order, each after the one before (they write to the store).
        const previous = pending.pop() ?? Promise.resolve();
        pending.push(
          previous.then(async () => {
            if (e.event === 'step') await this.onStep(job, e, progress, dir);
            else if (e.event === 'started') progress.started(e);
            else if (e.event === 'checkpoint') await this.onCheckpoint(job, e, progress, valid, name);
            else if (e.event === 'paused') paused = true;
            else if (e.event === 'finished') finished = e;
          }),
        );
      },
    );
    r.trainer = trainer;
    const exit = await trainer.exited;
    await (pending.pop() ?? Promise.resolve());
    r.trainer = undefined;
    if (r.stop === 'cancel') return; // cancel() has done the rest
    if (paused || r.stop === 'pause') {
      if (await this.store.fineTuning.transition(job.id, ['running'], 'paused', { pauseRequested: false })) {
        await this.event(job.id, 'info', `Fine-tuning job paused at step ${progress.step}.`);
      }
      return;
    }
    if (exit.code !== 0 || !finished) {
      if (this.closed && exit.signal) return; // the server is stopping: the job stays running, and resumes at the next start
      return this.fail(job.id, ['running'], 'trainer_failed', `The trainer failed: ${exit.error ?? `exit ${exit.code ?? exit.signal}`}`);
    }
    await this.publish(job, finished, progress, valid, name, base);
  }

  private async onStep(job: Job, e: Extract<TrainerEvent, { event: 'step' }>, progress: Progress, dir: string): Promise<void> {
    progress.stepped(e);
    appendFileSync(join(dir, 'metrics.csv'), `${e.step},${e.train_loss},${e.train_mean_token_accuracy},,\n`);
    if (progress.shouldReport(e.step)) {
      await this.store.fineTuning.update(job.id, { trainedTokens: e.trained_tokens, estimatedFinish: progress.estimatedFinish() });
      await this.store.fineTuning.addEvent(job.id, {
        level: 'info',
        type: 'metrics',
        message: `Step ${e.step}/${progress.total}: training loss=${e.train_loss.toFixed(4)}`,
        data: { step: e.step, train_loss: e.train_loss, train_mean_token_accuracy: e.train_mean_token_accuracy, total_steps: progress.total },
      });
    }
  }

  private async onCheckpoint(job: Job, e: Extract<TrainerEvent, { event: 'checkpoint' }>, progress: Progress, valid: ScoreRequest[], name: string): Promise<void> {
    const metrics: Record<string, number> = { step: e.step, ...progress.trainMetrics() };
    if (valid.length > 0) {
      const scores = await this.score(e.model_dir, valid.slice(0, this.deps.settings.validSample));
      metrics.valid_loss = scores.loss;
      metrics.valid_mean_token_accuracy = scores.accuracy;
      appendFileSync(join(this.store.jobDir(job.id), 'metrics.csv'), `${e.step},,,${scores.loss},${scores.accuracy}\n`);
    }
    const checkpointName = `${name}:ckpt-step-${e.step}`;
    const { removed } = await this.store.addCheckpoint({ jobId: job.id, stepNumber: e.step, metrics, name: checkpointName, absoluteDir: e.model_dir }, this.deps.settings.keepCheckpoints);
    for (const c of removed) this.deps.modelsChanged(c.name);
    await this.store.fineTuning.addEvent(job.id, { level: 'info', type: 'metrics', message: `Checkpoint created at step ${e.step}: ${checkpointName}`, data: metrics });
  }

  private async publish(job: Job, finished: Extract<TrainerEvent, { event: 'finished' }>, progress: Progress, valid: ScoreRequest[], name: string, base: BaseModel): Promise<void> {
    const final: Record<string, number> = { step: finished.step, ...progress.trainMetrics() };
    if (valid.length > 0) {
      const scores = await this.score(finished.model_dir, valid);
      final.full_valid_loss = scores.loss;
      final.full_valid_mean_token_accuracy = scores.accuracy;
    }
    const dir = this.store.jobDir(job.id);
    const resultFile = await this.store.files.createFrom(Readable.from([resultsCsv(join(dir, 'metrics.csv'), final)]), { filename: 'step_metrics.csv', purpose: 'fine-tune-results' });
    // Published before the job says so: a model the job names always exists.
    await this.store.publishModel(finished.model_dir, { id: name, ownedBy: this.deps.settings.organization, kind: 'fine-tuned', baseModel: base.id, jobId: job.id });
    this.deps.modelsChanged(name);
    const done = await this.store.fineTuning.transition(job.id, ['running'], 'succeeded', {
      fineTunedModel: name,
      finishedAt: Math.floor(Date.now() / 1000),
      trainedTokens: finished.trained_tokens,
      estimatedFinish: null,
      resultFiles: [resultFile.id],
    });
    if (!done) return;
    await this.store.fineTuning.addEvent(job.id, {
      level: 'info',
      type: 'metrics',
      message: `Training finished: ${finished.step} steps, ${finished.trained_tokens} tokens trained in ${finished.elapsed_s.toFixed(1)} s (${finished.tokens_per_s.toFixed(0)} tokens/s)`,
      data: { ...final, trained_tokens: finished.trained_tokens, elapsed_s: finished.elapsed_s, tokens_per_s: finished.tokens_per_s },
    });
    await this.event(job.id, 'info', `New fine-tuned model created: ${name}`);
    await this.event(job.id, 'info', 'The job has successfully completed');
  }

  /** Mean loss and token accuracy of a model directory on validation examples, by the served graph. */
  private async score(modelDir: string, requests: ScoreRequest[]): Promise<{ loss: number; accuracy: number }> {
    const model = await this.deps.loadForScoring(modelDir);
    let results: ScoreResult[];
    try {
      results = await model.engine.score!(requests);
    } finally {
      await model.engine.close();
    }
    // The same figures as the evals' perplexity and token accuracy (one definition: evals/teacher-forcing.ts).
    const s = summarizeScores(results);
    return { loss: s.loss, accuracy: s.meanTokenAccuracy };
  }

  /** OpenAI's naming: ft:<base>:<organization>:<suffix>:<job id>. */
  private modelName(job: Job, base: BaseModel): string {
    return `ft:${base.rootName}:${this.deps.settings.organization}:${job.suffix ?? ''}:${job.id}`;
  }

  // ---------------------------------------------------------------- control

  async cancel(id: string): Promise<Job | undefined> {
    const job = (await this.store.fineTuning.transition(id, NOT_FINISHED, 'cancelled', { finishedAt: Math.floor(Date.now() / 1000), estimatedFinish: null })) as Job | undefined;
    if (!job) return undefined;
    const r = this.running.get(id);
    if (r) {
      r.stop = 'cancel';
      r.abort.abort();
      r.trainer?.kill();
    }
    // Its checkpoints go with it, rows first, then its work directory once the trainer is gone.
    for (const c of await this.store.fineTuning.removeOldCheckpoints(id, 0)) this.deps.modelsChanged(c.name);
    const cleanup = async () => {
      await (r?.trainer?.exited ?? Promise.resolve());
      this.store.removeJobDir(id);
    };
    await cleanup();
    await this.event(id, 'info', 'Fine-tuning job cancelled.');
    return job;
  }

  /** Running: the trainer saves its state and stops (the status follows when it has). Queued or validating: paused at once, or once validated. */
  async pause(id: string): Promise<Job | undefined> {
    const queued = await this.store.fineTuning.transition(id, ['queued'], 'paused');
    if (queued) {
      await this.event(id, 'info', 'Fine-tuning job paused.');
      return queued as Job;
    }
    const job = (await this.store.fineTuning.get(id)) as Job | undefined;
    if (!job) return undefined;
    if (job.status === 'running' || job.status === 'validating_files') {
      await this.store.fineTuning.update(id, { pauseRequested: true });
      const r = this.running.get(id);
      if (r?.trainer) {
        r.stop = 'pause';
        r.trainer.pause();
      }
      return (await this.store.fineTuning.get(id)) as Job;
    }
    return job;
  }

  async resume(id: string): Promise<Job | undefined> {
    const job = await this.store.fineTuning.transition(id, ['paused'], 'queued', { pauseRequested: false });
    if (job) {
      await this.event(id, 'info', 'Fine-tuning job resumed: queued.');
      this.notify();
    }
    return job as Job | undefined;
  }

  /** For an exit that cannot wait: every trainer is killed (a job left running resumes from its last saved state at the next start). */
  killTrainers(): void {
    this.closed = true;
    for (const r of this.running.values()) r.trainer?.kill();
  }

  /** At shutdown: trainers are asked to save their state and stop; their jobs stay `running` and resume at the next start. */
  async close(): Promise<void> {
    this.closed = true;
    const exits = [...this.running.values()].map((r) => {
      r.abort.abort();
      r.trainer?.pause();
      return r.trainer?.exited;
    });
    await Promise.race([Promise.allSettled(exits), new Promise((r) => setTimeout(r, 10_000).unref())]);
  }

  private async fail(id: string, from: readonly JobStatus[], code: string, message: string, param: string | null = null): Promise<void> {
    const job = await this.store.fineTuning.transition(id, from, 'failed', { error: { code, message, param }, finishedAt: Math.floor(Date.now() / 1000), estimatedFinish: null });
    if (job) await this.event(id, 'error', message);
  }

  private async event(id: string, level: 'info' | 'warn' | 'error', message: string): Promise<void> {
    await this.store.fineTuning.addEvent(id, { level, type: 'message', message, data: null });
  }
}

/** What a running job knows of its trainer's progress. */
class Progress {
  total = 0;
  step = 0;
  private firstStep?: { step: number; at: number };
  private last?: { loss: number; accuracy: number };
  private every = 1;

  started(e: Extract<TrainerEvent, { event: 'started' }>): void {
    this.total = e.total_steps;
    // About a hundred metrics events per job, whatever its length.
    this.every = Math.max(1, Math.floor(e.total_steps / 100));
  }

  stepped(e: Extract<TrainerEvent, { event: 'step' }>): void {
    this.step = e.step;
    this.firstStep ??= { step: e.step, at: Date.now() };
    this.last = { loss: e.train_loss, accuracy: e.train_mean_token_accuracy };
  }

  shouldReport(step: number): boolean {
    return step === 1 || step === this.total || step % this.every === 0;
  }

  estimatedFinish(): number | null {
    if (!this.firstStep || this.step <= this.firstStep.step || this.total === 0) return null;
    const perStep = (Date.now() - this.firstStep.at) / (this.step - this.firstStep.step);
    return Math.floor((Date.now() + perStep * (this.total - this.step)) / 1000);
  }

  trainMetrics(): Record<string, number> {
    return this.last ? { train_loss: this.last.loss, train_mean_token_accuracy: this.last.accuracy } : {};
  }
}

/** OpenAI's results file: one row per step, the validation columns filled at the steps that were scored, the last row with the final figures. */
function resultsCsv(metricsPath: string, final: Record<string, number>): string {
  const rows = new Map<number, string[]>();
  if (existsSync(metricsPath)) {
    for (const line of readFileSync(metricsPath, 'utf8').split('\n')) {
      if (!line) continue;
      const [step, ...cols] = line.split(',');
      // A resumed run repeats the steps after its last saved state: the later figures win; validation columns merge in.
      const row = rows.get(Number(step)) ?? ['', '', '', ''];
      cols.forEach((c, i) => {
        if (c !== '') row[i] = c;
      });
      rows.set(Number(step), row);
    }
  }
  const header = 'step,train_loss,train_mean_token_accuracy,valid_loss,valid_mean_token_accuracy,full_valid_loss,full_valid_mean_token_accuracy';
  const body = [...rows.entries()].sort((a, b) => a[0] - b[0]).map(([step, cols]) => {
    const isLast = step === final.step;
    return [step, ...cols, isLast ? (final.full_valid_loss ?? '') : '', isLast ? (final.full_valid_mean_token_accuracy ?? '') : ''].join(',');
  });
  return [header, ...body].join('\n') + '\n';
}

export function normaliseMethod(method: Method | undefined, deprecated: Hyperparameters | undefined): StoredMethod {
  return {
    type: 'supervised',
    hyperparameters: method?.supervised?.hyperparameters ?? deprecated ?? {},
    train: method?.supervised?.train ?? 'weights',
  };
}

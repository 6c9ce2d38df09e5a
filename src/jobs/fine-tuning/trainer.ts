/**
 * The model kit's trainer (kit/mmrec/finetune.py) as a child process: spawned
 * with the job's arguments at a lower CPU priority, its JSON-lines progress
 * on stdout turned into typed events, its stderr kept (the tail) for the
 * error a failed run reports. Pausing sends SIGTERM (the trainer saves its
 * resumable state and exits 0); cancelling kills it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { setPriority } from 'node:os';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** The kit beside src/ (the project layout; the Docker image keeps it). */
export const DEFAULT_KIT_DIR = fileURLToPath(new URL('../../../kit', import.meta.url));

export type TrainerEvent =
  | { event: 'started'; total_steps: number; steps_per_epoch: number; epochs: number; examples: number; trained_tokens_per_epoch: number; resumed_from_step?: number }
  | { event: 'step'; step: number; epoch: number; train_loss: number; train_mean_token_accuracy: number; trained_tokens: number; elapsed_s: number; tokens_per_s: number }
  | { event: 'checkpoint'; step: number; epoch: number; model_dir: string; train_loss?: number; train_mean_token_accuracy?: number }
  | { event: 'paused'; step: number }
  | { event: 'finished'; step: number; model_dir: string; trained_tokens: number; elapsed_s: number; tokens_per_s: number };

export interface TrainerArgs {
  python: string;
  kitDir: string;
  baseModelDir: string;
  trainPath: string;
  outDir: string;
  method: 'full' | 'state';
  epochs: number;
  batchSize: number;
  learningRateMultiplier: number;
  seed: number;
  threads: number;
  maxLength: number;
  modelId: string;
  resume: boolean;
  /** Added to the process's niceness (lower priority than serving). */
  niceness: number;
}

export interface TrainerExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The trainer's own error line (`error: …`), or the last lines of its stderr. */
  error?: string;
}

const STDERR_TAIL = 40;

export class TrainerProcess {
  private readonly child: ChildProcess;
  private readonly stderr: string[] = [];
  readonly exited: Promise<TrainerExit>;

  constructor(args: TrainerArgs, onEvent: (e: TrainerEvent) => void) {
    const argv = [
      '-m', 'mmrec.finetune',
      '--base-model', args.baseModelDir,
      '--train', args.trainPath,
      '--out', args.outDir,
      '--method', args.method,
      '--epochs', String(args.epochs),
      '--batch-size', String(args.batchSize),
      '--learning-rate-multiplier', String(args.learningRateMultiplier),
      '--seed', String(args.seed),
      '--threads', String(args.threads),
      '--max-len', String(args.maxLength),
      '--model-id', args.modelId,
      // A trainer must not outlive the server: after a crash the restarted server starts the job's trainer again.
      '--die-with-parent',
    ];
    if (args.resume) argv.push('--resume');
    this.child = spawn(args.python, argv, {
      cwd: args.kitDir,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, OMP_NUM_THREADS: String(args.threads), MKL_NUM_THREADS: String(args.threads), PYTHONUNBUFFERED: '1' },
    });
    if (this.child.pid !== undefined && args.niceness > 0) {
      try {
        setPriority(this.child.pid, Math.min(19, args.niceness));
      } catch {
        // Not permitted here: the trainer runs at normal priority (its thread count still bounds it).
      }
    }
    const exitedRaw = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
      this.child.once('exit', (code, signal) => resolve({ code, signal }));
      this.child.once('error', (e) => {
        this.stderr.push(`error: cannot start ${args.python}: ${e.message}`);
        resolve({ code: null, signal: null });
      });
    });
    const stdoutDone = new Promise<void>((resolve) => {
      const rl = createInterface({ input: this.child.stdout! });
      rl.on('line', (line) => {
        let e: TrainerEvent;
        try {
          e = JSON.parse(line);
        } catch {
          this.keep(`(stdout) ${line}`);
          return;
        }
        if (e && typeof e === 'object' && typeof e.event === 'string') onEvent(e);
      });
      rl.once('close', resolve);
    });
    createInterface({ input: this.child.stderr! }).on('line', (line) => this.keep(line));
    this.exited = Promise.all([exitedRaw, stdoutDone]).then(([exit]) => ({ ...exit, error: exit.code === 0 ? undefined : this.errorText() }));
  }

  private keep(line: string): void {
    this.stderr.push(line);
    if (this.stderr.length > STDERR_TAIL) this.stderr.shift();
  }

  /** The trainer's `error: …` line if it wrote one, else the end of its stderr. */
  private errorText(): string {
    const own = [...this.stderr].reverse().find((l) => l.startsWith('error: '));
    if (own) return own.slice('error: '.length);
    const tail = this.stderr.filter((l) => l.trim() !== '').slice(-5).join(' | ');
    return tail || 'the trainer exited without saying why';
  }

  /** Ask it to save its state and stop (it answers with a `paused` event and exit 0). */
  pause(): void {
    this.child.kill('SIGTERM');
  }

  kill(): void {
    this.child.kill('SIGKILL');
  }
}

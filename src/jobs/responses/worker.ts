/**
 * Background responses (`background: true`): a state machine on the store,
 * generated beside HTTP. A route records the response `queued` and returns;
 * this worker moves the oldest queued ones to `in_progress` (at most
 * `maxInFlight` at once, the same bound the route puts on queued ones) and
 * runs them; the serving layer records how each ended (completed,
 * incomplete, failed, or cancelled when asked). At start, a response a
 * stopped process left `in_progress` is queued again and rerun, at most
 * `maxAttempts` times in all, then failed: never left in progress forever.
 */
import { QueuePasses } from '../queue-passes.ts';
import type { Store } from '../../store/store.ts';
import type { BackgroundRunner, ResponsesLog } from '../../serving/responses.ts';

export const DEFAULT_MAX_ATTEMPTS = 2;

export interface BackgroundWorkerOptions {
  store: Store;
  /** Generates one in_progress response and records how it ended (ResponsesServing.runBackground). */
  run: (id: string, signal: AbortSignal) => Promise<void>;
  maxInFlight: number;
  maxAttempts?: number;
  log?: ResponsesLog;
}

export class BackgroundResponses implements BackgroundRunner {
  readonly maxInFlight: number;
  private readonly running = new Map<string, { controller: AbortController; done: Promise<void> }>();
  private closed = false;
  private readonly passes = new QueuePasses(
    () => this.pump(),
    (e) => this.options.log?.warn({ err: (e as Error).message }, 'background responses: the queue could not be read'),
    () => this.closed,
  );

  constructor(private readonly options: BackgroundWorkerOptions) {
    this.maxInFlight = options.maxInFlight;
  }

  /** Recovers what a previous process left unfinished, then starts on the queue. */
  async start(): Promise<void> {
    const { store, log } = this.options;
    const maxAttempts = this.options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
    for (const r of await store.responses.withStatus(['in_progress'])) {
      if (r.attempts >= maxAttempts) {
        await store.responses.finish(r.id, ['in_progress'], {
          status: 'failed',
          completedAt: Math.floor(Date.now() / 1000),
          error: { code: 'server_error', message: `The server stopped while generating this response, ${r.attempts} times: it is not run again.` },
        }, []);
        log?.warn({ response: r.id, attempts: r.attempts }, 'background response failed: the server stopped during each of its runs');
      } else {
        await store.responses.transition(r.id, ['in_progress'], 'queued');
        log?.info({ response: r.id, attempts: r.attempts }, 'background response queued again: the server stopped while generating it');
      }
    }
    this.notify();
  }

  async inFlight(): Promise<number> {
    return (await this.options.store.responses.withStatus(['queued', 'in_progress'])).length;
  }

  notify(): void {
    this.passes.notify();
  }

  private async pump(): Promise<void> {
    const { store } = this.options;
    while (!this.closed && this.running.size < this.maxInFlight) {
      const next = (await store.responses.withStatus(['queued'])).find((r) => !this.running.has(r.id));
      if (!next) return;
      // Written before it takes effect: a cancel that wins here leaves nothing to run.
      if (!(await store.responses.transition(next.id, ['queued'], 'in_progress', { attempts: next.attempts + 1 }))) continue;
      const controller = new AbortController();
      const done = this.options
        .run(next.id, controller.signal)
        .catch((e) => this.options.log?.warn({ response: next.id, err: (e as Error).message }, 'background response could not be recorded'))
        .finally(() => {
          this.running.delete(next.id);
          this.notify();
        });
      this.running.set(next.id, { controller, done });
    }
  }

  async cancel(id: string): Promise<boolean> {
    const r = this.running.get(id);
    if (!r) return false;
    r.controller.abort('cancel');
    await r.done;
    return true;
  }

  /** Stops taking work and aborts what runs (it stays in_progress: the next start reruns it). */
  async close(): Promise<void> {
    this.closed = true;
    await this.passes.idle();
    for (const r of this.running.values()) r.controller.abort('shutdown');
    await Promise.allSettled([...this.running.values()].map((r) => r.done));
  }
}

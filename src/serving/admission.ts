/**
 * Admission control: at most `maxConcurrency` requests generate at once, at
 * most `maxQueue` wait for a slot, and the next one is refused at once with 429
 * rather than left to hang. A request is one slot whatever its n: its choices
 * run together.
 */
import { ApiError } from '../protocol/errors.ts';

interface Waiter {
  grant: () => void;
  reject: (e: unknown) => void;
}

export class Admission {
  private running = 0;
  private readonly waiting: Waiter[] = [];

  constructor(
    readonly maxConcurrency: number,
    readonly maxQueue: number,
  ) {}

  get stats() {
    return { running: this.running, waiting: this.waiting.length };
  }

  /**
   * Resolves with a release function once the request may run. Throws 429 when
   * the queue is full; rejects with the signal's reason if it aborts while waiting.
   */
  async acquire(signal?: AbortSignal): Promise<() => void> {
    signal?.throwIfAborted();
    if (this.running < this.maxConcurrency) {
      this.running++;
      return this.releaser();
    }
    if (this.waiting.length >= this.maxQueue) {
      throw ApiError.queueFull(`The server is busy: ${this.running} requests are running and ${this.waiting.length} are waiting. Retry later.`);
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        grant: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve(this.releaser());
        },
        reject,
      };
      const onAbort = () => {
        const i = this.waiting.indexOf(waiter);
        if (i !== -1) this.waiting.splice(i, 1);
        reject(signal!.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(waiter);
    });
  }

  private releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      // The slot passes straight to the next waiter, so `running` stays the same.
      if (next) next.grant();
      else this.running--;
    };
  }
}

/** How a request is run when it does not come from an HTTP client (batches, evaluations). */
export interface RunOptions {
  /** false: the caller bounds its own concurrency; the request takes no admission slot (and is never refused with 429). */
  admission?: boolean;
  /** 'background': the engine serves it in the rows interactive requests leave free. */
  priority?: 'interactive' | 'background';
}

/**
 * Admits a request (429 when the queue is full), then runs it; without an
 * admission (internal callers), it runs at once. A stream holds
 * its slot until it ends, or until the request signal aborts when the client
 * left before the first chunk was read; a plain response holds it while it is built.
 */
export async function admitAndRun<Body, Event>(
  admission: Admission | undefined,
  stream: boolean,
  signal: AbortSignal,
  run: { stream(release: () => void): AsyncIterable<Event>; complete(): Promise<Body> },
): Promise<{ stream: false; body: Body } | { stream: true; events: AsyncIterable<Event> }> {
  const release = admission ? await admission.acquire(signal) : () => {};
  if (stream) {
    signal.addEventListener('abort', release, { once: true });
    return { stream: true, events: run.stream(release) };
  }
  try {
    return { stream: false, body: await run.complete() };
  } finally {
    release();
  }
}

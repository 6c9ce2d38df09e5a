/**
 * "Something changed: look at the queue", for the workers whose queues live in
 * the store (fine-tuning jobs, eval runs, background responses). notify()
 * starts a pass over the queue unless one is running; a notify that arrives
 * during a pass makes one more pass after it (the change may have come too
 * late for the running one to see), never a second pass beside it, which
 * could start the same queued item twice.
 */
export class QueuePasses {
  private current?: Promise<void>;
  private again = false;

  constructor(
    private readonly pass: () => Promise<void>,
    /** A pass that throws: the error, logged by the worker; the next notify() tries again. */
    private readonly onError: (e: unknown) => void,
    /** Once true, no further pass starts (the worker is closing). */
    private readonly stopped: () => boolean,
  ) {}

  notify(): void {
    if (this.stopped()) return;
    if (this.current) {
      this.again = true;
      return;
    }
    this.current = (async () => {
      try {
        do {
          this.again = false;
          await this.pass();
        } while (this.again && !this.stopped());
      } catch (e) {
        this.onError(e);
      } finally {
        this.current = undefined;
      }
    })();
  }

  /** Resolves when no pass is running (a closing worker waits for the one in progress). */
  async idle(): Promise<void> {
    await this.current;
  }
}

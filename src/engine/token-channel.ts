/**
 * The `tokens` side of a Generation: the generation loop pushes, one consumer
 * pulls with for-await. Tokens buffer while the consumer is slow (at most
 * maxTokens of them). A consumer that stops early (break, return) cancels the
 * generation.
 */
export class TokenChannel<T> implements AsyncIterable<T> {
  private readonly buffered: T[] = [];
  private waiter?: { resolve(r: IteratorResult<T>): void; reject(e: unknown): void };
  private ended = false;
  private error?: unknown;
  private iterated = false;

  constructor(private readonly onCancel: () => void) {}

  push(value: T): void {
    if (this.ended) return;
    if (this.waiter) {
      this.waiter.resolve({ value, done: false });
      this.waiter = undefined;
    } else {
      this.buffered.push(value);
    }
  }

  close(): void {
    this.end();
  }

  fail(error: unknown): void {
    this.error = error;
    this.end();
  }

  private end(): void {
    if (this.ended) return;
    this.ended = true;
    if (!this.waiter) return;
    if (this.error !== undefined) this.waiter.reject(this.error);
    else this.waiter.resolve({ value: undefined, done: true });
    this.waiter = undefined;
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    if (this.iterated) throw new Error('a generation\'s tokens can be iterated once');
    this.iterated = true;
    return {
      next: () => {
        if (this.buffered.length > 0) return Promise.resolve({ value: this.buffered.shift()!, done: false });
        if (this.ended) {
          if (this.error === undefined) return Promise.resolve({ value: undefined, done: true });
          const error = this.error;
          this.error = undefined; // reported once; afterwards the iterator is simply done
          return Promise.reject(error);
        }
        return new Promise((resolve, reject) => (this.waiter = { resolve, reject }));
      },
      return: () => {
        this.buffered.length = 0;
        if (!this.ended) this.onCancel();
        this.ended = true;
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}

/**
 * Serialises the model steps of one model: one session.run at a time, in
 * arrival order. Every generation keeps at most one step queued and queues the
 * next only after sampling, so concurrent generations take turns step by step
 * and none starves.
 */
export class StepQueue {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(step: () => Promise<T>): Promise<T> {
    const result = this.tail.then(step);
    this.tail = result.catch(() => {}); // one failed step must not fail the ones behind it
    return result;
  }
}

/** Bounded concurrency with bounded look-ahead: producers (listing, DB scans) never run far ahead of workers. */
import pLimit, { type LimitFunction } from "p-limit";

export class BoundedQueue {
  private readonly limit: LimitFunction;
  private readonly inflight = new Set<Promise<void>>();

  constructor(
    concurrency: number,
    /** Tasks queued or running before `add` waits. */
    private readonly lookahead: number = concurrency * 4,
  ) {
    this.limit = pLimit(concurrency);
  }

  /** Queue a task, then wait while the queue is full. A failed task rejects this (or a later) add, or drain. */
  async add(task: () => Promise<void>): Promise<void> {
    const p: Promise<void> = this.limit(task).finally(() => this.inflight.delete(p));
    this.inflight.add(p);
    while (this.inflight.size >= this.lookahead) await Promise.race(this.inflight);
  }

  /**
   * Feed the queue (`feed` adds the tasks) and wait for every task. On a failure, in the feed or a task, the tasks
   * already queued settle before it is thrown: nothing runs on after its command has ended.
   */
  async run(feed: () => Promise<void>): Promise<void> {
    try {
      await feed();
      await this.drain();
    } catch (err) {
      await this.settle();
      throw err;
    }
  }

  /** Wait for every queued task; rejects with the first failure. */
  async drain(): Promise<void> {
    await Promise.all(this.inflight);
  }

  /** Wait for every queued task, whatever its outcome. */
  async settle(): Promise<void> {
    await Promise.allSettled(this.inflight);
  }
}

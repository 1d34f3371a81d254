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

  /** Wait for every queued task; rejects with the first failure. */
  async drain(): Promise<void> {
    await Promise.all(this.inflight);
  }

  /** Wait for every queued task, whatever its outcome. */
  async settle(): Promise<void> {
    await Promise.allSettled(this.inflight);
  }
}

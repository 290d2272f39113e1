/**
 * A keyed work queue, like client-go's: a key queued while being processed runs once more afterwards, never
 * twice at once; a failing key is retried with back-off (100 ms doubling to 5 s); `after` requeues later.
 */
import type { Logger } from "pino";

export class WorkQueue {
  private readonly pending = new Set<string>();
  private readonly running = new Set<string>();
  private readonly dirty = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private stopped = false;
  private scheduled = false;
  private readonly name: string;
  private readonly worker: (key: string) => Promise<void>;
  private readonly logger: Logger;

  constructor(name: string, worker: (key: string) => Promise<void>, logger: Logger) {
    this.name = name;
    this.worker = worker;
    this.logger = logger;
  }

  add(key: string): void {
    if (this.stopped) return;
    if (this.running.has(key)) {
      this.dirty.add(key);
      return;
    }
    this.pending.add(key);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.drain());
    }
  }

  after(key: string, ms: number): void {
    if (this.stopped) return;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      this.add(key);
    }, ms);
    this.timers.add(timer);
  }

  private drain(): void {
    this.scheduled = false;
    for (const key of [...this.pending]) {
      this.pending.delete(key);
      this.running.add(key);
      this.worker(key)
        .then(() => this.failures.delete(key))
        .catch((error) => {
          const n = (this.failures.get(key) ?? 0) + 1;
          this.failures.set(key, n);
          this.logger.debug({ err: error, key, queue: this.name, attempt: n }, "reconcile failed; retrying");
          this.after(key, Math.min(5000, 100 * 2 ** n));
        })
        .finally(() => {
          this.running.delete(key);
          if (this.dirty.delete(key)) this.add(key);
        });
    }
  }

  /** Resolves when nothing is pending or running (tests use it to wait for quiescence). */
  get idle(): boolean {
    return this.pending.size === 0 && this.running.size === 0;
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.pending.clear();
  }
}

/**
 * One writer per prefix and shard, whatever the hosts: a lease object in the bucket that the run takes, renews and
 * releases, naming its holder (user@host, pid), its run and its expiry (by the S3 server's clock, so hosts whose
 * clocks differ agree on it).
 *
 * Taking it: read the lease; held by another live run → refused, naming it. Otherwise write ours, conditional
 * (`If-None-Match: *`) when there was none, so a server that honours the condition refuses the second of two
 * writers at once; then, because some servers ignore it (Ceph RGW 16.2 in a versioned bucket answers 200 and adds
 * a version), wait a short settle and read it back: the lease is ours only if the bucket shows our run as holder.
 * Of two runs that wrote at once, the later write is the one every reader sees, so exactly one of them finds
 * itself. A lease past its expiry, or left on this host by a process that is gone, is taken over.
 *
 * Few writes, on purpose: in a versioned bucket every write of the lease is a version that stays, and under a
 * default Object Lock retention it cannot be deleted before that retention ends. So the lease is written once at
 * the start and once per renewal (every half TTL, 7.5 minutes at the default TTL of 15), and released with one
 * DeleteObject (a delete marker in a versioned bucket: no new locked version).
 */
import { createHash } from "node:crypto";
import { ArchiverError, classify } from "../base/errors.js";
import { writeOnce } from "./lost-answer.js";
import { sameEtag } from "./multipart-etag.js";
import { Requests } from "./requests.js";

/** What the lease object says. */
export interface LeaseDoc {
  holder: string;
  run_id: string;
  pid: number;
  taken_at: string;
  expires_at: string;
}

export interface LeaseOptions {
  key: string;
  /** user@host of this process. */
  holder: string;
  runId: string;
  ttlMs: number;
  /** The wait between writing the lease and reading it back (servers that ignore If-None-Match). */
  settleMs: number;
  /**
   * The server is known to honour If-None-Match here (a bucket that never kept versions): a conditional write that
   * succeeded needs no settle before its read-back.
   */
  conditionTrusted: boolean;
  /** What the lease guards, for messages ('prefix "p/" shard 1/4'). */
  scope: string;
  /** Whether a process of this host is alive (tests may inject). */
  alive?: (pid: number) => boolean;
}

const MAX_LEASE_BYTES = 64 * 1024;

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class Lease {
  private readonly alive: (pid: number) => boolean;
  /** The run's requests without its stop signal: a stopping run still releases its lease. */
  private readonly sink: Requests;

  constructor(
    run: Requests,
    private readonly o: LeaseOptions,
  ) {
    this.sink = new Requests(run.store, run.settings, run.policy, run.logger);
    this.alive = o.alive ?? processAlive;
  }

  /** The S3 server's time, as learned from its answers. */
  private now(): number {
    return Date.now() + this.sink.clockOffsetMs();
  }

  /** The lease as the bucket shows it; null when there is none (or it cannot be read as a lease). */
  async read(): Promise<LeaseDoc | null> {
    const { key } = this.o;
    const body = await this.sink.s3(`GetObject ${key}`, async () => {
      const stream = await this.sink.store.get(key);
      if (!stream) return null;
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const c of stream as AsyncIterable<Buffer>) {
        size += c.length;
        if (size > MAX_LEASE_BYTES) break;
        chunks.push(c);
      }
      return Buffer.concat(chunks).toString("utf8");
    });
    if (body === null) return null;
    try {
      const d = JSON.parse(body) as Partial<LeaseDoc>;
      if (typeof d.holder === "string" && typeof d.run_id === "string" && typeof d.expires_at === "string")
        return {
          holder: d.holder,
          run_id: d.run_id,
          pid: typeof d.pid === "number" ? d.pid : 0,
          taken_at: typeof d.taken_at === "string" ? d.taken_at : "",
          expires_at: d.expires_at,
        };
    } catch {
      // not a lease (an unreadable one is written over)
    }
    return null;
  }

  /** Whether `d` still keeps others out: unexpired, and not left on this host by a process that is gone. */
  private live(d: LeaseDoc): boolean {
    if (Date.parse(d.expires_at) <= this.now()) return false;
    if (d.holder === this.o.holder && (d.pid === process.pid || !this.alive(d.pid))) return false;
    return true;
  }

  private held(d: LeaseDoc | null): ArchiverError {
    const who = d
      ? `${d.holder} (run ${d.run_id}, pid ${d.pid}), whose lease runs until ${d.expires_at}`
      : "another run, which took the lease at the same moment";
    return new ArchiverError(
      "fatal",
      "lease_held",
      `${this.o.scope} is being archived by ${who} (lease s3://${this.sink.settings.bucket}/${this.o.key}): this run stops before writing anything. One run writes a prefix and shard at a time; a lease left by a run that died is taken over once it expires.`,
    );
  }

  private async write(conditional: boolean): Promise<void> {
    const now = this.now();
    const doc: LeaseDoc = {
      holder: this.o.holder,
      run_id: this.o.runId,
      pid: process.pid,
      taken_at: new Date(now).toISOString(),
      expires_at: new Date(now + this.o.ttlMs).toISOString(),
    };
    const body = Buffer.from(JSON.stringify(doc) + "\n");
    const md5 = createHash("md5").update(body);
    const put = () =>
      this.sink.store.put({
        key: this.o.key,
        body,
        length: body.length,
        contentType: "application/json",
        metadata: {},
        params: {},
        // An Object Lock bucket takes no PUT without an integrity checksum.
        contentMD5: md5.copy().digest("base64"),
        ifNoneMatch: conditional ? "*" : undefined,
      });
    const what = `PutObject ${this.o.key}`;
    if (!conditional) return void (await this.sink.s3(what, put));
    // A conditional PUT is not sent twice: after a lost answer the bucket says whether it landed (our bytes) or
    // another writer's lease is there (refused, as a 412).
    const hex = md5.copy().digest("hex");
    await writeOnce(this.sink, what, this.o.key, (h) => h.size === body.length && sameEtag(h.etag, hex), put);
  }

  /** Take the lease, or throw (fatal) naming who holds it. */
  async take(): Promise<void> {
    const found = await this.read();
    if (found && found.run_id !== this.o.runId && this.live(found)) throw this.held(found);
    try {
      await this.write(found === null);
    } catch (err) {
      if (classify(err).status !== 412) throw err;
      // Refused: another writer's lease is there — or ours, when the first attempt's answer was lost and the
      // retry met the lease it had written.
      const there = await this.read();
      if (there?.run_id !== this.o.runId) throw this.held(there);
    }
    if (found !== null || !this.o.conditionTrusted) await sleep(this.o.settleMs);
    const shown = await this.read();
    if (shown?.run_id !== this.o.runId) throw this.held(shown);
  }

  /** Extend the lease; fatal when the bucket shows another holder (this run was taken over: it must stop). */
  async renew(): Promise<void> {
    const shown = await this.read();
    if (shown?.run_id !== this.o.runId)
      throw new ArchiverError(
        "fatal",
        "lease_lost",
        `the lease on ${this.o.scope} (s3://${this.sink.settings.bucket}/${this.o.key}) is no longer this run's: ${shown ? `${shown.holder} (run ${shown.run_id}) took it over` : "it was deleted"}. This run stops writing.`,
      );
    await this.write(false);
  }

  /** Give the lease up (DeleteObject) if the bucket still shows it as ours. Never throws: logged. */
  async release(): Promise<void> {
    try {
      const shown = await this.read();
      if (shown?.run_id !== this.o.runId) return;
      await this.sink.s3(`DeleteObject ${this.o.key}`, () => this.sink.store.deleteObject(this.o.key, null));
    } catch (err) {
      const c = classify(err);
      this.sink.logger.warn(
        { key: this.o.key, code: c.code },
        `could not release the lease (${c.message}): the next run takes it over when it expires`,
      );
    }
  }
}

/**
 * What the test S3 servers capture and the failures they inject, in one place for both of them: s3rver
 * (`local-s3.ts`, in its own middleware) and any real S3 server behind the recording proxy (`s3-proxy.ts`).
 */

/** Every n-th object write (PUT to a key, counted from setFaults) fails this way; the first match wins. */
export interface S3Faults {
  /** 503 SlowDown, as S3 throttles a prefix. */
  slowDownEvery?: number;
  /** 500 InternalError. */
  internalErrorEvery?: number;
  /** The connection is dropped before any answer. */
  resetEvery?: number;
  /** The write is applied, then its connection dropped before the answer (a lost answer). */
  dropAnswerEvery?: number;
  /** Every n-th CompleteMultipartUpload (counted on its own) is applied, then its answer lost the same way. */
  dropCompleteAnswerEvery?: number;
  /** Every CompleteMultipartUpload is applied and never answered: the client waits until it is killed. */
  holdCompleteAnswer?: boolean;
  /** Runs when a CompleteMultipartUpload arrives, before it is applied (a test stores a rival object here). */
  beforeComplete?: (key: string) => Promise<void>;
  /**
   * s3rver only (a real server's clock is its own): this server's clock is `offsetMs` off the real one. Like S3 it
   * refuses a request more than 15 minutes off its clock (403 RequestTimeTooSkewed; no body for HEAD) and tells
   * its time in the Date header — or, with `dateHeader: false`, sends no Date header (its time cannot be learned).
   */
  clock?: { offsetMs: number; dateHeader?: boolean };
}

export interface CapturedRequest {
  method: string;
  path: string;
  query: Record<string, string | string[] | undefined>;
  headers: Record<string, string | string[] | undefined>;
}

/** How a request fails: reset before any answer, answered with an error, or applied and its answer lost. */
export type FaultAnswer = "reset" | "lose-answer" | { status: number; code: string; message: string };

/** What happens to a CompleteMultipartUpload: a rival write first, and whether its answer is lost or withheld. */
export interface CompletionFault {
  before?: (() => Promise<void>) | undefined;
  answer: "send" | "lose" | "withhold";
}

const isCompletion = (method: string, path: string, query: CapturedRequest["query"]) =>
  method === "POST" && typeof query.uploadId === "string" && /^\/[^/]+\/./.test(path);

/** Counts object writes (PutObject, UploadPart; not CopyObject) and says which of them fail, and how. */
export class FaultPlan {
  private faults: S3Faults = {};
  private writes = 0;
  private completions = 0;

  set(faults: S3Faults): void {
    this.faults = faults;
    this.writes = 0;
    this.completions = 0;
  }

  get clock(): S3Faults["clock"] {
    return this.faults.clock;
  }

  /** The failure for this request, if it is an object write that the faults select. */
  next(method: string, path: string, headers: CapturedRequest["headers"]): FaultAnswer | undefined {
    if (method !== "PUT" || !/^\/[^/]+\/./.test(path) || "x-amz-copy-source" in headers) return undefined;
    const n = ++this.writes;
    const every = (k: number | undefined) => k !== undefined && n % k === 0;
    if (every(this.faults.resetEvery)) return "reset";
    if (every(this.faults.dropAnswerEvery)) return "lose-answer";
    if (every(this.faults.slowDownEvery))
      return { status: 503, code: "SlowDown", message: "Please reduce your request rate." };
    if (every(this.faults.internalErrorEvery))
      return {
        status: 500,
        code: "InternalError",
        message: "We encountered an internal error. Please try again.",
      };
    return undefined;
  }

  /** What happens to this request if it is a CompleteMultipartUpload; undefined otherwise. */
  completion(method: string, path: string, query: CapturedRequest["query"]): CompletionFault | undefined {
    if (!isCompletion(method, path, query)) return undefined;
    const n = ++this.completions;
    const f = this.faults;
    const key = decodeURIComponent(path.replace(/^\/[^/]+\//, ""));
    const lose = f.dropCompleteAnswerEvery !== undefined && n % f.dropCompleteAnswerEvery === 0;
    return {
      before: f.beforeComplete ? () => f.beforeComplete!(key) : undefined,
      answer: f.holdCompleteAnswer ? "withhold" : lose ? "lose" : "send",
    };
  }
}

export const errorXml = (code: string, message: string) =>
  `<Error><Code>${code}</Code><Message>${message}</Message></Error>`;

/**
 * Bytes corrupted on the way to S3 (issue 23): one bit flipped in the body of a write, as a faulty middlebox, NIC
 * or storage gateway does, with the length unchanged. The recording proxy (s3-proxy.ts) applies it, in front of
 * s3rver or Ceph RGW alike.
 */
export interface CorruptionPlan {
  /**
   * Which writes: "put", a recording's PutObject; "part", UploadPart number `partNumber` (default 2); "sidecar",
   * the PutObject of a sidecar (`….json`). Only recordings and their sidecars (keys under `recordings/`).
   */
  target: "put" | "part" | "sidecar";
  partNumber?: number;
  /** "once": the first such write of each key only (transient); "always": every one (persistent). */
  times: "once" | "always";
}

/** Applies a CorruptionPlan: counts the writes it corrupted, and remembers which keys it corrupted once. */
export class Corruptor {
  private plan: CorruptionPlan | undefined;
  private readonly done = new Set<string>();
  /** Writes whose body was corrupted, as "key" or "key part N". */
  readonly corrupted: string[] = [];

  set(plan: CorruptionPlan | undefined): void {
    this.plan = plan;
    this.done.clear();
    this.corrupted.length = 0;
  }

  /** Flip one bit of `body` (in place) when the plan selects this request; true when it did. */
  apply(req: CapturedRequest, body: Buffer): boolean {
    const plan = this.plan;
    if (!plan || req.method !== "PUT" || body.length === 0 || "x-amz-copy-source" in req.headers)
      return false;
    const m = /^\/[^/]+\/(.+)$/.exec(req.path);
    if (!m || typeof req.query.tagging === "string" || req.query.retention !== undefined) return false;
    if (req.query.legal_hold !== undefined || req.query["legal-hold"] !== undefined) return false;
    const key = decodeURIComponent(m[1]!);
    const part = typeof req.query.partNumber === "string" ? Number(req.query.partNumber) : undefined;
    const selected =
      plan.target === "part"
        ? part === (plan.partNumber ?? 2)
        : part === undefined &&
          key.includes("recordings/") && // not the run's own bookkeeping (audit heads, leases, manifests)
          key.endsWith(".json") === (plan.target === "sidecar");
    if (!selected) return false;
    const what = part === undefined ? key : `${key} part ${part}`;
    if (plan.times === "once" && this.done.has(what)) return false;
    this.done.add(what);
    this.corrupted.push(what);
    body[body.length >> 1]! ^= 0x10;
    return true;
  }
}

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
}

export interface CapturedRequest {
  method: string;
  path: string;
  query: Record<string, string | string[] | undefined>;
  headers: Record<string, string | string[] | undefined>;
}

export type FaultAnswer = "reset" | { status: number; code: string; message: string };

/** Counts object writes (PutObject, UploadPart; not CopyObject) and says which of them fail, and how. */
export class FaultPlan {
  private faults: S3Faults = {};
  private writes = 0;

  set(faults: S3Faults): void {
    this.faults = faults;
    this.writes = 0;
  }

  /** The failure for this request, if it is an object write that the faults select. */
  next(method: string, path: string, headers: CapturedRequest["headers"]): FaultAnswer | undefined {
    if (method !== "PUT" || !/^\/[^/]+\/./.test(path) || "x-amz-copy-source" in headers) return undefined;
    const n = ++this.writes;
    const every = (k: number | undefined) => k !== undefined && n % k === 0;
    if (every(this.faults.resetEvery)) return "reset";
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
}

export const errorXml = (code: string, message: string) =>
  `<Error><Code>${code}</Code><Message>${message}</Message></Error>`;

import { ArchiverError } from "../base/errors.js";

/** The source's size disagrees with what it promised: retryable, from byte 0 (earlier bytes may be wrong too). */
export function sizeMismatch(key: string, detail: string): ArchiverError {
  return new ArchiverError("retryable", "size_mismatch", `size mismatch for ${key}: ${detail}`);
}

/**
 * What the run does to store one recording under a key, as one context: the transfer's input (with the upload
 * ledger's hooks that make it resumable and its completion safe to lose), and, once the bytes are stored, the
 * protection read back and the sidecar. Used for the recording's own key and for a versioned key (source-changed.ts).
 */
import { sidecarKey } from "../base/keys.js";
import { PACKAGE_VERSION } from "../base/paths.js";
import { redactJson } from "../base/redact.js";
import type { ObjectParams, TransferInput, TransferResult } from "../s3/s3.js";
import type { Recording } from "../envoy/envoy-client.js";
import { protectRecording, sidecarEvidence, storeSidecar, type BucketRules } from "./protect.js";
import type { UploadLedger } from "./upload-ledger.js";

export interface RecordingContext {
  ledger: UploadLedger;
  bucket: BucketRules;
  runId: string;
  callId: string;
  /** The call as Envoy listed it, for the sidecar. */
  call: unknown;
  contentType: string;
  metadata: Record<string, string>;
  objectParams: ObjectParams;
  open: TransferInput["open"];
  /** The recording's metadata as last fetched (its URL is left out of the sidecar). */
  recording: () => Recording;
  expectedBytes: number | null;
  signal: AbortSignal;
  onBytes: (n: number) => void;
}

export function recordingIO(c: RecordingContext) {
  const { runId, callId } = c;
  /** The transfer of the recording's bytes to `key`. */
  const transferInput = (key: string): TransferInput => ({
    key,
    contentType: c.contentType,
    metadata: c.metadata,
    objectParams: c.objectParams,
    open: c.open,
    expectedBytes: c.expectedBytes,
    signal: c.signal,
    onBytes: c.onBytes,
    ...c.ledger.track(callId, key),
    runId,
  });
  /**
   * Version, ETag, retention, hold and tags of what is stored under `key` as the bucket shows them (repairing what
   * the server ignored), then its sidecar carrying them. A versioned key's sidecar names the original it follows.
   */
  const protectAndDescribe = async (
    key: string,
    r: TransferResult,
    adopted: boolean,
    supersedes?: { key: string; sha256: string },
  ) => {
    const archivedAt = new Date().toISOString();
    const { url: _url, ...recordingWithoutUrl } = c.recording();
    const evidence = await protectRecording(c.bucket, c.objectParams, key, r, adopted);
    const doc = () => ({
      // What came from the source is stored redacted: no signed URL or credential lives on in a sidecar.
      call: redactJson(c.call),
      recording: redactJson(recordingWithoutUrl),
      archive: {
        sha256: r.sha256,
        bytes: r.bytes,
        key,
        content_type: c.contentType,
        archived_at: archivedAt,
        archiver_version: PACKAGE_VERSION,
        run_id: runId,
        // How the stored bytes were proven to be these (s3/write-proof.ts): a later run that lost its state
        // adopts the object on this sidecar's word only when it says so.
        write_proof: r.proof,
        ...sidecarEvidence(evidence),
        storage_class: c.objectParams.StorageClass ?? "STANDARD",
        sse: c.objectParams.ServerSideEncryption ?? null,
        ...(supersedes ? { supersedes } : {}),
      },
    });
    const metadata = { "call-id": callId, sha256: r.sha256 };
    const sidecar = await storeSidecar(c.bucket, c.objectParams, sidecarKey(key), adopted, doc, metadata);
    return { evidence, sidecar };
  };
  return { transferInput, protectAndDescribe };
}

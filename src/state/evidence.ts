/**
 * Recording a call as archived together with what the bucket showed for it and its sidecar (lock-evidence.ts):
 * one transaction, so the row never says archived without its evidence.
 */
import { markArchived } from "./calls.js";
import type { Sql } from "./sql.js";
import type { ArchivedFields, EvidenceRecord } from "./types.js";

/** The archived fields that the recording's evidence supplies. */
export type FieldsBesideEvidence = Omit<
  ArchivedFields,
  "etag" | "versionId" | "lockMode" | "retainUntil" | "legalHold"
>;

export function markArchivedWithEvidence(
  sql: Sql,
  callId: string,
  fields: FieldsBesideEvidence,
  recording: EvidenceRecord,
  sidecar: EvidenceRecord,
): void {
  const update = sql.st(
    `UPDATE calls SET tags = ?, sidecar_version_id = ?, sidecar_etag = ?, sidecar_lock_mode = ?,
       sidecar_retain_until = ?, sidecar_legal_hold = ?, sidecar_tags = ? WHERE call_id = ?`,
  );
  sql.db.transaction(() => {
    markArchived(sql, callId, {
      ...fields,
      etag: recording.etag,
      versionId: recording.versionId,
      lockMode: recording.lockMode,
      retainUntil: recording.retainUntil,
      legalHold: recording.legalHold,
    });
    update.run(
      recording.tags,
      sidecar.versionId,
      sidecar.etag,
      sidecar.lockMode,
      sidecar.retainUntil,
      sidecar.legalHold ? 1 : 0,
      sidecar.tags,
      callId,
    );
  })();
}

/**
 * Recording a call as archived together with what the bucket showed for it and its sidecar (lock-evidence.ts):
 * one transaction, so the row never says archived without its evidence.
 */
import type Database from "better-sqlite3";
import type { StateDb } from "./db.js";
import type { ArchivedFields, EvidenceRecord } from "./types.js";

const statements = new WeakMap<StateDb, Database.Statement>();

export function markArchivedWithEvidence(
  state: StateDb,
  callId: string,
  fields: Omit<ArchivedFields, "etag" | "versionId" | "lockMode" | "retainUntil" | "legalHold">,
  recording: EvidenceRecord,
  sidecar: EvidenceRecord,
): void {
  let st = statements.get(state);
  if (!st) {
    st = state.db.prepare(
      `UPDATE calls SET tags = ?, sidecar_version_id = ?, sidecar_etag = ?, sidecar_lock_mode = ?,
         sidecar_retain_until = ?, sidecar_legal_hold = ?, sidecar_tags = ? WHERE call_id = ?`,
    );
    statements.set(state, st);
  }
  const update = st;
  state.db.transaction(() => {
    state.markArchived(callId, {
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

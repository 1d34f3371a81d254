/**
 * A legal hold placed on, or lifted from, every version of a key (hold by selection), each read back from the
 * bucket: what is reported is what a HEAD of that version shows, never the request that was sent.
 */
import type { VersionMarker } from "./object-store.js";
import { atVersion, type Requests } from "./requests.js";

/** One version as the bucket showed it after the request. */
export interface HoldShown {
  versionId: string;
  /** The legal hold a HEAD of the version shows; null when the version was gone. */
  legalHold: boolean | null;
}

/** Every version id of one key (the key itself, not the longer keys its prefix also lists). */
export async function versionsOf(sink: Requests, key: string): Promise<string[]> {
  const out: string[] = [];
  let marker: VersionMarker | undefined;
  for (;;) {
    const page = await sink.s3(`ListObjectVersions ${key}`, () => sink.store.listVersions(key, marker));
    out.push(...page.items);
    if (!page.next) return out;
    marker = page.next;
  }
}

/** Set the legal hold of every version of `key` ON or OFF, and read each back. */
export async function holdEveryVersion(sink: Requests, key: string, on: boolean): Promise<HoldShown[]> {
  const out: HoldShown[] = [];
  for (const versionId of await versionsOf(sink, key)) {
    const at = atVersion(key, versionId);
    await sink.s3(`PutObjectLegalHold ${at}`, () =>
      sink.store.putLegalHold(key, versionId, on ? "ON" : "OFF"),
    );
    const head = await sink.headObject(key, versionId);
    out.push({ versionId, legalHold: head ? head.legalHold : null });
  }
  return out;
}

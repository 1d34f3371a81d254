/** Counting what the archiver sent to S3, by what the server answered. */
import type { CapturedRequest } from "../../scripts/s3-faults.js";

/**
 * Requests and the answers the S3 server gave them (even when the answer was then lost), for counting what was
 * sent. Pass it as the rig's S3 options: on a real server it puts the recording proxy in front.
 */
export function recorder() {
  const seen: { req: CapturedRequest; status: number }[] = [];
  const count = (f: (r: CapturedRequest, status: number) => boolean) =>
    seen.filter((s) => f(s.req, s.status)).length;
  const key = (r: CapturedRequest) => decodeURIComponent(r.path.replace(/^\/[^/]+\//, ""));
  return {
    /** Through a proxy on a real server. */
    faults: true,
    onResponse: (req: CapturedRequest, status: number) => seen.push({ req, status }),
    reset: () => (seen.length = 0),
    /** Part uploads, uploads created and completions for keys naming `k`; single PUTs of keys ending in `k`. */
    parts: (k: string) => count((r) => r.method === "PUT" && "partNumber" in r.query && key(r).includes(k)),
    puts: (k: string, ok?: boolean) =>
      count(
        (r, status) =>
          r.method === "PUT" &&
          !("partNumber" in r.query) &&
          key(r).endsWith(k) &&
          (ok === undefined || (status === 200) === ok),
      ),
    creates: (k: string) => count((r) => r.method === "POST" && "uploads" in r.query && key(r).includes(k)),
    completions: (k: string, ok?: boolean) =>
      count(
        (r, status) =>
          r.method === "POST" &&
          "uploadId" in r.query &&
          key(r).includes(k) &&
          (ok === undefined || (status === 200) === ok),
      ),
  };
}

/**
 * A real S3 protocol server on loopback (s3rver), for the demo, the tests and the benchmarks. No Docker, no
 * credentials: any access key is accepted.
 */
import S3rver from "s3rver";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface LocalS3 {
  endpoint: string;
  directory: string;
  /** Environment for the archiver (and any AWS SDK client) to talk to this server. */
  env: Record<string, string>;
  close(opts?: { keepFiles?: boolean }): Promise<void>;
}

export async function startLocalS3(opts: { buckets: string[]; directory?: string; port?: number }): Promise<LocalS3> {
  const directory = opts.directory ?? mkdtempSync(join(tmpdir(), "envoy-archiver-s3-"));
  const server = new S3rver({
    address: "127.0.0.1",
    port: opts.port ?? 0,
    silent: true,
    directory,
    configureBuckets: opts.buckets.map((name) => ({ name })),
  });
  const addr = await server.run();
  const endpoint = `http://127.0.0.1:${addr.port}`;
  return {
    endpoint,
    directory,
    env: {
      AWS_ENDPOINT_URL_S3: endpoint,
      AWS_REGION: "us-east-1",
      AWS_ACCESS_KEY_ID: "S3RVER",
      AWS_SECRET_ACCESS_KEY: "S3RVER",
      ARCHIVER_S3_FORCE_PATH_STYLE: "true",
    },
    async close({ keepFiles = opts.directory !== undefined } = {}) {
      server.httpServer?.closeAllConnections();
      await server.close();
      if (!keepFiles) rmSync(directory, { recursive: true, force: true });
    },
  };
}

/** The archiver's S3 store on a test server's bucket (the server's settings are in process.env), path style. */
import { pino, type Logger } from "pino";
import { DEFAULT_RETRY_POLICY, type RetryPolicy } from "../../src/base/retry.js";
import { openSink, type S3Sink, type SinkSettings } from "../../src/s3/s3.js";

export function testSink(
  bucket: string,
  o: {
    checksum?: SinkSettings["checksum"];
    partSize?: number;
    concurrency?: number;
    policy?: RetryPolicy;
    logger?: Logger;
    signal?: AbortSignal;
  } = {},
): S3Sink {
  const s3 = {
    bucket,
    forcePathStyle: true,
    partSize: o.partSize ?? 5 * 1024 ** 2,
    queueSize: 1,
    region: "us-east-1",
  };
  return openSink(
    { concurrency: o.concurrency ?? 1, s3, storage: { checksum: o.checksum ?? "MD5" } },
    o.policy ?? DEFAULT_RETRY_POLICY,
    o.logger ?? pino({ level: "silent" }),
    o.signal,
  );
}

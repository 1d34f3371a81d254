/**
 * The AWS SDK's S3 client as the archiver configures it, and the one thing it adds to it: saying precisely
 * whether a refused request was signed far off the server's time (markSkewedRefusals). Requests are signed by the
 * SDK alone, at its learned clock offset (`systemClockOffset`: the SDK corrects it from the Date header of an
 * answer that refused a request's time).
 */
import { S3Client } from "@aws-sdk/client-s3";
import { Agent as HttpAgent } from "node:http";
import { Agent as HttpsAgent } from "node:https";
import { offsetFrom, SKEW_THRESHOLD_MS } from "../base/clock.js";

export interface S3ClientSettings {
  forcePathStyle: boolean;
  maxSockets: number;
  region?: string | undefined;
  /** Otherwise the SDK's own resolution (AWS_ENDPOINT_URL_S3, or AWS's endpoint for the region). */
  endpoint?: string | undefined;
  /** Otherwise AWS_PROFILE as the SDK reads it. */
  profile?: string | undefined;
  /** Otherwise the SDK's chain (environment, profile, instance or pod role). */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string } | undefined;
}

export function createS3Client(s: S3ClientSettings): S3Client {
  const agentOpts = { keepAlive: true, maxSockets: s.maxSockets };
  const client = new S3Client({
    ...(s.region ? { region: s.region } : {}),
    ...(s.endpoint ? { endpoint: s.endpoint } : {}),
    ...(s.profile ? { profile: s.profile } : {}),
    ...(s.credentials ? { credentials: s.credentials } : {}),
    forcePathStyle: s.forcePathStyle,
    // One retry policy for the whole archiver (retry.ts): the SDK must not retry underneath it.
    maxAttempts: 1,
    // The client's documented option to resolve each command class's middleware chain once, not on every
    // request: commands carry no middleware of their own.
    cacheMiddleware: true,
    // Only send/validate checksums when the operation requires them: S3-compatible servers (MinIO releases,
    // s3rver, Ceph) differ in what they accept. Integrity is ours: every write proven (write-proof.ts).
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
    requestHandler: {
      httpAgent: new HttpAgent(agentOpts),
      httpsAgent: new HttpsAgent(agentOpts),
      connectionTimeout: 10_000,
      requestTimeout: 120_000,
    },
  });
  // Whether a refused request was signed far off the server's time, precisely (see markSkewedRefusals).
  client.middlewareStack.add(markSkewedRefusals(client.config) as never, {
    step: "build",
    name: "markSkewedRefusals",
  });
  return client;
}

/** The S3 client's setting the SDK signs with (and keeps up to date for its own requests). */
interface SigningClock {
  systemClockOffset?: number;
}

type Headers = Record<string, string | undefined>;

/**
 * A middleware for the S3 client (build step: around signing) that says precisely whether a refused request was
 * signed far off the server's time. The SDK marks `clockSkewCorrected` on any error while the clock is off at
 * all (its learned offset moves by the Date header's second on every answer), which would retry a plain 404; this
 * compares the offset the request was signed with to the server's time in the error's answer.
 */
export function markSkewedRefusals(config: SigningClock) {
  return (next: (args: unknown) => Promise<unknown>) => async (args: unknown) => {
    const signedWith = config.systemClockOffset ?? 0;
    try {
      return await next(args);
    } catch (err) {
      const e = err as { $metadata?: { clockSkewCorrected?: boolean }; $response?: { headers?: Headers } };
      if (e.$metadata) {
        const offset = offsetFrom(e.$response?.headers?.date);
        const skewed = offset !== undefined && Math.abs(offset - signedWith) >= SKEW_THRESHOLD_MS;
        if (skewed) e.$metadata.clockSkewCorrected = true;
        else delete e.$metadata.clockSkewCorrected;
      }
      throw err;
    }
  };
}

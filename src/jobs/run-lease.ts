/**
 * The run's lease on its prefix and shard (s3/lease.ts): taken before the run writes anything to the bucket,
 * renewed every half TTL while it runs (a renewal that finds another holder stops the run), released at its end.
 */
import { hostname, userInfo } from "node:os";
import { classify } from "../base/errors.js";
import { Lease } from "../s3/lease.js";
import type { RunContext } from "./run-context.js";

/** The longest wait between writing the lease and reading it back, for servers that ignore If-None-Match. */
const SETTLE_MS = 2000;

/** user@host of this process (the uid where the user has no name, as in some containers). */
export function holderName(): string {
  let user: string;
  try {
    user = userInfo().username;
  } catch {
    user = String(process.getuid?.() ?? "unknown");
  }
  return `${user}@${hostname()}`;
}

/** Where the lease of a prefix and shard lives: beside recordings/, never under it. */
export function leaseKey(prefix: string, shard: RunContext["shard"]): string {
  const name = shard && shard.count > 1 ? `shard-${shard.index}-of-${shard.count}` : "all";
  return `${prefix}leases/${name}.json`;
}

/**
 * Take the run's lease (fatal, naming the holder, when another run has it) and keep it renewed; returns what
 * releases it. No lease with ARCHIVER_LEASE_TTL=0.
 */
export async function holdLease(ctx: RunContext, conditionTrusted: boolean): Promise<() => Promise<void>> {
  const ttlMs = ctx.config.leaseTtlMs;
  if (ttlMs === 0) return () => Promise.resolve();
  const { prefix } = ctx.config.s3;
  const shard = ctx.shard && ctx.shard.count > 1 ? ` shard ${ctx.shard.index}/${ctx.shard.count}` : "";
  const lease = new Lease(ctx.sink, {
    key: leaseKey(prefix, ctx.shard),
    holder: holderName(),
    runId: ctx.runId,
    ttlMs,
    settleMs: Math.min(SETTLE_MS, ttlMs / 4),
    conditionTrusted,
    scope: `prefix "${prefix}"${shard}`,
  });
  await lease.take();
  ctx.logger.info({ key: leaseKey(prefix, ctx.shard), ttl_s: ttlMs / 1000 }, "lease taken");
  const renewal = setInterval(() => {
    lease.renew().catch((err: unknown) => ctx.halt.raise(classify(err)));
  }, ttlMs / 2);
  renewal.unref();
  return async () => {
    clearInterval(renewal);
    await lease.release();
  };
}

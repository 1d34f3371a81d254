/**
 * Scale-out without a coordinator: calls are partitioned by a stable hash of their id, so N workers on N
 * machines (Kubernetes Indexed Job, AWS Batch array job, or plain --shard I/N) split a backfill between them.
 */
export interface Shard {
  index: number;
  count: number;
}

/** FNV-1a over the id's UTF-8 bytes: stable across processes, platforms and versions. */
export function shardOf(callId: string, count: number): number {
  let h = 0x811c9dc5;
  for (const b of Buffer.from(callId, "utf8")) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h % count;
}

export function inShard(callId: string, shard: Shard | undefined): boolean {
  return !shard || shard.count <= 1 || shardOf(callId, shard.count) === shard.index;
}

function parseIndex(v: string, what: string): number {
  if (!/^\d+$/.test(v.trim())) throw new Error(`${what} must be a whole number, got "${v}"`);
  return Number(v);
}

/**
 * The shard this process works on: `--shard I/N`, else JOB_COMPLETION_INDEX (Kubernetes Indexed Job) or
 * AWS_BATCH_JOB_ARRAY_INDEX (AWS Batch array job) with ARCHIVER_SHARD_COUNT. Undefined: no sharding.
 */
export function resolveShard(flag: string | undefined, env: NodeJS.ProcessEnv): Shard | undefined {
  let shard: Shard | undefined;
  if (flag !== undefined) {
    const m = /^(\d+)\/(\d+)$/.exec(flag.trim());
    if (!m) throw new Error(`--shard must look like INDEX/COUNT, e.g. 0/4, got "${flag}"`);
    shard = { index: Number(m[1]), count: Number(m[2]) };
  } else if (env.ARCHIVER_SHARD_COUNT) {
    const count = parseIndex(env.ARCHIVER_SHARD_COUNT, "ARCHIVER_SHARD_COUNT");
    const raw = env.JOB_COMPLETION_INDEX ?? env.AWS_BATCH_JOB_ARRAY_INDEX;
    if (raw === undefined)
      throw new Error(
        "ARCHIVER_SHARD_COUNT is set but neither JOB_COMPLETION_INDEX nor AWS_BATCH_JOB_ARRAY_INDEX is",
      );
    shard = { index: parseIndex(raw, "the shard index"), count };
  }
  if (shard && (shard.count < 1 || shard.index >= shard.count))
    throw new Error(`shard index ${shard.index} is not below the shard count ${shard.count}`);
  return shard;
}

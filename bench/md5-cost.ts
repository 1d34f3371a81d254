/**
 * What the write proof's MD5 costs (issue 23): every byte a recording sends is hashed with SHA-256 anyway (the
 * archive's digest), and now with MD5 too (the ETag a server gives the bytes it stored). The floor here is the
 * SHA-256 pass alone; the fair comparison is that floor plus the MD5 over the same chunks, as the transfer does.
 * `node dist/bench/md5-cost.js [MiB] [rounds]` prints one JSON line: CPU seconds per GiB and MiB/s of each.
 * Not part of `npm run bench` (W1–W5); the end-to-end cost is s3-cpu.ts on this build and the one before.
 */
import { createHash } from "node:crypto";

const [mib = 1024, rounds = 3] = process.argv.slice(2, 4).map(Number);
const CHUNK = 64 * 1024; // what the media response hands over
const chunk = Buffer.alloc(CHUNK, 7);
const chunks = (mib * 1024 * 1024) / CHUNK;

function pass(algs: string[]): number {
  const hashes = algs.map((a) => createHash(a));
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < chunks; i++) for (const h of hashes) h.update(chunk);
  for (const h of hashes) h.digest();
  const cpu = process.cpuUsage(cpu0);
  return (cpu.user + cpu.system) / 1e6;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const out: Record<string, { cpuSPerGiB: number; mibPerS: number }> = {};
for (const [name, algs] of [
  ["sha256 (floor)", ["sha256"]],
  ["md5", ["md5"]],
  ["sha256+md5", ["sha256", "md5"]],
] as const) {
  const s = median(Array.from({ length: rounds }, () => pass([...algs])));
  out[name] = { cpuSPerGiB: +((s * 1024) / mib).toFixed(3), mibPerS: Math.round(mib / s) };
}
process.stdout.write(JSON.stringify({ mib, rounds, ...out }) + "\n");

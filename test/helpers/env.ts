/**
 * End-to-end test rig: the Envoy simulator and a real S3 server on loopback (s3rver, or Ceph RGW with
 * ARCHIVER_TEST_S3=rgw: see backends.ts), a temp state DB, and the built CLI run as a child process exactly as a
 * user runs it.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createHash } from "node:crypto";
import {
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  ListMultipartUploadsCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { startTestS3, type TestS3, type TestS3Options } from "./backends.js";
import { startSimulator, type Simulator, type SimulatorOptions } from "../../simulator/server.js";

export const CLI = resolve(import.meta.dirname, "../../src/cli.js");

export interface Rig {
  sim: Simulator;
  s3: TestS3;
  /** The bucket the archiver writes to (unique per rig on RGW). */
  bucket: string;
  client: S3Client;
  dir: string;
  dbPath: string;
  /** Environment for the CLI: simulator URL and key, S3 endpoint and bucket, temp DB. */
  env: Record<string, string>;
  run(args: string[], extraEnv?: Record<string, string>): Promise<CliResult>;
  spawn(args: string[], extraEnv?: Record<string, string>): ChildProcess;
  /** Keys under the prefix, sorted; the audit trail's heads ({prefix}_audit/) only when the prefix names them. */
  listKeys(prefix?: string): Promise<string[]>;
  getObject(key: string): Promise<{
    body: Buffer;
    metadata: Record<string, string>;
    contentType: string | undefined;
    etag: string | undefined;
  }>;
  head(key: string): Promise<{ size: number; metadata: Record<string, string> } | null>;
  multipartUploads(): Promise<number>;
  close(): Promise<void>;
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export async function startRig(
  simOpts: SimulatorOptions = {},
  s3Opts: Omit<TestS3Options, "bucket" | "directory"> = {},
): Promise<Rig> {
  const dir = mkdtempSync(join(tmpdir(), "envoy-archiver-test-"));
  const sim = await startSimulator(simOpts);
  const s3 = await startTestS3({ ...s3Opts, directory: join(dir, "s3") });
  const bucket = s3.bucket;
  const dbPath = join(dir, "state.db");
  const env: Record<string, string> = {
    ...s3.env,
    ENVOY_API_URL: sim.apiUrl,
    ENVOY_API_KEY: sim.apiKey,
    ARCHIVER_S3_BUCKET: bucket,
    ARCHIVER_DB_PATH: dbPath,
    ARCHIVER_ALLOW_INSECURE_URLS: "true",
    LOG_LEVEL: "info",
  };
  const client = new S3Client({
    endpoint: s3.endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: s3.credentials,
  });
  const childEnv = (extra: Record<string, string>) => {
    // A clean environment: nothing from the developer's shell (AWS profiles, real keys) leaks into tests.
    const base: Record<string, string> = { PATH: process.env.PATH ?? "", HOME: dir, NODE_OPTIONS: "" };
    return { ...base, ...env, ...extra };
  };
  const rig: Rig = {
    sim,
    s3,
    bucket,
    client,
    dir,
    dbPath,
    env,
    spawn(args, extraEnv = {}) {
      return spawn(process.execPath, [CLI, ...args], {
        env: childEnv(extraEnv),
        cwd: dir,
        stdio: ["ignore", "pipe", "pipe"],
      });
    },
    run(args, extraEnv = {}) {
      const child = rig.spawn(args, extraEnv);
      return collect(child);
    },
    async listKeys(prefix = "") {
      const keys: string[] = [];
      let token: string | undefined;
      do {
        const out = await client.send(
          new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
        );
        for (const o of out.Contents ?? []) if (o.Key) keys.push(o.Key);
        token = out.NextContinuationToken;
      } while (token);
      // The audit trail's heads (one a command) are left out unless asked for by their prefix.
      return keys.filter((k) => prefix.includes("_audit/") || !k.includes("_audit/")).sort();
    },
    async getObject(key) {
      const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      const body = Buffer.from(await out.Body!.transformToByteArray());
      return { body, metadata: out.Metadata ?? {}, contentType: out.ContentType, etag: out.ETag };
    },
    async head(key) {
      try {
        const out = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
        return { size: out.ContentLength ?? -1, metadata: out.Metadata ?? {} };
      } catch (err) {
        if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404)
          return null;
        throw err;
      }
    },
    async multipartUploads() {
      const out = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
      return out.Uploads?.length ?? 0;
    },
    async close() {
      client.destroy();
      await sim.close();
      await rig.s3.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return rig;
}

export function collect(child: ChildProcess): Promise<CliResult> {
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolvePromise, reject) => {
    child.on("error", reject);
    child.on("close", (code, signal) => resolvePromise({ code, signal, stdout, stderr }));
  });
}

export function sha256(buf: Buffer): string {
  return createHash("sha256").update(buf).digest("hex");
}

/** The single JSON object a `--json` run prints. */
export function summaryOf(r: CliResult): Record<string, unknown> {
  const lines = r.stdout.trim().split("\n");
  if (lines.length !== 1)
    throw new Error(`expected exactly one line on stdout, got ${lines.length}:\n${r.stdout}\n${r.stderr}`);
  return JSON.parse(lines[0]!) as Record<string, unknown>;
}

/** Pino JSON log records from stderr. */
export function logsOf(r: CliResult): Record<string, unknown>[] {
  return r.stderr
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** What every benchmark needs: a command timed by GNU time, the servers in their own process, medians. */
import { spawn } from "node:child_process";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";

export const ROOT = resolve(import.meta.dirname, "../..");
const SERVERS = join(ROOT, "dist/bench/servers.js");

export interface Measure {
  wall: number;
  cpu: number;
  rssMiB: number;
  json?: Record<string, unknown>;
}

/** Run a command under GNU time -v; parse wall, user+sys and max RSS. */
export function timed(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<Measure & { stdout: string; stderr: string; code: number | null }> {
  return new Promise((done, reject) => {
    const child = spawn("/usr/bin/time", ["-v", cmd, ...args], { env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => {
      const num = (re: RegExp) => Number(re.exec(stderr)?.[1] ?? NaN);
      const wallText = /Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)/.exec(stderr)?.[1] ?? "";
      const wall = wallText.split(":").reduce((acc, part) => acc * 60 + Number(part), 0);
      const cpu = num(/User time \(seconds\): ([\d.]+)/) + num(/System time \(seconds\): ([\d.]+)/);
      const rssMiB = num(/Maximum resident set size \(kbytes\): (\d+)/) / 1024;
      done({ wall, cpu, rssMiB, stdout, stderr, code });
    });
  });
}

export interface Servers {
  info: Record<string, string>;
  /** S3 requests served since the last call, by operation (list, head, get, put, other). */
  s3Requests(): Promise<Record<string, number>>;
  stop(): Promise<void>;
}

/** The simulator and s3rver in a child process (bench/servers.ts), so that only the measured command is timed. */
export async function startServers(opts: object): Promise<Servers> {
  const child = spawn(process.execPath, [SERVERS, JSON.stringify(opts)], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const lines = createInterface({ input: child.stdout! });
  const nextLine = () => new Promise<string>((done) => lines.once("line", done));
  const info = JSON.parse(await nextLine()) as Record<string, string>;
  return {
    info,
    async s3Requests() {
      const answer = nextLine();
      child.stdin!.write("stats\n");
      return JSON.parse(await answer) as Record<string, number>;
    },
    stop: () =>
      new Promise((done) => {
        child.on("close", () => done());
        child.stdin!.end();
      }),
  };
}

export const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/** The archiver's environment against these servers: a clean one, nothing of the caller's shell leaks in. */
export function archiverEnv(
  info: Record<string, string>,
  home: string,
  settings: Record<string, string>,
): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: home,
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
    AWS_ENDPOINT_URL_S3: info.s3Endpoint,
    AWS_REGION: "us-east-1",
    AWS_ACCESS_KEY_ID: "S3RVER",
    AWS_SECRET_ACCESS_KEY: "S3RVER",
    ENVOY_API_URL: info.apiUrl,
    ENVOY_API_KEY: info.apiKey,
    ARCHIVER_S3_BUCKET: info.bucket,
    ARCHIVER_S3_FORCE_PATH_STYLE: "true",
    ARCHIVER_ALLOW_INSECURE_URLS: "true",
    LOG_LEVEL: "warn",
    ...settings,
  };
}

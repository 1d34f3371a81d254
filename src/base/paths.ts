/** Files that ship beside the code (package.json, migrations/), found from src/ (tsx) or dist/src/ (built). */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

let root: string | undefined;

export function packageRoot(): string {
  if (root) return root;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, "package.json")) && existsSync(join(dir, "migrations"))) return (root = dir);
    dir = dirname(dir);
  }
  throw new Error("cannot find the envoy-archiver package root (package.json beside migrations/)");
}

export const PACKAGE_VERSION: string = (
  JSON.parse(readFileSync(join(packageRoot(), "package.json"), "utf8")) as { version: string }
).version;

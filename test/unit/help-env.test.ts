/**
 * The settings, the options and the exit codes are written down in four places: the config schema (what is
 * read), `--help`, `.env.example` and the README. These tests hold the last three to the first, both ways: every
 * setting the schema reads is in each, and nothing is in any of them that the schema does not read.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { ENV_NAMES, EnvSchema, loadConfig } from "../../src/base/config.js";
import { settingDefaults } from "../../src/base/config-docs.js";
import { buildProgram } from "../../src/cli/program.js";

const root = resolve(import.meta.dirname, "../../..");
const CLI = resolve(import.meta.dirname, "../../src/cli.js");
const schemaNames: string[] = [...ENV_NAMES].sort();
const defaults: Partial<Record<string, string>> = settingDefaults();

const help = execFileSync(process.execPath, [CLI, "--help"], { encoding: "utf8", env: {} });
const example = readFileSync(join(root, ".env.example"), "utf8");
const readme = readFileSync(join(root, "README.md"), "utf8");

/** The text from the line starting with `from` up to the next line starting with `to`. */
function section(text: string, from: RegExp, to: RegExp): string {
  const lines = text.split("\n");
  const start = lines.findIndex((l) => from.test(l));
  assert.ok(start >= 0, `no section ${from}`);
  const end = lines.findIndex((l, i) => i > start && to.test(l));
  return lines.slice(start + 1, end < 0 ? undefined : end).join("\n");
}

const unique = (xs: Iterable<string>) => [...new Set(xs)].sort();
/** Every name in the project's own namespaces (settings, not the AWS SDK's or a scheduler's). */
const mentioned = (text: string) =>
  unique(text.match(/\b(?:ARCHIVER|ENVOY)_[A-Z0-9_]+\b|\bLOG_LEVEL\b/g) ?? []);

test("every setting with a default in the schema has one in the documented defaults, and only those", () => {
  for (const name of ENV_NAMES) {
    const value: unknown = EnvSchema.shape[name].parse(undefined);
    assert.equal(defaults[name] !== undefined, value !== undefined, name);
  }
  assert.equal(defaults.ARCHIVER_CONCURRENCY, "4");
  assert.equal(defaults.ARCHIVER_READY_STATUSES, "AVAILABLE,COMPLETED,READY");
  assert.equal(defaults.ARCHIVER_S3_PREFIX, "empty");
});

/** The settings `--help` lists: each name with its text (continuation lines joined). */
function helpEntries(): Map<string, string> {
  const entries = new Map<string, string>();
  let current: string | undefined;
  for (const line of section(help, /^Configuration/, /^AWS settings/).split("\n")) {
    const m = /^ {2}([A-Z][A-Z0-9_]+) +(.*)$/.exec(line);
    if (m) {
      current = m[1]!;
      assert.ok(!entries.has(current), `${current} listed twice`);
      entries.set(current, m[2]!);
    } else if (current && /^ {3,}\S/.test(line))
      entries.set(current, `${entries.get(current)} ${line.trim()}`);
  }
  return entries;
}

test("--help lists every setting the schema reads, with the schema's default, and nothing else", () => {
  const entries = helpEntries();
  assert.deepEqual(unique(entries.keys()), schemaNames);
  for (const m of mentioned(help)) assert.ok(schemaNames.includes(m), `--help names ${m}, which is not read`);
  for (const [name, text] of entries) {
    const d = defaults[name];
    if (d !== undefined) assert.ok(text.includes(`(default ${d})`), `${name}: default ${d} not in: ${text}`);
  }
});

test(".env.example assigns every setting the schema reads, and nothing else", () => {
  const assigned = [...example.matchAll(/^([A-Z][A-Z0-9_]*)=/gm)].map((m) => m[1]!);
  assert.deepEqual(unique(assigned), schemaNames);
  assert.equal(assigned.length, schemaNames.length, "a setting assigned twice");
  for (const m of mentioned(example)) assert.ok(schemaNames.includes(m), `.env.example names ${m}, not read`);
  // Commented-out assignments are examples of the AWS SDK's own settings, which its chain reads.
  for (const [, name] of example.matchAll(/^# ?([A-Z][A-Z0-9_]*)=/gm))
    assert.match(name!, /^AWS_/, `${name} is commented out in .env.example but is not an AWS SDK setting`);
});

test(".env.example's values are the defaults: copied as it is, it changes nothing", () => {
  const missing = join(tmpdir(), "definitely-missing.env");
  const asIs = loadConfig({ env: {}, dotenvPath: join(root, ".env.example"), requireDotenv: true });
  assert.deepEqual(asIs, loadConfig({ env: {}, dotenvPath: missing }));
});

test("the README's settings list names every setting the schema reads, with the schema's default", () => {
  const table = section(readme, /^### Settings/, /^#/);
  // One item a setting: "- `NAME` (default `value`): meaning" (or "(default empty)", or no default).
  const rows = [...table.matchAll(/^- `([A-Z][A-Z0-9_]+)`(?: \((?:default )?([^)]*)\))?:/gm)].map(
    ([all, name, cell]) => [all, name, cell ?? "none"] as const,
  );
  assert.deepEqual(unique(rows.map((r) => r[1]!)), schemaNames);
  assert.equal(rows.length, schemaNames.length, "a setting listed twice");
  for (const m of mentioned(table)) assert.ok(schemaNames.includes(m), `README names ${m}, not read`);
  for (const [, name, cell] of rows) {
    const d = defaults[name!];
    if (d !== undefined)
      assert.equal(cell, d === "empty" ? d : `\`${d}\``, `${name}'s default in the README`);
  }
});

test("the README's exit codes are the ones --help lists", () => {
  const codes = (text: string) =>
    unique(text.match(/^\s*\|? *\d+(?: *\/ *\d+)?/gm)!.flatMap((c) => c.match(/\d+/g)!));
  const fromHelp = codes(section(help, /^Exit codes:/, /^\S/));
  assert.deepEqual(fromHelp, ["0", "1", "130", "143", "2", "3", "4"]);
  assert.deepEqual(codes(section(readme, /^### Exit codes/, /^#/)), fromHelp);
});

test("the README's command table names every option of every command, and no option that does not exist", () => {
  const flags = unique(
    buildProgram().commands.flatMap((c) => c.options.filter((o) => !o.hidden).map((o) => o.long!)),
  );
  const commands = section(readme, /^### Commands/, /^#/);
  const inReadme = unique(commands.match(/--[a-z][a-z-]*/g) ?? []).filter((f) => f !== "--help");
  assert.deepEqual(inReadme, flags);
});

test("the README stays readable in a terminal: lines of at most 120 characters, internals kept in docs/", () => {
  const long = readme.split("\n").filter((l) => l.length > 120);
  assert.deepEqual(long, [], "README lines over 120 characters");
  for (const heading of [
    "## Quick start",
    "## Production use",
    "## Operating it",
    "## Troubleshooting",
    "## Reference",
  ])
    assert.ok(readme.includes(`\n${heading}\n`), `README has ${heading}`);
  assert.ok(readme.split("\n").length < 500, "the front page stays short: details go to docs/");
  assert.ok(!/\bissue \d+/i.test(readme), "issue numbers belong in docs/ or commit messages");
  assert.match(readme, /_watermark_ is/, "the watermark is defined");
});

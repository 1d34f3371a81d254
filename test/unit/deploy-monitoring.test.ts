/**
 * The Prometheus alert rules in deploy/prometheus are valid (`promtool check rules`) and each alert fires, and
 * stays quiet, as its unit tests say (`promtool test rules`); the Grafana dashboard is valid JSON whose panels all
 * query the archiver's metrics. (test/e2e/lag.test.ts finds every queried metric in a real run's /metrics.)
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";

const root = resolve(import.meta.dirname, "../../..");
const rules = join(root, "deploy/prometheus");
const NO_PROMTOOL =
  spawnSync("promtool", ["--version"]).status === 0
    ? false
    : "needs promtool (Debian package prometheus; .ci/run installs it)";

test("promtool check rules: the alert rules are valid", { skip: NO_PROMTOOL }, () => {
  const r = spawnSync("promtool", ["check", "rules", "envoy-archiver.rules.yml"], {
    cwd: rules,
    encoding: "utf8",
  });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /SUCCESS: 4 rules found/);
});

test("promtool test rules: each alert fires when it should and not before", { skip: NO_PROMTOOL }, () => {
  const r = spawnSync("promtool", ["test", "rules", "envoy-archiver.rules.test.yml"], {
    cwd: rules,
    encoding: "utf8",
  });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  const tested = readFileSync(join(rules, "envoy-archiver.rules.test.yml"), "utf8");
  for (const alert of readFileSync(join(rules, "envoy-archiver.rules.yml"), "utf8").matchAll(
    /- alert: (\w+)/g,
  ))
    assert.ok(tested.includes(`alertname: ${alert[1]}`), `${alert[1]} has a unit test`);
});

test("the Grafana dashboard: valid JSON, every panel queries the archiver's metrics", () => {
  const dash = JSON.parse(readFileSync(join(root, "deploy/grafana/envoy-archiver.json"), "utf8")) as {
    panels: { title: string; targets: { expr: string }[] }[];
  };
  assert.ok(dash.panels.length >= 6);
  for (const p of dash.panels) {
    assert.ok(p.targets.length > 0, p.title);
    for (const t of p.targets) assert.match(t.expr, /envoy_archiver_/, p.title);
  }
});

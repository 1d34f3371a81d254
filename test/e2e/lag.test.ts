/**
 * How far behind: the gauges a run leaves in its metrics (oldest waiting recording, watermark lag, last run and its
 * outcome, waiting by state) and the same figures in `status`, both read from the state DB.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, test } from "../helpers/backends.js";
import { collect, startRig, summaryOf } from "../helpers/env.js";

function metricValue(text: string, name: string): number {
  const line = text.split("\n").find((l) => l.startsWith(name + " "));
  return line ? Number(line.split(" ").pop()) : NaN;
}

describe("lag", () => {
  test("a run's metrics and status say how far behind the archive is", async () => {
    const rig = await startRig({ calls: { count: 12, seed: 91, days: 2, notReadyEvery: 4 } });
    try {
      const notReady = rig.sim.calls.filter((c) => c.recording.hasRecording && !c.recording.ready).length;
      assert.ok(notReady > 0, "the simulator has recordings not ready yet");
      const file = join(rig.dir, "lag.prom");
      const r = await rig.run(["run", "--json", "--metrics-file", file]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(summaryOf(r).not_ready, notReady);
      const text = readFileSync(file, "utf8");
      assert.equal(metricValue(text, 'envoy_archiver_pending_recordings{state="not_ready"}'), notReady);
      assert.equal(metricValue(text, 'envoy_archiver_pending_recordings{state="pending"}'), 0);
      assert.equal(metricValue(text, 'envoy_archiver_last_run_outcome{outcome="ok"}'), 1);
      assert.equal(metricValue(text, 'envoy_archiver_last_run_outcome{outcome="fatal"}'), 0);
      const lastRun = metricValue(text, "envoy_archiver_last_run_timestamp_seconds");
      assert.ok(Math.abs(lastRun - Date.now() / 1000) < 60, String(lastRun));
      assert.ok(metricValue(text, "envoy_archiver_watermark_lag_seconds") < 60);
      // The oldest waiting call, by its call time.
      const oldestCall = rig.sim.calls
        .filter((c) => c.recording.hasRecording && !c.recording.ready)
        .map((c) => c.call_time)
        .sort()[0]!;
      const oldest = metricValue(text, "envoy_archiver_oldest_pending_age_seconds");
      const expected = (Date.now() - Date.parse(oldestCall)) / 1000;
      assert.ok(Math.abs(oldest - expected) < 60, `${oldest} s, expected ${expected} s`);

      const s = await rig.run(["status", "--json"]);
      assert.equal(s.code, 0, s.stderr);
      const lag = (JSON.parse(s.stdout) as { lag: Record<string, unknown> }).lag;
      assert.deepEqual(lag.pending, {
        pending: 0,
        not_ready: notReady,
        failed_retryable: 0,
        failed_permanent: 0,
      });
      assert.equal((lag.last_run as { outcome: string }).outcome, "ok");
      assert.equal(Date.parse(lag.oldest_pending_since as string), Date.parse(oldestCall));
      assert.ok(Number(lag.watermark_lag_s) < 60);
      assert.ok(Number(lag.since_last_success_s) < 60);
      const human = await rig.run(["status"]);
      assert.match(human.stdout, /^lag$/m);
      assert.match(human.stdout, new RegExp(`waiting +0 pending, ${notReady} not ready`));
      assert.match(human.stdout, /last run +\S+ ok/);
    } finally {
      await rig.close();
    }
  });
});

/** Every metric a Grafana panel or an alert rule in deploy/ queries (histogram series by their family name). */
function queriedMetrics(): string[] {
  const root = resolve(import.meta.dirname, "../../..");
  const text =
    readFileSync(join(root, "deploy/grafana/envoy-archiver.json"), "utf8") +
    readFileSync(join(root, "deploy/prometheus/envoy-archiver.rules.yml"), "utf8");
  const names = (text.match(/envoy_archiver_[a-z_]+/g) ?? []).map((n) =>
    n.replace(/_(bucket|sum|count)$/, ""),
  );
  return [...new Set(names)].sort();
}

describe("dashboards and alerts", () => {
  test("every metric a dashboard panel or an alert rule queries is in a real worker's /metrics", async () => {
    const queried = queriedMetrics();
    assert.ok(queried.length >= 10, queried.join(" "));
    const rig = await startRig({ calls: { count: 3, seed: 92, days: 1 } });
    try {
      const child = rig.spawn(["worker", "--cron", "0 0 1 1 *", "--run-on-start", "--metrics-port", "0"]);
      const result = collect(child);
      let stderr = "";
      child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
      let metrics = "";
      for (let i = 0; i < 300 && !/envoy_archiver_runs_total\{outcome="ok"\} 1/.test(metrics); i++) {
        await new Promise((r) => setTimeout(r, 100));
        const url = /"metrics":"(http:[^"]+?)\/?"/.exec(stderr)?.[1];
        if (url) metrics = await (await fetch(`${url}/metrics`)).text();
      }
      child.kill("SIGTERM");
      await result;
      assert.match(metrics, /envoy_archiver_runs_total\{outcome="ok"\} 1/, stderr);
      const exposed = new Set([...metrics.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!));
      const missing = queried.filter((n) => !exposed.has(n));
      assert.deepEqual(missing, [], `queried but not in /metrics: ${missing.join(", ")}`);
    } finally {
      await rig.close();
    }
  });
});

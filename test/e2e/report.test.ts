/**
 * The attestation report rendered the way a person sees it: headless Chromium (Debian's /usr/bin/chromium, driven
 * by playwright-core; no browser is downloaded) opens the HTML file offline and the test reads what is on the
 * page: the window, the counts, one bar per day of the window with the right heights, the integrity facts. The
 * report's SHA-256 is the one printed and recorded in the audit trail; its manifest SHA-256 is reproducible.
 */
import { after, before } from "node:test";
import { describe, test } from "../helpers/backends.js";
import assert from "node:assert/strict";
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { sha256, startRig, type Rig } from "../helpers/env.js";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

interface Data {
  window: { since: string; until: string };
  archived: { count: number; bytes: number; per_day: { day: string; count: number }[] };
  manifest_sha256: string;
  last_deep_verify: { outcome: string } | null;
  audit: { records: number; broken: unknown; head: { seq: number; sha256: string } };
  settings: Record<string, unknown>;
  completeness: { missing_calls: number; first_day: string } | null;
  sha256: string;
}

describe("attestation report: self-contained HTML, as Chromium shows it", () => {
  let rig: Rig;
  before(async () => {
    rig = await startRig({ calls: { count: 9, seed: 13, days: 4, sizeBytes: { min: 2_000, max: 40_000 } } });
    assert.equal((await rig.run(["run"])).code, 0);
    assert.equal((await rig.run(["verify", "--deep"])).code, 0);
  });
  after(() => rig.close());

  test("counts, chart and window on the page; its SHA-256 in the audit trail", async (t) => {
    const day = (c: Rig["sim"]["calls"][number]) =>
      (c.recording.recording_start_time ?? c.call_time).slice(0, 10);
    const days = [...new Set(rig.sim.calls.map(day))].sort();
    // A window one day wider than the recordings on each side: the chart shows empty days too.
    const dayAt = (d: string, delta: number) =>
      new Date(Date.parse(`${d}T00:00:00Z`) + delta * 86_400_000).toISOString().slice(0, 10);
    const since = dayAt(days[0]!, -1);
    const until = dayAt(days.at(-1)!, 1);
    // The window checked against the source first: the report shows the last such check.
    const v = await rig.run(["verify", "--source", "--since", since, "--until", until]);
    assert.equal(v.code, 0, v.stderr);
    const out = join(rig.dir, "report.html");
    const r = await rig.run(["report", "--since", since, "--until", until, "--out", out, "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const data = JSON.parse(r.stdout) as Data;
    const html = readFileSync(out);
    assert.equal(sha256(html), data.sha256);
    assert.match(r.stderr, new RegExp(`sha256 ${data.sha256}`));
    assert.equal(statSync(out).mode & 0o777, 0o600);
    assert.equal(data.archived.count, rig.sim.calls.length);
    assert.equal(
      data.archived.bytes,
      rig.sim.calls.reduce((n, c) => n + c.recording.size, 0),
    );
    assert.equal(data.last_deep_verify?.outcome, "ok");
    assert.equal(data.completeness?.missing_calls, 0);
    assert.equal(data.completeness?.first_day, since);
    assert.equal(data.audit.broken, null);
    assert.equal(JSON.stringify(data.settings).includes(rig.sim.apiKey), false, "no secret in the settings");
    assert.equal(html.toString().includes(rig.sim.apiKey), false, "no secret in the report");
    // The manifest SHA-256 it states is the one `manifest` gives for the same window.
    const m = await rig.run(["manifest", "--format", "csv", "--since", since, "--until", until]);
    assert.equal(sha256(Buffer.from(m.stdout)), data.manifest_sha256);
    // The report itself is in the trail, with its SHA-256.
    const trail = (await rig.run(["audit", "--json"])).stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { record: { command: string; details: string } });
    const rec = trail.find((x) => x.record.command === "report");
    assert.ok(rec?.record.details.includes(data.sha256), "the report's SHA-256 is recorded");

    if (!existsSync(CHROMIUM)) {
      t.skip(
        `${CHROMIUM} is not installed (Debian package chromium; .ci/run installs it): the rendering is not checked`,
      );
      return;
    }
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
    try {
      const page = await browser.newPage();
      const requests: string[] = [];
      page.on("request", (q) => requests.push(q.url()));
      await page.goto(`file://${out}`);
      assert.deepEqual(requests, [`file://${out}`], "nothing fetched but the file itself");
      assert.equal(await page.textContent("#window"), `${since} to ${until}`);
      assert.equal(await page.textContent("#archived-count"), String(rig.sim.calls.length));
      assert.equal(await page.textContent("#hold-count"), "0");
      assert.ok(await page.isVisible("#chart"));
      const bars = await page.$$eval("#chart rect.bar", (rs) =>
        rs.map((b) => {
          const box = b.getBoundingClientRect();
          return {
            day: b.getAttribute("data-day"),
            count: Number(b.getAttribute("data-count")),
            height: box.height,
          };
        }),
      );
      const windowDays = Math.round((Date.parse(until) - Date.parse(since)) / 86_400_000) + 1;
      assert.equal(bars.length, windowDays, "one bar per day of the window");
      assert.equal(bars[0]!.day, since);
      assert.equal(bars.at(-1)!.day, until);
      for (const b of bars) {
        const want = rig.sim.calls.filter((c) => day(c) === b.day).length;
        assert.equal(b.count, want, b.day!);
        assert.equal(b.height > 0, want > 0, `${b.day}: a visible bar exactly when recordings were archived`);
      }
      const tallest = bars.reduce((a, b) => (b.count > a.count ? b : a));
      for (const b of bars)
        assert.ok(
          Math.abs(b.height / tallest.height - b.count / tallest.count) < 0.05,
          "heights in proportion",
        );
      const text = await page.innerText("body");
      assert.match(text, new RegExp(`Manifest of this window: SHA-256 ${data.manifest_sha256}`));
      assert.match(text, /Audit trail: intact/);
      assert.match(text, /Last deep verify .* outcome ok/);
      assert.match(
        text,
        new RegExp(
          `Last checked by verify-source-\\S+ at .*: \\d+ UTC days, ${since} to ${until}: every call the source counts is archived`,
        ),
      );
      await page.screenshot({ path: join(rig.dir, "report.png"), fullPage: true });
    } finally {
      await browser.close();
    }
  });
});

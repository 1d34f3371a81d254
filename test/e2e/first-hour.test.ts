/**
 * The first hour and the bad day (issue 20): settings that take wherever they are given, read and compliance
 * commands that never pass by mistake, and what an operator sees. The built CLI against the simulator and S3.
 */
import { after, before } from "node:test";
import { describe, test } from "../helpers/backends.js";
import assert from "node:assert/strict";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startRig, summaryOf, type Rig } from "../helpers/env.js";

const AWS_NAMES = [
  "AWS_ENDPOINT_URL_S3",
  "AWS_REGION",
  "AWS_ACCESS_KEY_ID",
  "AWS_SECRET_ACCESS_KEY",
] as const;

describe("the first hour: settings, read commands, compliance commands", () => {
  let rig: Rig;
  before(async () => {
    rig = await startRig({ calls: { count: 6, seed: 20, days: 2, notReadyEvery: 0, noRecordingEvery: 0 } });
  });
  after(() => rig.close());

  test("AWS settings (endpoint, region, keys) only in a --dotenv file reach the S3 client", async () => {
    const file = join(rig.dir, "aws.env");
    writeFileSync(file, AWS_NAMES.map((n) => `${n}=${rig.env[n]}`).join("\n") + "\n");
    const saved = Object.fromEntries(AWS_NAMES.map((n) => [n, rig.env[n]]));
    for (const n of AWS_NAMES) delete rig.env[n];
    try {
      const r = await rig.run(["run", "--json", "--dotenv", file]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(summaryOf(r).archived, 6);
      assert.ok(!r.stderr.includes(saved.AWS_SECRET_ACCESS_KEY!), "the secret key is never printed");
    } finally {
      Object.assign(rig.env, saved);
    }
  });
});

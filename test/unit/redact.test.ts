import { test } from "node:test";
import assert from "node:assert/strict";
import { redactJson, redactText, registerSecrets } from "../../src/base/redact.js";
import { headerValue, credentialProblem, isHeaderSafe } from "../../src/base/header-values.js";

test("registered secrets are masked everywhere, URL-encoded forms too", () => {
  registerSecrets(["envai_live_unit+secret/1", undefined, "ab"]);
  const out = redactText("key envai_live_unit+secret/1 or envai_live_unit%2Bsecret%2F1; ab stays");
  assert.equal(out, "key [REDACTED] or [REDACTED]; ab stays");
});

test("URLs lose their query; signature parameters, bearer tokens and JWTs are masked", () => {
  const jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";
  const out = redactText(
    `see https://cdn.example.com/a.m4a?X-Amz-Signature=abc and Signature=def; token=ghi, Bearer xyz ${jwt}`,
  );
  assert.equal(
    out,
    "see https://cdn.example.com/a.m4a?REDACTED and Signature=REDACTED; token=REDACTED, Bearer [REDACTED] [REDACTED]",
  );
});

test("JSON from the source: every string redacted, credential-like keys replaced, shape kept", () => {
  const v = redactJson({
    id: "call_1",
    download_url: "https://cdn.example.com/x?sig=1",
    authorization: "AWS4-HMAC-SHA256 Credential=AKIAX/1, Signature=2",
    headers: { Authorization: "Bearer t", "X-Api-Key": "k" },
    access_token: "t",
    refresh_token: 42,
    token_count: 3,
    nested: [{ link: "http://h/p?q=1" }, null, 7],
  });
  assert.deepEqual(v, {
    id: "call_1",
    download_url: "https://cdn.example.com/x?REDACTED",
    authorization: "[REDACTED]",
    headers: { Authorization: "[REDACTED]", "X-Api-Key": "[REDACTED]" },
    access_token: "[REDACTED]",
    refresh_token: "[REDACTED]",
    token_count: 3,
    nested: [{ link: "http://h/p?REDACTED" }, null, 7],
  });
});

test("header values: CR/LF and non-Latin-1 are percent-encoded, and decode back", () => {
  for (const v of ["2026-11-24T10:00:00Z\r\nX-Evil: 1", "2026 通话", "50% \u00e9", "x\ud800y"]) {
    const h = headerValue(v);
    assert.ok(isHeaderSafe(h), h);
    assert.equal(decodeURIComponent(h), v.replace("\ud800", "\ufffd"));
  }
  assert.equal(headerValue("2026-11-24T10:00:00Z"), "2026-11-24T10:00:00Z", "clean values unchanged");
  assert.equal(credentialProblem("envai_live_ok"), undefined);
  assert.match(credentialProblem("k\r\nX: y") ?? "", /line break/);
  assert.match(credentialProblem("kéy") ?? "", /printable ASCII/);
});

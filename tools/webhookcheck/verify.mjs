#!/usr/bin/env node
// verify checks Standard Webhooks signatures with the reference JavaScript
// library (standardwebhooks on npm), a signer independent of the Go code in
// appliance/reaction/webhook. It exists for tests: the Go package
// appliance/reaction/webhook/webhooktest drives it.
//
//	node verify.mjs < items.jsonl
//
// Each input line is a JSON object
//
//	{"secret": "whsec_...", "headers": {"webhook-id": "...", ...}, "body": "...", "now": 1614265330}
//
// where "now" (Unix seconds) is optional: when present, the library's clock
// reads that instant during this verification, so a fixed test vector can be
// checked despite the library's ±5 minute timestamp tolerance.
//
// For every non-blank input line, in order, one output line: {"ok":true} or
// {"ok":false,"error":"<the library's message>"}. A malformed input line
// also yields {"ok":false,...}, so output lines always match input lines.
import { createInterface } from "node:readline";
import { Webhook } from "standardwebhooks";

function verify(item) {
  const realNow = Date.now;
  if (typeof item.now === "number") {
    Date.now = () => item.now * 1000;
  }
  try {
    new Webhook(item.secret).verify(item.body, item.headers);
    return { ok: true };
  } finally {
    Date.now = realNow;
  }
}

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of lines) {
  if (line.trim() === "") {
    continue;
  }
  let out;
  try {
    out = verify(JSON.parse(line));
  } catch (e) {
    out = { ok: false, error: String(e?.message ?? e) };
  }
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { LogOutput, MemorySink, formatLevelSpec, parseLevelSpec } from "./index.ts";

describe("parseLevelSpec", () => {
  it("parses a default level and per-scope overrides", () => {
    const r = parseLevelSpec("warn,xds=debug,access=off");
    assert.ok(r.ok);
    assert.equal(r.value.defaultLevel, "warn");
    assert.equal(r.value.scopes.get("xds"), "debug");
    assert.equal(r.value.scopes.get("access"), "off");
    assert.equal(formatLevelSpec(r.value), "warn,xds=debug,access=off");
  });

  it("names the bad level", () => {
    const r = parseLevelSpec("info,xds=loud");
    assert.deepEqual(r, { ok: false, reason: 'unknown log level "loud" for scope xds' });
    assert.deepEqual(parseLevelSpec("chatty"), { ok: false, reason: 'unknown log level "chatty"' });
  });
});

describe("LogOutput", () => {
  it("filters by scope level and writes plain fields", () => {
    const sink = new MemorySink();
    const spec = parseLevelSpec("info,xds=warn");
    assert.ok(spec.ok);
    const out = new LogOutput({ spec: spec.value, sink });
    out.logger("xds").info("hidden");
    out.logger("xds").warn("shown", { type: "Address" });
    out.logger("access").info("connection complete", {
      "src.addr": "198.18.0.5:4000",
      bytes_sent: 12,
      note: "two words",
    });
    assert.equal(sink.lines.length, 2);
    assert.match(sink.lines[0]!, /\twarn\txds\tshown type=Address\n$/);
    assert.match(
      sink.lines[1]!,
      /\tinfo\taccess\tconnection complete src\.addr=198\.18\.0\.5:4000 bytes_sent=12 note="two words"\n$/,
    );
  });

  it("writes JSON lines", () => {
    const sink = new MemorySink();
    const out = new LogOutput({ format: "json", sink });
    out.logger("access").warn("connection failed", { error: "refused", skipped: undefined });
    const obj = JSON.parse(sink.lines[0]!) as Record<string, unknown>;
    assert.equal(obj.level, "warn");
    assert.equal(obj.scope, "access");
    assert.equal(obj.message, "connection failed");
    assert.equal(obj.error, "refused");
    assert.ok(!("skipped" in obj));
  });
});

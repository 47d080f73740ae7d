import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { LogOutput, MemorySink, formatLevelSpec, parseLevelSpec } from "../../lib/log/index.ts";
import { adminHandler } from "./admin.ts";
import { handleLogging, mergeLevelSpec } from "./logging.ts";

function spec(text: string) {
  const r = parseLevelSpec(text);
  if (!r.ok) throw new Error(r.reason);
  return r.value;
}

describe("/logging", () => {
  const initial = spec("info,access=warn");

  it("GET shows the current level", () => {
    const out = new LogOutput({ spec: initial, sink: new MemorySink() });
    assert.deepEqual(handleLogging("GET", new URLSearchParams(), out, initial), {
      status: 200,
      body: "current log level is info,access=warn\n",
    });
  });

  it("POST ?level= changes it at runtime and the loggers follow", () => {
    const sink = new MemorySink();
    const out = new LogOutput({ spec: initial, sink });
    const xds = out.logger("xds");
    xds.debug("hidden");
    const r = handleLogging("POST", new URLSearchParams("level=xds=debug"), out, initial);
    assert.deepEqual(r, { status: 200, body: "current log level is info,access=warn,xds=debug\n" });
    xds.debug("shown");
    assert.equal(sink.lines.length, 1);
    assert.match(sink.lines[0]!, /\tdebug\txds\tshown/);

    handleLogging("POST", new URLSearchParams("level=warn"), out, initial);
    assert.equal(
      formatLevelSpec(out.spec),
      "warn,access=warn,xds=debug",
      "a bare level sets the default only",
    );
    handleLogging("POST", new URLSearchParams("reset"), out, initial);
    assert.equal(formatLevelSpec(out.spec), "info,access=warn");
  });

  it("a bad spec is 400 with the reason and changes nothing", () => {
    const out = new LogOutput({ spec: initial, sink: new MemorySink() });
    const r = handleLogging("POST", new URLSearchParams("level=xds=loud"), out, initial);
    assert.equal(r.status, 400);
    assert.match(r.body, /unknown log level "loud" for scope xds/);
    assert.equal(formatLevelSpec(out.spec), "info,access=warn");
    assert.equal(handleLogging("PUT", new URLSearchParams(), out, initial).status, 405);
  });

  it("mergeLevelSpec keeps scopes not mentioned", () => {
    const merged = mergeLevelSpec(spec("debug,a=info,b=off"), "b=trace,c=error");
    assert.ok(typeof merged !== "string");
    assert.equal(formatLevelSpec(merged), "debug,a=info,b=trace,c=error");
  });
});

describe("admin endpoints", () => {
  const out = new LogOutput({ sink: new MemorySink() });
  let quits = 0;
  const handler = adminHandler({
    configDump: () => ({ workloads: [] }),
    logOutput: out,
    initialLogSpec: out.spec,
    quit: () => {
      quits++;
    },
  });
  const call = (method: string, path: string) =>
    handler({ method, path, query: new URLSearchParams() });

  it("lists the endpoints at /", async () => {
    const r = await call("GET", "/");
    assert.equal(r.status, 200);
    for (const p of ["config_dump", "logging", "quitquitquit"]) assert.ok(r.body.includes(p), p);
  });

  it("serves /config_dump as JSON", async () => {
    const r = await call("GET", "/config_dump");
    assert.equal(r.contentType, "application/json");
    assert.deepEqual(JSON.parse(r.body), { workloads: [] });
  });

  it("/quitquitquit needs POST, answers, then quits", async () => {
    assert.equal((await call("GET", "/quitquitquit")).status, 405);
    const r = await call("POST", "/quitquitquit");
    assert.equal(r.status, 200);
    assert.equal(quits, 0, "the answer goes out before the shutdown starts");
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(quits, 1);
  });

  it("404 elsewhere", async () => {
    assert.equal((await call("GET", "/nope")).status, 404);
  });
});

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AmbientError } from "../../lib/errors.ts";
import { HboneError } from "../../lib/hbone/index.ts";
import { responseFlagFor } from "./context.ts";

describe("responseFlagFor", () => {
  it("maps upstream failures to Istio's response flags", () => {
    assert.equal(responseFlagFor(new HboneError("HBONE_STATUS", "x", { status: 401 })), "DENY");
    assert.equal(responseFlagFor(new HboneError("HBONE_STATUS", "x", { status: 503 })), "CONNECT");
    assert.equal(responseFlagFor(new HboneError("HBONE_CONNECT_TIMEOUT", "x")), "NETWORK_POLICY");
    assert.equal(responseFlagFor(new HboneError("HBONE_TLS_FAILED", "x")), "TLS_FAILURE");
    assert.equal(responseFlagFor(new HboneError("HBONE_IDENTITY_MISMATCH", "x")), "IDENTITY_ERROR");
    assert.equal(responseFlagFor(new HboneError("HBONE_ALPN", "x")), "H2_HANDSHAKE_FAILURE");
    assert.equal(responseFlagFor(new HboneError("HBONE_CONNECT_FAILED", "x")), "CONNECT");
    assert.equal(responseFlagFor(new AmbientError("ECONNREFUSED", "x")), "CONNECT");
    assert.equal(responseFlagFor(new AmbientError("ECONNABORTED", "x")), "-");
  });
});

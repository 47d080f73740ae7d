import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  checkDns1035Label,
  checkDns1123Label,
  checkDns1123Subdomain,
  checkLabelValue,
  checkPortName,
  checkQualifiedName,
} from "./names.ts";

describe("name syntax", () => {
  it("DNS-1123 subdomains", () => {
    assert.equal(checkDns1123Subdomain("reviews.v1"), undefined);
    assert.equal(checkDns1123Subdomain("a"), undefined);
    assert.match(checkDns1123Subdomain("Bad_Name")!, /RFC 1123 subdomain/);
    assert.match(checkDns1123Subdomain("-x")!, /RFC 1123/);
    assert.match(checkDns1123Subdomain("a..b")!, /RFC 1123/);
    assert.match(checkDns1123Subdomain("a".repeat(254))!, /253/);
  });

  it("DNS-1123 and DNS-1035 labels", () => {
    assert.equal(checkDns1123Label("9lives"), undefined);
    assert.match(checkDns1123Label("a.b")!, /RFC 1123 label/);
    assert.match(checkDns1123Label("a".repeat(64))!, /63/);
    assert.equal(checkDns1035Label("reviews"), undefined);
    assert.match(checkDns1035Label("9lives")!, /starting with a letter/);
  });

  it("label and annotation keys and values", () => {
    assert.equal(checkQualifiedName("app"), undefined);
    assert.equal(checkQualifiedName("istio.io/dataplane-mode"), undefined);
    assert.match(checkQualifiedName("Bad_Prefix/x")!, /prefix/);
    assert.match(checkQualifiedName("a/")!, /must not be empty/);
    assert.match(checkQualifiedName("bad key!")!, /name part/);
    assert.equal(checkLabelValue(""), undefined);
    assert.equal(checkLabelValue("v1.2_beta-3"), undefined);
    assert.match(checkLabelValue("no spaces")!, /letters/);
  });

  it("IANA port names", () => {
    assert.equal(checkPortName("http"), undefined);
    assert.equal(checkPortName("grpc-web"), undefined);
    assert.match(checkPortName("8080")!, /at least one letter/);
    assert.match(checkPortName("a--b")!, /consecutive/);
    assert.match(checkPortName("much-too-long-name")!, /15/);
  });
});

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ZDS_MAX_MESSAGE_BYTES } from "./constants.ts";
import {
  decodeAck,
  decodeHello,
  decodeRequest,
  encodeAck,
  encodeHello,
  encodeRequest,
  fitUtf8,
} from "./codec.ts";
import type { ZdsPacket, ZdsRequest } from "./types.ts";

const info = {
  name: "productpage-v1-7d4",
  namespace: "bookinfo",
  serviceAccount: "bookinfo-productpage",
};

function packet(data: Uint8Array, fds: number[] = [], extra: Partial<ZdsPacket> = {}): ZdsPacket {
  return { data, fds, truncated: false, fdsTruncated: false, ...extra };
}

function encoded(request: ZdsRequest): Uint8Array {
  const r = encodeRequest(request);
  assert.ok(r.ok, r.ok ? "" : r.reason);
  return r.value;
}

function reason(r: { ok: true } | { ok: false; reason: string }): string {
  assert.equal(r.ok, false, "expected a failure");
  return r.ok ? "" : r.reason;
}

describe("ZDS wire format (Istio's field numbers)", () => {
  it("encodes ZdsHello{version: V1} as field 1 = 1", () => {
    assert.deepEqual([...encodeHello()], [0x08, 0x01]);
  });

  it("puts del at WorkloadRequest field 2 with its uid at DelWorkload field 2", () => {
    assert.deepEqual(
      [...encoded({ kind: "del", uid: "abc" })],
      [0x12, 0x05, 0x12, 0x03, 0x61, 0x62, 0x63],
    );
  });

  it("puts keep at field 5 with its uid at field 1, and snapshot_sent at field 3", () => {
    assert.deepEqual([...encoded({ kind: "keep", uid: "u" })], [0x2a, 0x03, 0x0a, 0x01, 0x75]);
    assert.deepEqual([...encoded({ kind: "snapshot-sent" })], [0x1a, 0x00]);
  });

  it("puts add at field 1: uid field 1, workload_info field 2 (name 1, namespace 2, sa 3)", () => {
    const bytes = encoded({
      kind: "add",
      uid: "u",
      info: { name: "n", namespace: "s", serviceAccount: "a" },
    });
    assert.deepEqual(
      [...bytes],
      [
        0x0a, 0x0e, 0x0a, 0x01, 0x75, 0x12, 0x09, 0x0a, 0x01, 0x6e, 0x12, 0x01, 0x73, 0x1a, 0x01,
        0x61,
      ],
    );
  });

  it("encodes an Ack at WorkloadResponse field 1 with error at field 1", () => {
    assert.deepEqual([...encodeAck()], [0x0a, 0x00]);
    assert.deepEqual([...encodeAck("x")], [0x0a, 0x03, 0x0a, 0x01, 0x78]);
  });
});

describe("decodeRequest", () => {
  it("round-trips every request kind", () => {
    const add = decodeRequest(packet(encoded({ kind: "add", uid: "pod-1", info }), [42]));
    assert.deepEqual(add, { ok: true, value: { kind: "add", uid: "pod-1", info, netnsFd: 42 } });
    assert.deepEqual(decodeRequest(packet(encoded({ kind: "keep", uid: "pod-2" }))), {
      ok: true,
      value: { kind: "keep", uid: "pod-2" },
    });
    assert.deepEqual(decodeRequest(packet(encoded({ kind: "del", uid: "pod-3" }))), {
      ok: true,
      value: { kind: "del", uid: "pod-3" },
    });
    assert.deepEqual(decodeRequest(packet(encoded({ kind: "snapshot-sent" }))), {
      ok: true,
      value: { kind: "snapshot-sent" },
    });
  });

  it("rejects a truncated packet, naming the limit and the size", () => {
    const r = reason(
      decodeRequest(packet(new Uint8Array(1024), [], { truncated: true, size: 2000 })),
    );
    assert.match(r, /truncated/);
    assert.match(r, /2000 bytes/);
    assert.match(r, /1024/);
  });

  it("rejects fds on anything but add", () => {
    assert.match(
      reason(decodeRequest(packet(encoded({ kind: "del", uid: "p" }), [7]))),
      /del for pod p carried 1 fd.*only add/,
    );
    assert.match(
      reason(decodeRequest(packet(encoded({ kind: "keep", uid: "p" }), [7]))),
      /keep for pod p carried 1 fd/,
    );
    assert.match(
      reason(decodeRequest(packet(encoded({ kind: "snapshot-sent" }), [7, 8]))),
      /snapshot_sent carried 2 fd/,
    );
  });

  it("rejects an add without exactly one fd", () => {
    const bytes = encoded({ kind: "add", uid: "p", info });
    assert.match(
      reason(decodeRequest(packet(bytes))),
      /add for pod p came without the pod's netns fd/,
    );
    assert.match(reason(decodeRequest(packet(bytes, [3, 4]))), /carried 2 fds; exactly one/);
    assert.match(
      reason(decodeRequest(packet(bytes, [3], { fdsTruncated: true }))),
      /more file descriptors than the receiver accepts/,
    );
  });

  it("rejects an add without workload_info", () => {
    // WorkloadRequest{add: AddWorkload{uid: "p"}}
    const bytes = Uint8Array.from([0x0a, 0x03, 0x0a, 0x01, 0x70]);
    assert.match(reason(decodeRequest(packet(bytes, [5]))), /add for pod p has no workload_info/);
  });

  it("rejects an empty uid", () => {
    assert.match(
      reason(decodeRequest(packet(Uint8Array.from([0x12, 0x00])))),
      /del has an empty pod uid/,
    );
  });

  it("rejects a payload it does not know, naming the field", () => {
    // Field 4 is not a WorkloadRequest payload (Istio skipped it).
    assert.match(
      reason(decodeRequest(packet(Uint8Array.from([0x22, 0x00])))),
      /no payload this ztunnel knows \(unknown field 4\)/,
    );
    assert.match(
      reason(decodeRequest(packet(Uint8Array.from([0x30, 0x01])))),
      /no payload this ztunnel knows \(unknown field 6\)/,
    );
  });

  it("rejects bytes that are not protobuf", () => {
    assert.match(
      reason(decodeRequest(packet(Uint8Array.from([0x0a, 0x7f, 0x01])))),
      /not valid protobuf/,
    );
  });
});

describe("encodeRequest limits", () => {
  it("refuses a request that would not fit in ztunnel's 1024-byte read", () => {
    const r = encodeRequest({ kind: "add", uid: "p", info: { ...info, name: "n".repeat(1100) } });
    assert.match(reason(r), /would be \d+ bytes; ztunnel reads at most 1024/);
  });

  it("refuses an empty uid", () => {
    assert.match(reason(encodeRequest({ kind: "keep", uid: "" })), /empty pod uid/);
  });
});

describe("Acks", () => {
  it("decodes success and error text", () => {
    assert.deepEqual(decodeAck(packet(encodeAck())), { ok: true, value: { error: "" } });
    assert.deepEqual(decodeAck(packet(encodeAck("failed to start proxy"))), {
      ok: true,
      value: { error: "failed to start proxy" },
    });
  });

  it("cuts a long error so the Ack still fits the agent's read, at a character boundary", () => {
    const long = "é".repeat(2000); // 2 bytes each
    const bytes = encodeAck(long);
    assert.ok(bytes.length <= ZDS_MAX_MESSAGE_BYTES, `${bytes.length} bytes`);
    const back = decodeAck(packet(bytes));
    assert.ok(back.ok);
    assert.ok(back.value.error.endsWith("..."));
    assert.ok(!back.value.error.includes("\ufffd"), "no split character");
    assert.equal(fitUtf8("short", 10), "short");
  });

  it("rejects fds, truncation and non-Ack responses", () => {
    assert.match(reason(decodeAck(packet(encodeAck(), [9]))), /must carry none/);
    assert.match(reason(decodeAck(packet(encodeAck(), [], { truncated: true }))), /truncated/);
    assert.match(
      reason(decodeAck(packet(Uint8Array.from([0x12, 0x00])))),
      /not an Ack \(unknown field 2\)/,
    );
  });
});

describe("decodeHello", () => {
  it("accepts V1 and later versions, rejects NOT_USED", () => {
    assert.deepEqual(decodeHello(packet(encodeHello())), { ok: true, value: { version: 1 } });
    assert.deepEqual(decodeHello(packet(encodeHello(2))), { ok: true, value: { version: 2 } });
    assert.match(reason(decodeHello(packet(Uint8Array.from([0x08, 0x00])))), /no version/);
  });

  it("rejects fds and garbage", () => {
    assert.match(reason(decodeHello(packet(encodeHello(), [3]))), /must carry none/);
    assert.match(reason(decodeHello(packet(Uint8Array.from([0xff])))), /not valid protobuf/);
  });
});

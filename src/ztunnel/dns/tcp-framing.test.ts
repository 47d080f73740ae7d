import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { DnsTcpDecoder, frame } from "./tcp-framing.ts";

function messages(count: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const m = Buffer.alloc(12 + ((i * 37) % 300));
    for (let j = 0; j < m.length; j++) m[j] = (i * 7 + j) & 0xff;
    out.push(m);
  }
  return out;
}

function decodeAll(stream: Buffer, chunkSizes: (i: number) => number): Buffer[] {
  const got: Buffer[] = [];
  const d = new DnsTcpDecoder();
  let o = 0;
  for (let i = 0; o < stream.length; i++) {
    const n = Math.max(1, chunkSizes(i));
    assert.equal(
      d.push(stream.subarray(o, o + n), (m) => got.push(Buffer.from(m))),
      true,
    );
    o += n;
  }
  assert.equal(d.pending, false);
  return got;
}

describe("DnsTcpDecoder", () => {
  const msgs = messages(25);
  const stream = Buffer.concat(msgs.map(frame));

  it("decodes messages fed all at once", () => {
    assert.deepEqual(
      decodeAll(stream, () => stream.length),
      msgs,
    );
  });

  it("decodes messages fed one byte at a time", () => {
    assert.deepEqual(
      decodeAll(stream, () => 1),
      msgs,
    );
  });

  it("decodes any chunking", () => {
    for (const size of [2, 3, 5, 13, 64, 333]) {
      assert.deepEqual(
        decodeAll(stream, () => size),
        msgs,
        `chunks of ${size}`,
      );
    }
    let seed = 42;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % 97) + 1;
    assert.deepEqual(decodeAll(stream, rnd), msgs, "random chunking");
  });

  it("reports a zero length prefix", () => {
    const d = new DnsTcpDecoder();
    assert.equal(
      d.push(Buffer.from([0, 0]), () => assert.fail("no message")),
      false,
    );
    const e = new DnsTcpDecoder();
    assert.equal(
      e.push(Buffer.from([0]), () => {}),
      true,
    );
    assert.equal(
      e.push(Buffer.from([0]), () => assert.fail("no message")),
      false,
    );
  });

  it("keeps a partial message pending", () => {
    const d = new DnsTcpDecoder();
    d.push(frame(Buffer.alloc(20)).subarray(0, 10), () => assert.fail("not complete"));
    assert.equal(d.pending, true);
  });

  it("handles the largest message", () => {
    const big = Buffer.alloc(65535, 7);
    assert.deepEqual(
      decodeAll(frame(big), () => 1000),
      [big],
    );
  });
});

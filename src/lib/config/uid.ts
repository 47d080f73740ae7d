/** Name-based UUIDs (RFC 9562 version 5): the same name always gives the same uid. */
import { createHash } from "node:crypto";

/** Namespace UUID for ambient's local object uids (random, fixed forever). */
const NAMESPACE = Buffer.from("6f1c1a0e2b7d4e43a1f6a1a2c0d9e5b7", "hex");

export function uuidV5(name: string, namespace: Buffer = NAMESPACE): string {
  const h = createHash("sha1").update(namespace).update(name, "utf8").digest();
  h[6] = (h[6]! & 0x0f) | 0x50;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString("hex");
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

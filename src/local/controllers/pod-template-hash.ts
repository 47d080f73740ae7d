/**
 * `pod-template-hash`, as the Deployment controller computes it: FNV-1a (32 bit) of the pod
 * template (here its canonical JSON, so the same template always gives the same hash, across
 * restarts) and the collision count, written as decimal and each digit mapped into Kubernetes'
 * name-safe alphabet.
 */
import { canonicalJson, type Json } from "../../lib/kube-api/index.ts";

const SAFE = "bcdfghjklmnpqrstvwxz2456789";

export function fnv1a32(text: string): number {
  let h = 0x811c9dc5;
  const bytes = Buffer.from(text, "utf8");
  for (const b of bytes) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** Maps each character into the safe alphabet (Kubernetes' SafeEncodeString). */
export function safeEncode(s: string): string {
  let out = "";
  for (let i = 0; i < s.length; i++) out += SAFE[s.charCodeAt(i) % SAFE.length];
  return out;
}

export function podTemplateHash(template: Json, collisionCount = 0): string {
  const text = canonicalJson(template) + (collisionCount > 0 ? `#${collisionCount}` : "");
  return safeEncode(String(fnv1a32(text)));
}

/**
 * IP address text ⇄ bytes, with Go `net/netip` rules (what istiod uses): IPv4 is 4 bytes, IPv6
 * (including IPv4-mapped `::ffff:a.b.c.d`) is 16 bytes, leading zeros in IPv4 octets and zones
 * are rejected, and formatting follows RFC 5952 the way `netip.Addr.String()` does.
 */

/** The address bytes of `text`, or undefined if it is not an IP address. */
export function parseIp(text: string): Uint8Array | undefined {
  if (text.includes(":")) return parseIpv6(text);
  return parseIpv4(text);
}

function parseIpv4(text: string): Uint8Array | undefined {
  // Hand-rolled: this runs for every pod IP on every rebuild.
  const out = new Uint8Array(4);
  let part = 0;
  let value = 0;
  let digits = 0;
  for (let i = 0; i <= text.length; i++) {
    const c = i === text.length ? 46 : text.charCodeAt(i);
    if (c === 46) {
      // "." (or the end): close the octet; no empty octets, no leading zeros.
      if (digits === 0 || part > 3) return undefined;
      out[part++] = value;
      value = 0;
      digits = 0;
      continue;
    }
    if (c < 48 || c > 57) return undefined;
    if (digits === 1 && value === 0) return undefined;
    value = value * 10 + (c - 48);
    digits++;
    if (value > 255) return undefined;
  }
  return part === 4 ? out : undefined;
}

function parseIpv6(text: string): Uint8Array | undefined {
  if (text.includes("%")) return undefined;
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const head = halves[0] === "" ? [] : (halves[0] ?? "").split(":");
  const tail = halves.length === 2 && halves[1] !== "" ? (halves[1] ?? "").split(":") : [];
  // An embedded IPv4 address may end the text (e.g. ::ffff:192.0.2.1).
  const lastList = tail.length > 0 ? tail : head;
  let v4: Uint8Array | undefined;
  if ((lastList[lastList.length - 1] ?? "").includes(".")) {
    v4 = parseIpv4(lastList.pop() ?? "");
    if (v4 === undefined) return undefined;
  }
  const wanted = v4 === undefined ? 8 : 6;
  const present = head.length + tail.length;
  if (halves.length === 1 ? present !== wanted : present >= wanted) return undefined;
  const groups = [...head, ...new Array<string>(wanted - present).fill("0"), ...tail];
  const out = new Uint8Array(16);
  for (let i = 0; i < wanted; i++) {
    const g = groups[i] ?? "";
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
    const n = parseInt(g, 16);
    out[i * 2] = n >> 8;
    out[i * 2 + 1] = n & 0xff;
  }
  if (v4 !== undefined) out.set(v4, 12);
  return out;
}

/** The text form of 4 or 16 address bytes (Go `netip.Addr.String()`). */
export function formatIp(bytes: Uint8Array): string {
  if (bytes.length === 4) return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
  if (bytes.length !== 16) return `<invalid ${bytes.length}-byte address>`;
  const isMapped =
    bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
  if (isMapped) return `::ffff:${Array.from(bytes.subarray(12)).join(".")}`;
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0));
  // Longest run of two or more zero groups becomes "::" (first one wins ties).
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (gs: number[]) => gs.map((g) => g.toString(16)).join(":");
  if (bestStart === -1) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLen))}`;
}

export interface Cidr {
  address: Uint8Array;
  prefixLength: number;
}

/** `a.b.c.d/n` or `x::y/n`; a bare address is a full-length prefix. */
export function parseCidr(text: string): Cidr | undefined {
  const slash = text.indexOf("/");
  if (slash === -1) {
    const address = parseIp(text);
    return address === undefined ? undefined : { address, prefixLength: address.length * 8 };
  }
  const address = parseIp(text.slice(0, slash));
  const lenText = text.slice(slash + 1);
  if (address === undefined || !/^[0-9]{1,3}$/.test(lenText)) return undefined;
  const prefixLength = Number(lenText);
  if (prefixLength > address.length * 8) return undefined;
  return { address, prefixLength };
}

/** Whether `bytes` is an IPv4 address (4 bytes). */
export function isIpv4(bytes: Uint8Array): boolean {
  return bytes.length === 4;
}

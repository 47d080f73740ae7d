/**
 * Shared set-up for the HBONE integration tests: a test PKI, an HBONE server whose hook connects
 * to the authority on loopback, an HBONE client, and small socket helpers. Everything a test
 * creates is registered for cleanup, which runs even when the test fails.
 */
import { createHash } from "node:crypto";
import { once } from "node:events";
import * as net from "node:net";
import * as tls from "node:tls";
import {
  HboneClient,
  HboneServer,
  type HboneClientOptions,
  type HboneServerOptions,
  type InboundDecision,
  type InboundRequest,
} from "../../src/lib/hbone/index.ts";
import { copyBidirectional, type CopyResult } from "../../src/lib/net/copy.ts";
import {
  formatIdentity,
  type Identity,
  type WorkloadCertificate,
} from "../../src/lib/identity/index.ts";
import { createTestPki, type TestPki } from "../../src/testing/pki.ts";

export const SERVER_ID = "spiffe://cluster.local/ns/server/sa/server";
export const CLIENT_ID = "spiffe://cluster.local/ns/client/sa/client";

export class Cleanup {
  readonly #fns: (() => unknown)[] = [];
  add(fn: () => unknown): void {
    this.#fns.push(fn);
  }
  async run(): Promise<void> {
    for (const fn of this.#fns.splice(0).reverse()) {
      try {
        await fn();
      } catch {
        // Cleanup must go on.
      }
    }
  }
}

export async function listen(
  server: net.Server,
  cleanup: Cleanup,
  host = "127.0.0.1",
): Promise<number> {
  server.listen(0, host);
  await once(server, "listening");
  cleanup.add(() => {
    server.close();
  });
  return (server.address() as net.AddressInfo).port;
}

export function connectTcp(port: number, host = "127.0.0.1"): Promise<net.Socket> {
  const s = net.connect({ port, host, allowHalfOpen: true, noDelay: true });
  return new Promise((resolve, reject) => {
    s.once("connect", () => {
      s.off("error", reject);
      resolve(s);
    });
    s.once("error", reject);
  });
}

/** Reads until EOF: SHA-256 and byte count. */
export function digestUntilEnd(s: NodeJS.ReadableStream): Promise<{ sha: string; bytes: number }> {
  const hash = createHash("sha256");
  let bytes = 0;
  s.on("data", (d: Buffer) => {
    hash.update(d);
    bytes += d.length;
  });
  return new Promise((resolve, reject) => {
    s.once("end", () => resolve({ sha: hash.digest("hex"), bytes }));
    s.once("error", reject);
  });
}

export function readAll(s: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  s.on("data", (d: Buffer) => chunks.push(d));
  return new Promise((resolve, reject) => {
    s.once("end", () => resolve(Buffer.concat(chunks).toString()));
    s.once("error", reject);
  });
}

/** An upstream "app" on loopback; each accepted socket goes to `handler`. */
export async function app(
  cleanup: Cleanup,
  handler: (s: net.Socket) => void,
): Promise<{ port: number; server: net.Server; sockets: net.Socket[] }> {
  const sockets: net.Socket[] = [];
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    sockets.push(s);
    s.on("error", () => {});
    handler(s);
  });
  cleanup.add(() => {
    for (const s of sockets) s.destroy();
  });
  return { port: await listen(server, cleanup), server, sockets };
}

/** An app that echoes everything and ends when the client ends. */
export function echo(s: net.Socket): void {
  s.pipe(s);
}

/**
 * The usual inbound hook: connect to the authority (an IP on loopback) before answering, 503 if
 * that fails. `decide` may refuse first (policy).
 */
export function connectingHook(
  decide?: (req: InboundRequest) => InboundDecision | undefined,
  onComplete?: (r: CopyResult, req: InboundRequest) => void,
): (req: InboundRequest) => Promise<InboundDecision> {
  return async (req) => {
    const refusal = decide?.(req);
    if (refusal !== undefined) return refusal;
    if (req.authority.kind !== "ip") {
      return { kind: "refuse", status: 503, reason: "hostname authorities are not served here" };
    }
    const upstream = net.connect({
      host: req.authority.ip,
      port: req.authority.port,
      allowHalfOpen: true,
      noDelay: true,
    });
    try {
      await new Promise<void>((resolve, reject) => {
        upstream.once("connect", resolve);
        upstream.once("error", reject);
      });
    } catch (err) {
      return { kind: "refuse", status: 503, reason: `upstream connect failed: ${String(err)}` };
    }
    return {
      kind: "accept",
      upstream,
      responseHeaders: { baggage: "k8s.namespace.name=server,service.name=echo" },
      ...(onComplete !== undefined ? { onComplete: (r: CopyResult) => onComplete(r, req) } : {}),
    };
  };
}

export interface Mesh {
  pki: TestPki;
  serverCert: WorkloadCertificate;
  clientCert: WorkloadCertificate;
  server: HboneServer;
  port: number;
  client: HboneClient;
  serverId: Identity;
  clientId: Identity;
}

/** A server on loopback with the test PKI's certificate for SERVER_ID, and a client for CLIENT_ID. */
export async function mesh(
  cleanup: Cleanup,
  opts: {
    server?: Partial<HboneServerOptions>;
    client?: Partial<HboneClientOptions>;
    hook?: HboneServerOptions["hook"];
  } = {},
): Promise<Mesh> {
  const pki = await createTestPki();
  const serverCert = await pki.issue(SERVER_ID);
  const clientCert = await pki.issue(CLIENT_ID);
  const server = new HboneServer({
    certificate: serverCert,
    hook: opts.hook ?? connectingHook(),
    ...opts.server,
  });
  const { port } = await server.listen({ port: 0, host: "127.0.0.1" });
  cleanup.add(() => server.close());
  const client = new HboneClient({
    certificates: (id) => {
      if (formatIdentity(id) === CLIENT_ID) return clientCert;
      throw new Error(`no certificate for ${formatIdentity(id)}`);
    },
    ...opts.client,
  });
  cleanup.add(() => client.close());
  return {
    pki,
    serverCert,
    clientCert,
    server,
    port,
    client,
    serverId: serverCert.identity,
    clientId: clientCert.identity,
  };
}

/** An app-facing TCP listener that tunnels each connection to `authority` (proxy A). */
export async function outboundProxy(
  cleanup: Cleanup,
  m: Mesh,
  authority: string,
): Promise<{ port: number; results: Promise<CopyResult>[] }> {
  const results: Promise<CopyResult>[] = [];
  const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (down) => {
    down.on("error", () => {});
    results.push(
      m.client
        .connect({
          source: m.clientId,
          expected: [m.serverId],
          destination: `127.0.0.1:${m.port}`,
          authority,
        })
        .then(
          (t) => new Promise<CopyResult>((resolve) => copyBidirectional(down, t.stream, resolve)),
          (err: unknown) => {
            down.resetAndDestroy();
            throw err;
          },
        ),
    );
  });
  return { port: await listen(server, cleanup), results };
}

// ---- Raw HTTP/2 over TLS, for peers that misbehave on purpose --------------------------------

export const H2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");
export const FRAME = {
  DATA: 0,
  HEADERS: 1,
  RST_STREAM: 3,
  SETTINGS: 4,
  PING: 6,
  GOAWAY: 7,
  WINDOW_UPDATE: 8,
} as const;
export const FLAG = { END_STREAM: 1, ACK: 1, END_HEADERS: 4 } as const;

export function h2Frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(stream & 0x7fffffff, 5);
  return Buffer.concat([head, payload]);
}

/** HPACK integer with an n-bit prefix (RFC 7541 §5.1). */
function hpackInt(value: number, prefixBits: number, firstByteHigh: number): number[] {
  const max = (1 << prefixBits) - 1;
  if (value < max) return [firstByteHigh | value];
  const out = [firstByteHigh | max];
  let v = value - max;
  while (v >= 128) {
    out.push((v % 128) + 128);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return out;
}

/** A header block of literal fields without indexing, new names, no Huffman (RFC 7541 §6.2.2). */
export function hpackBlock(headers: readonly (readonly [string, string])[]): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of headers) {
    const n = Buffer.from(name, "latin1");
    const v = Buffer.from(value, "latin1");
    parts.push(Buffer.from([0x00, ...hpackInt(n.length, 7, 0)]), n);
    parts.push(Buffer.from(hpackInt(v.length, 7, 0)), v);
  }
  return Buffer.concat(parts);
}

export function settingsFrame(settings: readonly (readonly [number, number])[]): Buffer {
  const p = Buffer.alloc(6 * settings.length);
  settings.forEach(([id, value], i) => {
    p.writeUInt16BE(id, i * 6);
    p.writeUInt32BE(value, i * 6 + 2);
  });
  return h2Frame(FRAME.SETTINGS, 0, 0, p);
}

export interface RawFrame {
  readonly type: number;
  readonly flags: number;
  readonly stream: number;
  readonly payload: Buffer;
}

/** Collects the frames a raw peer receives. */
export class FrameCollector {
  #buf = Buffer.alloc(0);
  readonly frames: RawFrame[] = [];
  push(chunk: Buffer): void {
    this.#buf = Buffer.concat([this.#buf, chunk]);
    while (this.#buf.length >= 9) {
      const len = this.#buf.readUIntBE(0, 3);
      if (this.#buf.length < 9 + len) break;
      this.frames.push({
        type: this.#buf[3]!,
        flags: this.#buf[4]!,
        stream: this.#buf.readUInt32BE(5) & 0x7fffffff,
        payload: this.#buf.subarray(9, 9 + len),
      });
      this.#buf = this.#buf.subarray(9 + len);
    }
  }
}

/** A TLS connection with ALPN h2 and the given client certificate (no HTTP/2 yet). */
export function rawTls(
  port: number,
  cert: { privateKeyPem: string; chainPem: readonly string[] } | undefined,
  rootsPem: readonly string[],
  cleanup: Cleanup,
  extra: tls.ConnectionOptions = {},
): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({
      host: "127.0.0.1",
      port,
      ca: [...rootsPem],
      ...(cert !== undefined ? { key: cert.privateKeyPem, cert: cert.chainPem.join("") } : {}),
      ALPNProtocols: ["h2"],
      checkServerIdentity: () => undefined,
      ...extra,
    });
    cleanup.add(() => s.destroy());
    s.once("secureConnect", () => {
      s.off("error", reject);
      resolve(s);
    });
    s.once("error", reject);
  });
}

/** Resolves when `predicate` holds, polling; rejects after `timeoutMs`. */
export async function waitFor(
  predicate: () => boolean,
  what: string,
  timeoutMs = 5000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * Where and how the client connects: `XDS_ADDRESS`-style addresses (`https://host:port`, or
 * `http://` for plaintext, or a bare `host:port` meaning TLS) and the TLS credentials, with
 * ztunnel's `ALT_XDS_HOSTNAME`: a second name accepted in the control plane's certificate.
 */
import { checkServerIdentity } from "node:tls";
import type { PeerCertificate } from "node:tls";
import { credentials } from "@grpc/grpc-js";
import type { ChannelCredentials, ChannelOptions } from "@grpc/grpc-js";
import type { Result } from "../../errors.ts";

export interface XdsTlsOptions {
  /** PEM roots to verify the control plane with; undefined = the system roots (`XDS_ROOT_CA=SYSTEM`). */
  readonly rootCertsPem?: string | Buffer;
  /** Another name the control plane's certificate may carry instead of the address's host. */
  readonly altHostname?: string;
  /** Client certificate chain and key, when the control plane wants mTLS. */
  readonly certChainPem?: string | Buffer;
  readonly privateKeyPem?: string | Buffer;
}

export interface XdsTarget {
  /** grpc-js target, e.g. `127.0.0.1:15012`. */
  readonly target: string;
  /** The host part, as certificates are checked against it. */
  readonly host: string;
  readonly secure: boolean;
}

export function parseXdsAddress(address: string): Result<XdsTarget> {
  let rest = address.trim();
  let secure = true;
  if (rest.startsWith("https://")) rest = rest.slice(8);
  else if (rest.startsWith("http://")) {
    rest = rest.slice(7);
    secure = false;
  }
  rest = rest.replace(/\/+$/, "");
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:/[\]]+):(\d{1,5})$/.exec(rest);
  const port = m === null ? NaN : Number(m[2]);
  if (m === null || !(port > 0 && port < 65536)) {
    return {
      ok: false,
      reason: `xDS address "${address}" is not [https://|http://]host:port (check XDS_ADDRESS)`,
    };
  }
  const hostPart = m[1]!;
  const host = hostPart.startsWith("[") ? hostPart.slice(1, -1) : hostPart;
  return { ok: true, value: { target: `${hostPart}:${port}`, host, secure } };
}

function toBuffer(v: string | Buffer | undefined): Buffer | null {
  return v === undefined ? null : Buffer.isBuffer(v) ? v : Buffer.from(v);
}

/** Channel credentials and the channel options they need. */
export function channelCredentials(
  target: XdsTarget,
  tls: XdsTlsOptions | undefined,
): { credentials: ChannelCredentials; options: ChannelOptions } {
  if (!target.secure) return { credentials: credentials.createInsecure(), options: {} };
  const alt = tls?.altHostname;
  const host = target.host;
  const verify = (_servername: string, cert: PeerCertificate): Error | undefined => {
    const err = checkServerIdentity(host, cert);
    if (err === undefined || alt === undefined || alt === "") return err;
    return checkServerIdentity(alt, cert) === undefined ? undefined : err;
  };
  return {
    credentials: credentials.createSsl(
      toBuffer(tls?.rootCertsPem),
      toBuffer(tls?.privateKeyPem),
      toBuffer(tls?.certChainPem),
      { checkServerIdentity: verify },
    ),
    // Send the alternate name as SNI too (an IP host is no valid SNI anyway).
    options: alt !== undefined && alt !== "" ? { "grpc.ssl_target_name_override": alt } : {},
  };
}

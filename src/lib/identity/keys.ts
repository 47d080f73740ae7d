/**
 * Key pairs. Workload keys are ECDSA P-256 (what ztunnel requests, INTEROP §1.2), written as PKCS#8
 * PEM. CA keys loaded from files may be EC (P-256/P-384/P-521, SEC1 or PKCS#8) or RSA (>= 2048
 * bits, PKCS#1 or PKCS#8) because plug-in CAs (Istio's `cacerts`) are often RSA.
 */
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPair as generateKeyPairCb,
  type KeyObject,
  type webcrypto,
} from "node:crypto";
import { AmbientError } from "../errors.ts";

export type KeyAlgorithm = "ecdsa-p256" | "ecdsa-p384" | "rsa-2048" | "rsa-3072" | "rsa-4096";

export interface GeneratedKey {
  /** PKCS#8 PEM. */
  readonly privateKeyPem: string;
  /** SPKI PEM. */
  readonly publicKeyPem: string;
}

/** Generates a key pair off the main thread (RSA generation takes tens to hundreds of ms). */
export function generateKey(algorithm: KeyAlgorithm = "ecdsa-p256"): Promise<GeneratedKey> {
  return new Promise((resolve, reject) => {
    const done = (err: Error | null, publicKeyPem: string, privateKeyPem: string) => {
      if (err !== null)
        reject(
          new AmbientError("IDENTITY_KEYGEN", `generating a ${algorithm} key failed`, {
            cause: err,
          }),
        );
      else resolve({ privateKeyPem, publicKeyPem });
    };
    const privateKeyEncoding = { type: "pkcs8", format: "pem" } as const;
    const publicKeyEncoding = { type: "spki", format: "pem" } as const;
    if (algorithm === "ecdsa-p256" || algorithm === "ecdsa-p384") {
      const namedCurve = algorithm === "ecdsa-p256" ? "prime256v1" : "secp384r1";
      generateKeyPairCb("ec", { namedCurve, privateKeyEncoding, publicKeyEncoding }, done);
    } else {
      const modulusLength = Number(algorithm.slice("rsa-".length));
      generateKeyPairCb(
        "rsa",
        { modulusLength, publicExponent: 0x10001, privateKeyEncoding, publicKeyEncoding },
        done,
      );
    }
  });
}

type Curve = "P-256" | "P-384" | "P-521";
const curveByOpenSslName: Readonly<Record<string, Curve>> = {
  prime256v1: "P-256",
  secp384r1: "P-384",
  secp521r1: "P-521",
};
const hashByCurve: Readonly<Record<Curve, "SHA-256" | "SHA-384" | "SHA-512">> = {
  "P-256": "SHA-256",
  "P-384": "SHA-384",
  "P-521": "SHA-512",
};

/** A private key ready to sign certificates and CSRs. */
export interface SigningKey {
  /** "ECDSA P-256", "RSA 2048", ... for messages. */
  readonly description: string;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  /** WebCrypto algorithm parameters for signing with this key (ECDSA+SHA-x or RSASSA-PKCS1-v1_5). */
  readonly signingAlgorithm: webcrypto.EcdsaParams | webcrypto.Algorithm;
  /** The WebCrypto handles `@peculiar/x509` signs with. */
  readonly cryptoKeys: webcrypto.CryptoKeyPair;
}

export const MIN_RSA_BITS = 2048;

/**
 * Loads a PEM private key. `source` (usually a file path) names the key in errors. Throws
 * `AmbientError` with code `IDENTITY_BAD_KEY` for unreadable, encrypted, or unsupported keys.
 */
export function loadPrivateKey(pem: string | Buffer, source = "private key"): SigningKey {
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: pem, format: "pem" });
  } catch (cause) {
    const text = typeof pem === "string" ? pem : pem.toString("latin1");
    const why = text.includes("ENCRYPTED")
      ? "it is encrypted; provide an unencrypted key"
      : "it is not a PEM private key (PKCS#8, SEC1 EC or PKCS#1 RSA)";
    throw new AmbientError("IDENTITY_BAD_KEY", `cannot load ${source}: ${why}`, { cause });
  }
  return signingKeyFrom(privateKey, source);
}

/** Wraps a Node private KeyObject; checks it is a supported type and size. */
export function signingKeyFrom(privateKey: KeyObject, source = "private key"): SigningKey {
  const publicKey = createPublicKey(privateKey);
  const details = privateKey.asymmetricKeyDetails ?? {};
  if (privateKey.asymmetricKeyType === "ec") {
    const curve = curveByOpenSslName[details.namedCurve ?? ""];
    if (curve === undefined) {
      throw new AmbientError(
        "IDENTITY_BAD_KEY",
        `cannot use ${source}: EC curve ${details.namedCurve ?? "(unknown)"} is not supported (use P-256, P-384 or P-521)`,
      );
    }
    const importParams = { name: "ECDSA", namedCurve: curve };
    return {
      description: `ECDSA ${curve}`,
      privateKey,
      publicKey,
      signingAlgorithm: { name: "ECDSA", hash: hashByCurve[curve] },
      cryptoKeys: {
        privateKey: privateKey.toCryptoKey(importParams, false, ["sign"]),
        publicKey: publicKey.toCryptoKey(importParams, true, ["verify"]),
      },
    };
  }
  if (privateKey.asymmetricKeyType === "rsa") {
    const bits = details.modulusLength ?? 0;
    if (bits < MIN_RSA_BITS) {
      throw new AmbientError(
        "IDENTITY_BAD_KEY",
        `cannot use ${source}: RSA key of ${bits} bits is too small (at least ${MIN_RSA_BITS})`,
      );
    }
    const importParams = { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" };
    return {
      description: `RSA ${bits}`,
      privateKey,
      publicKey,
      signingAlgorithm: { name: "RSASSA-PKCS1-v1_5" },
      cryptoKeys: {
        privateKey: privateKey.toCryptoKey(importParams, false, ["sign"]),
        publicKey: publicKey.toCryptoKey(importParams, true, ["verify"]),
      },
    };
  }
  throw new AmbientError(
    "IDENTITY_BAD_KEY",
    `cannot use ${source}: key type ${privateKey.asymmetricKeyType ?? "(unknown)"} is not supported (use EC or RSA)`,
  );
}

/** True when the private key belongs to the public key (compares SPKI encodings). */
export function keyMatches(privateKey: KeyObject, publicKey: KeyObject): boolean {
  const a = createPublicKey(privateKey).export({ type: "spki", format: "der" });
  const b = publicKey.export({ type: "spki", format: "der" });
  return a.equals(b);
}

/** "ECDSA P-256", "RSA 2048", ... for any public or private key. */
export function describePublicKey(key: KeyObject): string {
  const d = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === "ec") {
    return `ECDSA ${curveByOpenSslName[d.namedCurve ?? ""] ?? d.namedCurve ?? "(unknown curve)"}`;
  }
  if (key.asymmetricKeyType === "rsa") return `RSA ${d.modulusLength ?? "(unknown size)"}`;
  return key.asymmetricKeyType ?? "(unknown key type)";
}

/**
 * Whether a key may be certified: EC on P-256/P-384/P-521 or RSA of at least 2048 bits. Returns
 * the reason when it may not.
 */
export function checkCertifiableKey(key: KeyObject): string | undefined {
  const d = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === "ec") {
    return curveByOpenSslName[d.namedCurve ?? ""] === undefined
      ? `EC curve ${d.namedCurve ?? "(unknown)"} is not accepted (use P-256, P-384 or P-521)`
      : undefined;
  }
  if (key.asymmetricKeyType === "rsa") {
    const bits = d.modulusLength ?? 0;
    return bits < MIN_RSA_BITS
      ? `RSA key of ${bits} bits is too small (at least ${MIN_RSA_BITS})`
      : undefined;
  }
  return `key type ${key.asymmetricKeyType ?? "(unknown)"} is not accepted (use EC or RSA)`;
}

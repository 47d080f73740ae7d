/**
 * The one place that loads `@peculiar/x509`: installs the Reflect metadata stand-in it needs first
 * and points it at Node's WebCrypto, so every module in this folder shares the same set-up.
 */
import "./reflect-metadata.ts";
import { webcrypto } from "node:crypto";
import * as x509 from "@peculiar/x509";

x509.cryptoProvider.set(webcrypto);

export { x509 };

/**
 * The one place that loads `@peculiar/x509`: installs the Reflect metadata polyfill its `tsyringe`
 * dependency requires first and points it at Node's WebCrypto, so every module in this folder shares
 * the same set-up. Import x509 from here, never from the package directly.
 */
import "reflect-metadata";
import { webcrypto } from "node:crypto";
import * as x509 from "@peculiar/x509";

x509.cryptoProvider.set(webcrypto);

export { x509 };

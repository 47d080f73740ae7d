import type { Command } from "../command.ts";
import { apiserver } from "./apiserver.ts";
import { kubelet } from "./kubelet.ts";
import { version } from "./version.ts";

/** Every CLI command, in the order `ambient help` lists them. */
export const commands: readonly Command[] = [version, apiserver, kubelet];

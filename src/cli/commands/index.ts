import type { Command } from "../command.ts";
import { controlPlane } from "./control-plane.ts";
import { version } from "./version.ts";

/** Every CLI command, in the order `ambient help` lists them. */
export const commands: readonly Command[] = [controlPlane, version];

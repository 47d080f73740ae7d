import type { Command } from "../command.ts";
import { apiserver } from "./apiserver.ts";
import { controlPlane } from "./control-plane.ts";
import { kubelet } from "./kubelet.ts";
import { nodeAgent } from "./node-agent.ts";
import { version } from "./version.ts";
import { ztunnel } from "./ztunnel.ts";

/** Every CLI command, in the order `ambient help` lists them. */
export const commands: readonly Command[] = [
  version,
  controlPlane,
  ztunnel,
  nodeAgent,
  apiserver,
  kubelet,
];

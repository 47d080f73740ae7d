import type { Command } from "../command.ts";
import { apiserver } from "./apiserver.ts";
import { apply, del } from "./apply.ts";
import { controlPlane } from "./control-plane.ts";
import { demo } from "./demo.ts";
import { down } from "./down.ts";
import { exec } from "./exec.ts";
import { kubelet } from "./kubelet.ts";
import { label } from "./label.ts";
import { logs } from "./logs.ts";
import { nodeAgent } from "./node-agent.ts";
import { status } from "./status.ts";
import { supervise } from "./supervise.ts";
import { up } from "./up.ts";
import { version } from "./version.ts";
import { configDump, ztunnelMetrics } from "./ztunnel-debug.ts";
import { ztunnel } from "./ztunnel.ts";

/** Every CLI command, in the order `ambient help` lists them. */
export const commands: readonly Command[] = [
  // A local mesh: start, look, change, stop.
  demo,
  up,
  status,
  exec,
  logs,
  apply,
  del,
  label,
  ztunnelMetrics,
  configDump,
  down,
  version,
  // The processes a mesh is made of.
  controlPlane,
  ztunnel,
  nodeAgent,
  apiserver,
  kubelet,
  supervise,
];

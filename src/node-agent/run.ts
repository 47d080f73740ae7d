/**
 * The production composition: a KubeConfigStore for Pods and Namespaces from the kubeconfig,
 * logging per the config, and the agent on top. The CLI's `ambient node-agent` is this plus
 * signal handling.
 */
import { KubeConfig } from "@kubernetes/client-node";
import { KubeConfigStore } from "../lib/config/index.ts";
import { AmbientError } from "../lib/errors.ts";
import { LogOutput } from "../lib/log/index.ts";
import { NodeAgent } from "./agent.ts";
import type { NodeAgentConfig } from "./config.ts";

export interface RunningNodeAgent {
  readonly agent: NodeAgent;
  /** Stops the agent, then the watch. */
  close(): Promise<void>;
}

export async function runNodeAgent(
  config: NodeAgentConfig,
  logOutput: LogOutput = new LogOutput({ spec: config.logLevel, format: config.logFormat }),
): Promise<RunningNodeAgent> {
  const kubeConfig = new KubeConfig();
  try {
    if (config.kubeconfig !== undefined) kubeConfig.loadFromFile(config.kubeconfig);
    else kubeConfig.loadFromDefault();
  } catch (err) {
    throw new AmbientError(
      "NODE_AGENT_KUBECONFIG",
      `cannot load the kubeconfig${config.kubeconfig === undefined ? "" : ` ${config.kubeconfig}`}: ${(err as Error).message}`,
      { cause: err },
    );
  }
  if (kubeConfig.getCurrentCluster() === null) {
    throw new AmbientError(
      "NODE_AGENT_KUBECONFIG",
      "no Kubernetes API server configured: set KUBECONFIG (or --kubeconfig), or run in a pod",
    );
  }
  const store = new KubeConfigStore({
    kubeConfig,
    kinds: ["Pod", "Namespace"],
    log: logOutput.logger("config"),
  });
  let agent: NodeAgent;
  try {
    agent = await NodeAgent.start({ config, store, logOutput });
  } catch (err) {
    await store.close();
    throw err;
  }
  return {
    agent,
    close: async () => {
      await agent.close();
      await store.close();
    },
  };
}

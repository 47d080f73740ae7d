/**
 * The CNI hook the kubelet calls for each pod: after its network namespace and address exist and
 * before any container starts (`add`), and after its containers stopped, before the namespace is
 * removed (`del`). On a mesh node the node agent serves istio-cni's plugin-event endpoint and
 * enrolls the pod there; a failing `add` fails the pod's start, which is retried with backoff —
 * containers never start unenrolled (fail closed).
 */
import { request } from "node:http";

export interface CniPodEvent {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  readonly node: string;
  /** Network namespace name (`amb-<c>-<ns>-<pod>`) and path (`/run/netns/<name>`). */
  readonly netns: string;
  readonly netnsPath: string;
  readonly ip: string;
  /** The pod's default gateway (its node's address on the pod's veth). */
  readonly gateway: string;
  /** The pod's interface (`eth0`). */
  readonly interface: string;
}

export interface CniHook {
  add(event: CniPodEvent): Promise<void>;
  del?(event: CniPodEvent): Promise<void>;
}

/** For nodes without a mesh: nothing to tell anyone. */
export const noopCni: CniHook = Object.freeze({
  add: () => Promise.resolve(),
  del: () => Promise.resolve(),
});

/** CNI_ARGS as kubelet passes them to CNI plugins. */
function cniArgs(ev: CniPodEvent): string {
  return `K8S_POD_NAMESPACE=${ev.namespace};K8S_POD_NAME=${ev.name};K8S_POD_UID=${ev.uid}`;
}

/**
 * istio-cni's plugin event: `POST /cmdadd` on the node agent's unix socket with
 * `{Netns, PodName, PodNamespace, IPs: [{Address: {IP, Mask}, Gateway}]}` (Go's JSON of net.IPNet:
 * the mask as base64 bytes), plus the CNI args older istio-cni read (`CmdAddEvent`, which carries
 * the pod uid). `del` posts the agent's `/cmddel`. Any answer but 2xx, or no answer in time, is a
 * failure.
 */
export function pluginEventHook(socketPath: string, opts: { timeoutMs?: number } = {}): CniHook {
  const post = (path: string, ev: CniPodEvent, payload: Record<string, unknown>): Promise<void> => {
    const body = JSON.stringify(payload);
    return new Promise((resolve, reject) => {
      const req = request(
        {
          socketPath,
          path,
          method: "POST",
          headers: {
            "content-type": "application/json",
            "content-length": Buffer.byteLength(body),
          },
          timeout: opts.timeoutMs ?? 10_000,
        },
        (res) => {
          let text = "";
          res.setEncoding("utf8");
          res.on("data", (c: string) => (text += c));
          res.on("end", () => {
            const code = res.statusCode ?? 0;
            if (code >= 200 && code < 300) resolve();
            else
              reject(
                new Error(
                  `CNI plugin event ${path} for ${ev.namespace}/${ev.name} answered ${code}: ${text.trim()}`,
                ),
              );
          });
        },
      );
      req.on("timeout", () =>
        req.destroy(new Error(`CNI plugin event socket ${socketPath} did not answer in time`)),
      );
      req.on("error", (err) =>
        reject(
          new Error(`cannot reach the node agent at ${socketPath}: ${err.message}; is it running?`),
        ),
      );
      req.end(body);
    });
  };
  return {
    add: (ev) =>
      post("/cmdadd", ev, {
        Netns: ev.netnsPath,
        PodName: ev.name,
        PodNamespace: ev.namespace,
        IPs: [
          {
            Address: { IP: ev.ip, Mask: Buffer.from([255, 255, 255, 255]).toString("base64") },
            Gateway: ev.gateway,
          },
        ],
        CmdAddEvent: { ContainerID: ev.uid, Netns: ev.netnsPath, Args: cniArgs(ev) },
      }),
    del: (ev) =>
      post("/cmddel", ev, {
        PodName: ev.name,
        PodNamespace: ev.namespace,
        CmdDelEvent: { ContainerID: ev.uid, Args: cniArgs(ev) },
      }),
  };
}

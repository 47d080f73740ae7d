/** The kubeconfig file clients of the local API server use (KubeConfig.loadFromFile reads it). */
import { stringify } from "yaml";

export interface KubeconfigOptions {
  /** `http://198.18.0.1:6443` or `https://...`. */
  readonly server: string;
  readonly cluster: string;
  readonly token?: string;
  /** PEM of the CA that signed the server certificate (https only). */
  readonly caPem?: string;
}

export function kubeconfigYaml(o: KubeconfigOptions): string {
  const name = `ambient-${o.cluster}`;
  return stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [
      {
        name,
        cluster: {
          server: o.server,
          // client-node refuses plain HTTP unless told to skip TLS checks (there is no TLS).
          ...(o.server.startsWith("http:") ? { "insecure-skip-tls-verify": true } : {}),
          ...(o.caPem !== undefined
            ? { "certificate-authority-data": Buffer.from(o.caPem).toString("base64") }
            : {}),
        },
      },
    ],
    users: [{ name, user: o.token !== undefined ? { token: o.token } : {} }],
    contexts: [{ name, context: { cluster: name, user: name } }],
    "current-context": name,
  });
}

/**
 * The few API-server reads and writes the CLI needs, on the API server's unix socket (the host
 * cannot reach its TCP address, which lives in the control plane's namespace), with the parts of
 * each object the CLI shows.
 */
import { unixHttp } from "./netns-http.ts";

export interface ObjectMeta {
  readonly name: string;
  readonly namespace?: string;
  readonly uid: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly annotations?: Readonly<Record<string, string>>;
  readonly ownerReferences?: readonly { readonly kind: string; readonly name: string }[];
  readonly deletionTimestamp?: string;
  readonly creationTimestamp?: string;
}

export interface Condition {
  readonly type: string;
  readonly status: string;
  readonly reason?: string;
  readonly message?: string;
  readonly lastHeartbeatTime?: string;
}

export interface ContainerStatus {
  readonly name: string;
  readonly ready: boolean;
  readonly restartCount: number;
  readonly containerID?: string;
  readonly state?: {
    readonly waiting?: { readonly reason?: string; readonly message?: string };
    readonly running?: { readonly startedAt?: string };
    readonly terminated?: { readonly exitCode?: number; readonly reason?: string };
  };
}

export interface Pod {
  readonly metadata: ObjectMeta;
  readonly spec: {
    readonly nodeName?: string;
    readonly containers: readonly { readonly name: string }[];
    readonly serviceAccountName?: string;
  };
  readonly status?: {
    readonly phase?: string;
    readonly podIP?: string;
    readonly hostIP?: string;
    readonly reason?: string;
    readonly message?: string;
    readonly conditions?: readonly Condition[];
    readonly containerStatuses?: readonly ContainerStatus[];
  };
}

export interface Service {
  readonly metadata: ObjectMeta;
  readonly spec: {
    readonly clusterIP?: string;
    readonly type?: string;
    readonly ports?: readonly {
      readonly name?: string;
      readonly port: number;
      readonly targetPort?: number | string;
      readonly protocol?: string;
    }[];
  };
}

export interface Node {
  readonly metadata: ObjectMeta;
  readonly spec?: { readonly podCIDR?: string };
  readonly status?: {
    readonly conditions?: readonly Condition[];
    readonly addresses?: readonly { readonly type: string; readonly address: string }[];
  };
}

export interface Namespace {
  readonly metadata: ObjectMeta;
}

export interface ReplicaSet {
  readonly metadata: ObjectMeta;
}

export class ApiClient {
  readonly socket: string;

  constructor(socket: string) {
    this.socket = socket;
  }

  async get<T>(path: string): Promise<T | undefined> {
    const r = await unixHttp({ socket: this.socket, path });
    if (r.status === 404) return undefined;
    if (r.status !== 200) {
      throw new Error(`the API server answered ${r.status} to GET ${path}: ${r.body.trim()}`);
    }
    return JSON.parse(r.body) as T;
  }

  async list<T>(path: string): Promise<T[]> {
    return (await this.get<{ items: T[] }>(path))?.items ?? [];
  }

  async ready(): Promise<boolean> {
    try {
      return (
        (await unixHttp({ socket: this.socket, path: "/readyz", timeoutMs: 2000 })).status === 200
      );
    } catch {
      return false;
    }
  }

  pods(namespace?: string): Promise<Pod[]> {
    return this.list<Pod>(
      namespace === undefined ? "/api/v1/pods" : `/api/v1/namespaces/${namespace}/pods`,
    );
  }

  services(): Promise<Service[]> {
    return this.list<Service>("/api/v1/services");
  }

  nodes(): Promise<Node[]> {
    return this.list<Node>("/api/v1/nodes");
  }

  namespaces(): Promise<Namespace[]> {
    return this.list<Namespace>("/api/v1/namespaces");
  }

  replicaSets(namespace: string): Promise<ReplicaSet[]> {
    return this.list<ReplicaSet>(`/apis/apps/v1/namespaces/${namespace}/replicasets`);
  }

  node(name: string): Promise<Node | undefined> {
    return this.get<Node>(`/api/v1/nodes/${name}`);
  }
}

export function podReady(p: Pod): boolean {
  return (
    p.status?.phase === "Running" &&
    p.metadata.deletionTimestamp === undefined &&
    (p.status.conditions ?? []).some((c) => c.type === "Ready" && c.status === "True")
  );
}

/** `ambient.istio.io/redirection` as the node agent wrote it (`enabled`, `pending`), or "-". */
export function podMesh(p: Pod): string {
  return p.metadata.annotations?.["ambient.istio.io/redirection"] ?? "-";
}

/** The pods of a Deployment: owned by one of its ReplicaSets (`<deploy>-<hash>`). */
export function podsOfDeployment(
  pods: readonly Pod[],
  replicaSets: readonly ReplicaSet[],
  deployment: string,
): Pod[] {
  const sets = new Set(
    replicaSets
      .filter((rs) =>
        rs.metadata.ownerReferences?.some((o) => o.kind === "Deployment" && o.name === deployment),
      )
      .map((rs) => rs.metadata.name),
  );
  return pods.filter((p) =>
    p.metadata.ownerReferences?.some((o) => o.kind === "ReplicaSet" && sets.has(o.name)),
  );
}

/**
 * The enrollment planner: from what should be (the pod's labels and its namespace's, through
 * `ambientEnrollment`) and what is (the pod's redirection annotation, and what this agent has
 * done: rules, ZDS), the one next action for a pod. Pure; the agent carries the action out.
 *
 * Like istio-cni it compares intent (labels) with status (annotation) and acts on the difference,
 * so the same plan is right after any event and after a restart. Unlike istio-cni it also tracks
 * its own rule and ZDS state, so rules whose settings changed are re-applied and a pod ztunnel has
 * not yet taken is retried.
 */

/** What this agent has told ztunnel about the pod. */
export type ZdsState =
  /** Nothing (or a delete). */
  | "none"
  /** Registered at start-up from an earlier run; the next snapshot decides (add or keep). */
  | "snapshot"
  /** Sent `add`; ztunnel has not taken it (not connected, Ack error, timeout). */
  | "pending"
  /** ztunnel Acked the add. */
  | "acked"
  /** Known without a netns (after a restart): snapshots send `keep`. */
  | "kept";

/** The redirection rules in the pod's netns, as far as this agent knows. */
export type RulesState =
  | "none"
  /** Applied with the settings the pod has now. */
  | "current"
  /** Maybe there, maybe with other settings (earlier run, annotations changed). */
  | "stale";

/** `ambient.istio.io/redirection` as the API shows it (`disabled` is the user's, not ours). */
export type RedirectionAnnotation = "enabled" | "pending" | undefined;

export interface PodFacts {
  /** The labels say the pod belongs in the mesh. */
  readonly desired: boolean;
  /** The pod is deleted, terminal (Succeeded/Failed), or its sandbox was torn down. */
  readonly gone: boolean;
  /** This agent knows the pod's netns path. */
  readonly netns: boolean;
  readonly annotation: RedirectionAnnotation;
  readonly zds: ZdsState;
  readonly rules: RulesState;
}

export type PodAction =
  | { readonly kind: "none" }
  /** Should be enrolled, but no netns is known: wait for the runtime's next ADD for the pod. */
  | { readonly kind: "wait-netns" }
  /** Enrolled by an earlier run and no netns known: tell ztunnel to keep its proxy. */
  | { readonly kind: "keep" }
  /**
   * Bring the pod into the mesh (or finish doing so): apply the rules if not current, send `add`
   * if ztunnel has not taken the pod (and the snapshot is not deciding), then annotate by outcome.
   */
  | { readonly kind: "enroll"; readonly applyRules: boolean; readonly addToZtunnel: boolean }
  /** Take the pod out: ZDS del, rules away (pod alive), annotation away (pod alive). */
  | {
      readonly kind: "unenroll";
      readonly zdsDel: boolean;
      readonly removeRules: boolean;
      readonly removeAnnotation: boolean;
    };

const NONE: PodAction = { kind: "none" };

export function planPod(f: PodFacts): PodAction {
  if (f.desired && !f.gone) {
    if (!f.netns) {
      if (f.zds !== "none") return NONE; // ztunnel has (or keeps) it; nothing to do without netns
      return f.annotation !== undefined ? { kind: "keep" } : { kind: "wait-netns" };
    }
    const applyRules = f.rules !== "current";
    // "snapshot": the pod is already in ztunnel's snapshot; its outcome arrives as an event.
    const addToZtunnel = f.zds !== "acked" && f.zds !== "snapshot";
    const annotate = f.zds === "acked" && f.annotation !== "enabled";
    if (!applyRules && !addToZtunnel && !annotate) return NONE;
    return { kind: "enroll", applyRules, addToZtunnel };
  }
  // An annotation without our own record means an earlier run told ztunnel; once the pod is
  // gone, ztunnel was told (or its next snapshot drops the pod).
  const zdsDel = f.zds !== "none" || (!f.gone && f.annotation !== undefined);
  const removeRules = !f.gone && f.netns && (f.rules !== "none" || f.annotation !== undefined);
  const removeAnnotation = !f.gone && f.annotation !== undefined;
  if (!zdsDel && !removeRules && !removeAnnotation) return NONE;
  return { kind: "unenroll", zdsDel, removeRules, removeAnnotation };
}

/** One-line description of an action, for logs. */
export function describeAction(a: PodAction): string {
  switch (a.kind) {
    case "none":
    case "wait-netns":
    case "keep":
      return a.kind;
    case "enroll": {
      // The annotation follows the outcome in every case; only say so when it is all there is.
      const steps = [a.applyRules ? "rules" : "", a.addToZtunnel ? "zds-add" : ""];
      return `enroll(${steps.filter((s) => s !== "").join("+") || "annotate"})`;
    }
    case "unenroll": {
      const steps = [
        a.zdsDel ? "zds-del" : "",
        a.removeRules ? "rules" : "",
        a.removeAnnotation ? "annotation" : "",
      ];
      return `unenroll(${steps.filter((s) => s !== "").join("+")})`;
    }
  }
}

/**
 * xDS -> ProxyState (istio/ztunnel `ProxyStateUpdater`): each Address and Authorization resource
 * of a response is applied on its own; the ones the state refuses are NACKed by name with the
 * state's reason (the rest stand), removals follow, and the batch ends with `commit()`, which
 * feeds certificate prefetch and policy re-checks.
 */
import { AddressSchema } from "../../lib/gen/istio/workload/workload_pb.ts";
import { AuthorizationSchema } from "../../lib/gen/istio/security/authorization_pb.ts";
import type { Logger } from "../../lib/log/index.ts";
import type { Rejection, TypeHandler } from "../../lib/xds/index.ts";
import type { ProxyState } from "../state/index.ts";

export function addressHandler(state: ProxyState, log?: Logger): TypeHandler<typeof AddressSchema> {
  return {
    schema: AddressSchema,
    apply(batch) {
      const rejected: Rejection[] = [];
      try {
        for (const u of batch.updates) {
          const r = state.applyAddress(u.resource);
          if (!r.ok) rejected.push({ name: u.name, reason: r.reason });
        }
        for (const name of batch.removed) {
          if (state.removeAddress(name) === undefined) {
            log?.debug("removal of an unknown address", { name });
          }
        }
      } finally {
        state.commit();
      }
      return rejected;
    },
  };
}

/** Authorization stays wildcard in on-demand mode (ztunnel needs every policy up front). */
export function authorizationHandler(state: ProxyState): TypeHandler<typeof AuthorizationSchema> {
  return {
    schema: AuthorizationSchema,
    onDemand: false,
    apply(batch) {
      const rejected: Rejection[] = [];
      try {
        for (const u of batch.updates) {
          const r = state.applyAuthorization(u.name, u.resource);
          if (!r.ok) rejected.push({ name: u.name, reason: r.reason });
        }
        for (const name of batch.removed) state.removeAuthorization(name);
      } finally {
        state.commit();
      }
      return rejected;
    },
  };
}

/** kube-proxy for the local cluster: Service VIPs to ready endpoints with iptables (nat) rules. */
export { Proxier, type ProxierOptions } from "./proxier.ts";
export { servicePorts, resolveTargetPort, type Endpoint, type ServicePort } from "./endpoints.ts";
export { renderRules, svcChain, sepChain, isOurChain, JUMPS, MASQ_MARK } from "./rules.ts";

/** ZDS constants both ends share (INTEROP.md §5). */

/** Where the node agent listens and ztunnel connects (ztunnel's `INPOD_UDS`). */
export const ZDS_DEFAULT_SOCKET_PATH = "/var/run/ztunnel/ztunnel.sock";

/**
 * Both Istio ends read a ZDS packet into a 1024-byte buffer; anything longer arrives truncated
 * and is rejected. Every message we send must fit, and we read with the same limit.
 */
export const ZDS_MAX_MESSAGE_BYTES = 1024;

/** The protocol version in `ZdsHello` (`istio.workload.zds.Version.V1`). */
export const ZDS_VERSION_V1 = 1;

/** How long the agent waits for ztunnel's hello, and for each Ack (istio-cni's deadline). */
export const ZDS_DEFAULT_TIMEOUT_MS = 5_000;

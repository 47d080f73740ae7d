/**
 * Networking helpers shared by the components: Linux socket calls Node lacks (native addon),
 * sockets inside network namespaces, and the SEQPACKET channel used by ZDS.
 */
export {
  closeFd,
  getMark,
  getOriginalDst,
  nativeAvailable,
  peerCredentials,
  setMark,
  socketFd,
  type IpFamily,
  type PeerCredentials,
  type SocketAddress,
} from "./native.ts";
export {
  CURRENT_NETNS_PATH,
  createNetnsSocket,
  currentNetnsId,
  netnsId,
  openNetns,
  sameNetns,
  type NetnsId,
  type NetnsSocket,
  type NetnsSocketOptions,
  type TransparentMode,
} from "./netns.ts";
export { FdWatcher, type Readiness, type WaitOptions } from "./native-poll.ts";
export {
  SEQPACKET_MAX_FDS,
  SEQPACKET_MAX_RECEIVE_BYTES,
  SeqpacketServer,
  SeqpacketSocket,
  type ReceiveOptions,
  type SeqpacketListenOptions,
  type SeqpacketMessage,
} from "./native-seqpacket.ts";
export {
  canonicalIp,
  cidrContains,
  cidrFromBytes,
  formatCidr,
  formatIp,
  formatSocketAddr,
  ipFamilyOf,
  isLoopback,
  maskBytes,
  parseCidr,
  parseIp,
  parsePort,
  parseSocketAddr,
  type Cidr,
  type IpBytes,
} from "./ip.ts";
export {
  copyBidirectional,
  type CopyHandle,
  type CopyOptions,
  type CopyResult,
  type CopySide,
} from "./copy.ts";

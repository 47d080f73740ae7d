/*
 * ambient_native: the Linux calls Node does not offer (DESIGN.md section 6). Loaded only through
 * src/lib/net/native.ts; the typed API lives in src/lib/net/index.ts.
 */
#include "common.h"

#define EXPORT(name, fn) {name, NULL, fn, NULL, NULL, NULL, napi_enumerable, NULL}

static napi_value init(napi_env env, napi_value exports) {
  if (!napi_check(env, ambient_poller_init_env(env))) return NULL;
  const napi_property_descriptor props[] = {
      EXPORT("getOriginalDst", ambient_get_original_dst),
      EXPORT("setMark", ambient_set_mark),
      EXPORT("getMark", ambient_get_mark),
      EXPORT("peerCredentials", ambient_peer_credentials),
      EXPORT("createSocket", ambient_create_socket),
      EXPORT("seqpacketListen", ambient_seqpacket_listen),
      EXPORT("seqpacketAccept", ambient_seqpacket_accept),
      EXPORT("seqpacketConnect", ambient_seqpacket_connect),
      EXPORT("seqpacketSend", ambient_seqpacket_send),
      EXPORT("seqpacketReceive", ambient_seqpacket_receive),
      EXPORT("pollerCreate", ambient_poller_create),
      EXPORT("pollerUpdate", ambient_poller_update),
      EXPORT("pollerClose", ambient_poller_close),
  };
  if (!napi_check(env, napi_define_properties(env, exports, sizeof props / sizeof props[0], props))) {
    return NULL;
  }
  return exports;
}

/* The registration macro defines exported functions without prototypes; that is by design. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
#pragma GCC diagnostic pop

/* Socket options Node does not expose: the original destination, the mark, peer credentials. */
#include "common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>

/* From <linux/netfilter_ipv4.h> and <linux/netfilter_ipv6/ip6_tables.h>, whose other contents
 * clash with glibc's headers. Both are 80 and part of the kernel ABI. */
#ifndef SO_ORIGINAL_DST
#define SO_ORIGINAL_DST 80
#endif
#ifndef IP6T_SO_ORIGINAL_DST
#define IP6T_SO_ORIGINAL_DST 80
#endif

/* { address, port, family } for an IPv4 or IPv6 socket address. */
static napi_value address_object(napi_env env, const struct sockaddr *sa) {
  char text[INET6_ADDRSTRLEN];
  int port, family;
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
    inet_ntop(AF_INET, &in->sin_addr, text, sizeof text);
    port = ntohs(in->sin_port);
    family = 4;
  } else {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
    inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
    port = ntohs(in6->sin6_port);
    family = 6;
  }
  napi_value obj, address;
  NAPI_OK(napi_create_object(env, &obj));
  NAPI_OK(napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &address));
  if (!set_prop(env, obj, "address", address) || !set_prop(env, obj, "port", make_int(env, port)) ||
      !set_prop(env, obj, "family", make_int(env, family))) {
    return NULL;
  }
  return obj;
}

/*
 * getOriginalDst(fd) -> { address, port, family }
 * The destination a connection had before an iptables/nftables REDIRECT or DNAT rewrote it, read
 * from conntrack. The socket's own family decides the query: IPv4 sockets, and IPv6 sockets
 * carrying an IPv4 connection (a v4-mapped local address on a dual-stack listener), use
 * SO_ORIGINAL_DST; other IPv6 sockets use IP6T_SO_ORIGINAL_DST. ENOENT means conntrack has no
 * entry for the connection (for example nf_conntrack is not loaded or the flow was untracked).
 */
napi_value ambient_get_original_dst(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int fd;
  if (!get_args(env, info, 1, argv) || !arg_fd(env, argv[0], "fd", &fd)) return NULL;

  struct sockaddr_storage local;
  socklen_t len = sizeof local;
  if (getsockname(fd, (struct sockaddr *)&local, &len) != 0) {
    throw_errno(env, errno, "getsockname");
    return NULL;
  }

  bool v4 = local.ss_family == AF_INET;
  if (local.ss_family == AF_INET6) {
    v4 = IN6_IS_ADDR_V4MAPPED(&((struct sockaddr_in6 *)&local)->sin6_addr);
  } else if (local.ss_family != AF_INET) {
    throw_errno(env, EAFNOSUPPORT, "getsockopt(SO_ORIGINAL_DST)");
    return NULL;
  }

  if (v4) {
    struct sockaddr_in dst;
    len = sizeof dst;
    if (getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &dst, &len) != 0) {
      throw_errno(env, errno, "getsockopt(SO_ORIGINAL_DST)");
      return NULL;
    }
    return address_object(env, (struct sockaddr *)&dst);
  }
  struct sockaddr_in6 dst6;
  len = sizeof dst6;
  if (getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &dst6, &len) != 0) {
    throw_errno(env, errno, "getsockopt(IP6T_SO_ORIGINAL_DST)");
    return NULL;
  }
  return address_object(env, (struct sockaddr *)&dst6);
}

/* setMark(fd, mark): SO_MARK; needs CAP_NET_ADMIN. */
napi_value ambient_set_mark(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int fd;
  int64_t mark;
  if (!get_args(env, info, 2, argv) || !arg_fd(env, argv[0], "fd", &fd) ||
      !arg_int64(env, argv[1], "mark", 0, UINT32_MAX, &mark)) {
    return NULL;
  }
  uint32_t value = (uint32_t)mark;
  if (setsockopt(fd, SOL_SOCKET, SO_MARK, &value, sizeof value) != 0) {
    throw_errno(env, errno, "setsockopt(SO_MARK)");
    return NULL;
  }
  return NULL;
}

/* getMark(fd) -> number */
napi_value ambient_get_mark(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int fd;
  if (!get_args(env, info, 1, argv) || !arg_fd(env, argv[0], "fd", &fd)) return NULL;
  uint32_t value = 0;
  socklen_t len = sizeof value;
  if (getsockopt(fd, SOL_SOCKET, SO_MARK, &value, &len) != 0) {
    throw_errno(env, errno, "getsockopt(SO_MARK)");
    return NULL;
  }
  return make_int(env, value);
}

/* peerCredentials(fd) -> { pid, uid, gid } of the process that connected (or listened). */
napi_value ambient_peer_credentials(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int fd;
  if (!get_args(env, info, 1, argv) || !arg_fd(env, argv[0], "fd", &fd)) return NULL;
  struct ucred cred;
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    throw_errno(env, errno, "getsockopt(SO_PEERCRED)");
    return NULL;
  }
  napi_value obj;
  NAPI_OK(napi_create_object(env, &obj));
  if (!set_prop(env, obj, "pid", make_int(env, cred.pid)) ||
      !set_prop(env, obj, "uid", make_int(env, cred.uid)) ||
      !set_prop(env, obj, "gid", make_int(env, cred.gid))) {
    return NULL;
  }
  return obj;
}

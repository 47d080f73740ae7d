/*
 * createSocket(options) -> { fd, transparent }
 *
 * Creates a TCP or UDP socket, optionally inside another network namespace, sets its options,
 * optionally binds and listens, all in one synchronous call. setns(2) changes the namespace of the
 * calling thread only, so the JS thread enters the target namespace, creates the socket (a socket
 * belongs to the namespace it was created in, for its whole life) and returns to its original
 * namespace before this function returns — on every path. If it cannot return, the process aborts:
 * carrying on in a pod's namespace would put every later socket of ztunnel in the wrong place.
 *
 * options (all checked here; the TypeScript wrapper checks them first):
 *   netnsFd?:    fd of the target namespace (/run/netns/NAME, /proc/PID/ns/net); absent = current
 *   protocol:    "tcp" | "udp"
 *   family:      4 | 6
 *   mark?:       SO_MARK value (u32)
 *   reuseAddr?, reusePort?, freebind?, v6Only?: booleans (v6Only only for family 6)
 *   transparent?: "off" | "try" | "require"   IP_TRANSPARENT / IPV6_TRANSPARENT
 *   address?, port?: bind to this address and port (port 0 = any); both or neither
 *   backlog?:    listen(2) with this backlog (TCP only, needs address)
 *
 * The socket is non-blocking and close-on-exec. `transparent` in the result says whether
 * IP_TRANSPARENT is set (it may be false with "try" when the capability is missing).
 */
#include "common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef enum { TRANSPARENT_OFF, TRANSPARENT_TRY, TRANSPARENT_REQUIRE } transparent_mode;

typedef struct {
  int netns_fd; /* -1: stay in the current namespace */
  bool udp;
  bool v6;
  bool has_mark;
  uint32_t mark;
  bool reuse_addr, reuse_port, freebind;
  int v6_only; /* -1: leave the kernel default */
  transparent_mode transparent;
  bool bind;
  struct sockaddr_storage addr;
  socklen_t addr_len;
  int backlog; /* -1: do not listen */
} socket_spec;

/* Where a step failed, for the error thrown after the namespace is restored. */
typedef struct {
  int err;
  const char *syscall;
} failure;

static bool opt_bool(napi_env env, napi_value obj, const char *name, bool *out) {
  napi_value v;
  bool present;
  if (!get_prop(env, obj, name, &v, &present)) return false;
  if (!present) {
    *out = false;
    return true;
  }
  char what[64];
  snprintf(what, sizeof what, "options.%s", name);
  return arg_bool(env, v, what, out);
}

static bool parse_spec(napi_env env, napi_value obj, socket_spec *spec) {
  memset(spec, 0, sizeof *spec);
  napi_value v;
  bool present;
  char text[INET6_ADDRSTRLEN + 1];

  if (!get_prop(env, obj, "netnsFd", &v, &present)) return false;
  spec->netns_fd = -1;
  if (present && !arg_fd(env, v, "options.netnsFd", &spec->netns_fd)) return false;

  if (!get_prop(env, obj, "protocol", &v, &present)) return false;
  if (!present || !arg_string(env, v, "options.protocol", text, sizeof text, NULL)) {
    if (!present) throw_type(env, "options.protocol must be \"tcp\" or \"udp\"");
    return false;
  }
  if (strcmp(text, "tcp") == 0) {
    spec->udp = false;
  } else if (strcmp(text, "udp") == 0) {
    spec->udp = true;
  } else {
    throw_range(env, "options.protocol must be \"tcp\" or \"udp\"");
    return false;
  }

  int64_t n;
  if (!get_prop(env, obj, "family", &v, &present)) return false;
  if (!present) {
    throw_type(env, "options.family must be 4 or 6");
    return false;
  }
  if (!arg_int64(env, v, "options.family", 4, 6, &n)) return false;
  if (n == 5) {
    throw_range(env, "options.family must be 4 or 6");
    return false;
  }
  spec->v6 = n == 6;

  if (!get_prop(env, obj, "mark", &v, &present)) return false;
  if (present) {
    if (!arg_int64(env, v, "options.mark", 0, UINT32_MAX, &n)) return false;
    spec->has_mark = true;
    spec->mark = (uint32_t)n;
  }

  if (!opt_bool(env, obj, "reuseAddr", &spec->reuse_addr) ||
      !opt_bool(env, obj, "reusePort", &spec->reuse_port) ||
      !opt_bool(env, obj, "freebind", &spec->freebind)) {
    return false;
  }

  if (!get_prop(env, obj, "v6Only", &v, &present)) return false;
  spec->v6_only = -1;
  if (present) {
    bool b;
    if (!arg_bool(env, v, "options.v6Only", &b)) return false;
    if (!spec->v6) {
      throw_range(env, "options.v6Only applies to family 6 only");
      return false;
    }
    spec->v6_only = b ? 1 : 0;
  }

  if (!get_prop(env, obj, "transparent", &v, &present)) return false;
  spec->transparent = TRANSPARENT_OFF;
  if (present) {
    if (!arg_string(env, v, "options.transparent", text, sizeof text, NULL)) return false;
    if (strcmp(text, "off") == 0) {
      spec->transparent = TRANSPARENT_OFF;
    } else if (strcmp(text, "try") == 0) {
      spec->transparent = TRANSPARENT_TRY;
    } else if (strcmp(text, "require") == 0) {
      spec->transparent = TRANSPARENT_REQUIRE;
    } else {
      throw_range(env, "options.transparent must be \"off\", \"try\" or \"require\"");
      return false;
    }
  }

  napi_value port_value;
  bool port_present;
  if (!get_prop(env, obj, "address", &v, &present) ||
      !get_prop(env, obj, "port", &port_value, &port_present)) {
    return false;
  }
  if (present != port_present) {
    throw_type(env, "options.address and options.port go together");
    return false;
  }
  if (present) {
    if (!arg_string(env, v, "options.address", text, sizeof text, NULL) ||
        !arg_int64(env, port_value, "options.port", 0, 65535, &n)) {
      return false;
    }
    spec->bind = true;
    if (spec->v6) {
      struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&spec->addr;
      in6->sin6_family = AF_INET6;
      in6->sin6_port = htons((uint16_t)n);
      if (inet_pton(AF_INET6, text, &in6->sin6_addr) != 1) {
        throw_range(env, "options.address is not an IPv6 address: %s", text);
        return false;
      }
      spec->addr_len = sizeof *in6;
    } else {
      struct sockaddr_in *in = (struct sockaddr_in *)&spec->addr;
      in->sin_family = AF_INET;
      in->sin_port = htons((uint16_t)n);
      if (inet_pton(AF_INET, text, &in->sin_addr) != 1) {
        throw_range(env, "options.address is not an IPv4 address: %s", text);
        return false;
      }
      spec->addr_len = sizeof *in;
    }
  }

  if (!get_prop(env, obj, "backlog", &v, &present)) return false;
  spec->backlog = -1;
  if (present) {
    if (!arg_int64(env, v, "options.backlog", 0, INT_MAX, &n)) return false;
    if (spec->udp || !spec->bind) {
      throw_range(env, "options.backlog needs protocol \"tcp\" and an address to bind");
      return false;
    }
    spec->backlog = (int)n;
  }
  return true;
}

static bool set_int(int fd, int level, int name, int value) {
  return setsockopt(fd, level, name, &value, sizeof value) == 0;
}

/*
 * Creates and sets up the socket in the current namespace. Returns the fd, or -1 with *fail set;
 * never leaves a half-made socket open.
 */
static int make_socket(const socket_spec *spec, bool *transparent, failure *fail) {
  int fd = socket(spec->v6 ? AF_INET6 : AF_INET,
                  (spec->udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    fail->err = errno;
    fail->syscall = "socket";
    return -1;
  }
  const char *step = NULL;
  if (spec->has_mark &&
      setsockopt(fd, SOL_SOCKET, SO_MARK, &spec->mark, sizeof spec->mark) != 0) {
    step = "setsockopt(SO_MARK)";
  } else if (spec->reuse_addr && !set_int(fd, SOL_SOCKET, SO_REUSEADDR, 1)) {
    step = "setsockopt(SO_REUSEADDR)";
  } else if (spec->reuse_port && !set_int(fd, SOL_SOCKET, SO_REUSEPORT, 1)) {
    step = "setsockopt(SO_REUSEPORT)";
  } else if (spec->v6_only >= 0 && !set_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, spec->v6_only)) {
    step = "setsockopt(IPV6_V6ONLY)";
  } else if (spec->freebind && !set_int(fd, SOL_IP, IP_FREEBIND, 1)) {
    /* IP_FREEBIND on SOL_IP applies to IPv6 sockets as well. */
    step = "setsockopt(IP_FREEBIND)";
  }
  if (step == NULL && spec->transparent != TRANSPARENT_OFF) {
    bool ok = spec->v6 ? set_int(fd, SOL_IPV6, IPV6_TRANSPARENT, 1)
                       : set_int(fd, SOL_IP, IP_TRANSPARENT, 1);
    *transparent = ok;
    if (!ok && spec->transparent == TRANSPARENT_REQUIRE) {
      step = spec->v6 ? "setsockopt(IPV6_TRANSPARENT)" : "setsockopt(IP_TRANSPARENT)";
    }
  }
  if (step == NULL && spec->bind &&
      bind(fd, (const struct sockaddr *)&spec->addr, spec->addr_len) != 0) {
    step = "bind";
  }
  if (step == NULL && spec->backlog >= 0 && listen(fd, spec->backlog) != 0) {
    step = "listen";
  }
  if (step != NULL) {
    fail->err = errno;
    fail->syscall = step;
    close_quietly(fd);
    return -1;
  }
  return fd;
}

napi_value ambient_create_socket(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  napi_valuetype t;
  NAPI_OK(napi_typeof(env, argv[0], &t));
  if (t != napi_object) {
    throw_type(env, "options must be an object");
    return NULL;
  }
  socket_spec spec;
  if (!parse_spec(env, argv[0], &spec)) return NULL;

  failure fail = {0, NULL};
  bool transparent = false;
  int fd = -1;

  if (spec.netns_fd < 0) {
    fd = make_socket(&spec, &transparent, &fail);
  } else {
    /* Hold our own namespace first, so there is always a way back. */
    int home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (home < 0) {
      throw_errno(env, errno, "open(/proc/thread-self/ns/net)");
      return NULL;
    }
    if (setns(spec.netns_fd, CLONE_NEWNET) != 0) {
      fail.err = errno;
      fail.syscall = "setns";
    } else {
      fd = make_socket(&spec, &transparent, &fail);
      if (setns(home, CLONE_NEWNET) != 0) {
        char msg[160];
        snprintf(msg, sizeof msg,
                 "setns back to the original network namespace failed (errno %d); "
                 "aborting rather than running in the wrong namespace",
                 errno);
        napi_fatal_error("ambient_native.createSocket", NAPI_AUTO_LENGTH, msg,
                         NAPI_AUTO_LENGTH);
      }
    }
    close_quietly(home);
  }

  if (fd < 0) {
    throw_errno(env, fail.err, fail.syscall);
    return NULL;
  }
  napi_value obj;
  if (napi_create_object(env, &obj) != napi_ok || !set_prop(env, obj, "fd", make_int(env, fd)) ||
      !set_prop(env, obj, "transparent", make_bool(env, transparent))) {
    close_quietly(fd);
    napi_check(env, napi_generic_failure);
    return NULL;
  }
  return obj;
}

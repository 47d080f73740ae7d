/*
 * Unix SOCK_SEQPACKET sockets: the ZDS channel between the node agent and ztunnel. Messages keep
 * their boundaries and may carry file descriptors (SCM_RIGHTS). Every fd made here is non-blocking
 * and close-on-exec; "would block" comes back as a value, and readiness is awaited with the poller
 * (poller.c), never by blocking the JS thread.
 */
#include "common.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* The kernel's limit on fds in one SCM_RIGHTS message (SCM_MAX_FD). */
#define MAX_FDS 253
/* Upper bound for one receive buffer; ZDS messages are a few hundred bytes. */
#define MAX_RECEIVE_BYTES (16 * 1024 * 1024)

static bool arg_path(napi_env env, napi_value v, struct sockaddr_un *addr, socklen_t *len) {
  memset(addr, 0, sizeof *addr);
  addr->sun_family = AF_UNIX;
  size_t n;
  /* sun_path holds 108 bytes; we keep the terminating NUL, as path sockets need it. */
  if (!arg_string(env, v, "path", addr->sun_path, sizeof addr->sun_path, &n)) return false;
  if (n == 0) {
    throw_range(env, "path must not be empty");
    return false;
  }
  *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
  return true;
}

/* seqpacketListen(path, backlog) -> fd. The caller removes a stale socket file first. */
napi_value ambient_seqpacket_listen(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  struct sockaddr_un addr;
  socklen_t len;
  int64_t backlog;
  if (!get_args(env, info, 2, argv) || !arg_path(env, argv[0], &addr, &len) ||
      !arg_int64(env, argv[1], "backlog", 0, INT_MAX, &backlog)) {
    return NULL;
  }
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    throw_errno(env, errno, "socket");
    return NULL;
  }
  const char *step = NULL;
  if (bind(fd, (struct sockaddr *)&addr, len) != 0) {
    step = "bind";
  } else if (listen(fd, (int)backlog) != 0) {
    step = "listen";
  }
  if (step != NULL) {
    int err = errno;
    close_quietly(fd);
    throw_errno(env, err, step);
    return NULL;
  }
  return make_int(env, fd);
}

/* seqpacketAccept(fd) -> fd | null (nothing pending). */
napi_value ambient_seqpacket_accept(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int fd;
  if (!get_args(env, info, 1, argv) || !arg_fd(env, argv[0], "fd", &fd)) return NULL;
  for (;;) {
    int conn = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (conn >= 0) return make_int(env, conn);
    if (errno == EINTR) continue;
    /* ECONNABORTED: the peer went away before we took it; nothing to hand out. */
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ECONNABORTED) {
      napi_value null;
      NAPI_OK(napi_get_null(env, &null));
      return null;
    }
    throw_errno(env, errno, "accept4");
    return NULL;
  }
}

/*
 * seqpacketConnect(path) -> fd. Unix sockets connect at once or fail: ENOENT (no socket file),
 * ECONNREFUSED (no listener), EAGAIN (the listener's backlog is full; retry later).
 */
napi_value ambient_seqpacket_connect(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  struct sockaddr_un addr;
  socklen_t len;
  if (!get_args(env, info, 1, argv) || !arg_path(env, argv[0], &addr, &len)) return NULL;
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    throw_errno(env, errno, "socket");
    return NULL;
  }
  int rc;
  do {
    rc = connect(fd, (struct sockaddr *)&addr, len);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    int err = errno;
    close_quietly(fd);
    throw_errno(env, err, "connect");
    return NULL;
  }
  return make_int(env, fd);
}

/*
 * seqpacketSend(fd, data: Uint8Array, fds: number[]) -> boolean
 * Sends one message, with the fds attached (SCM_RIGHTS) when the list is not empty. Returns false
 * when the peer's queue is full (EAGAIN): wait for writability and send again. The fds stay open
 * here; the receiver gets duplicates.
 */
napi_value ambient_seqpacket_send(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int fd;
  if (!get_args(env, info, 3, argv) || !arg_fd(env, argv[0], "fd", &fd)) return NULL;

  bool is_typed;
  NAPI_OK(napi_is_typedarray(env, argv[1], &is_typed));
  if (!is_typed) {
    throw_type(env, "data must be a Uint8Array");
    return NULL;
  }
  napi_typedarray_type type;
  size_t length;
  void *data;
  NAPI_OK(napi_get_typedarray_info(env, argv[1], &type, &length, &data, NULL, NULL));
  if (type != napi_uint8_array) {
    throw_type(env, "data must be a Uint8Array");
    return NULL;
  }

  bool is_array;
  NAPI_OK(napi_is_array(env, argv[2], &is_array));
  if (!is_array) {
    throw_type(env, "fds must be an array of file descriptors");
    return NULL;
  }
  uint32_t nfds;
  NAPI_OK(napi_get_array_length(env, argv[2], &nfds));
  if (nfds > MAX_FDS) {
    throw_range(env, "at most %d fds fit in one message, got %u", MAX_FDS, nfds);
    return NULL;
  }

  union {
    char buf[CMSG_SPACE(MAX_FDS * sizeof(int))];
    struct cmsghdr align;
  } control;
  memset(&control, 0, sizeof control);

  struct iovec iov = {.iov_base = data, .iov_len = length};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
  if (nfds > 0) {
    msg.msg_control = control.buf;
    msg.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
    struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(nfds * sizeof(int));
    int *slots = (int *)CMSG_DATA(cmsg);
    for (uint32_t i = 0; i < nfds; i++) {
      napi_value item;
      NAPI_OK(napi_get_element(env, argv[2], i, &item));
      int passed;
      if (!arg_fd(env, item, "fds[i]", &passed)) return NULL;
      memcpy(&slots[i], &passed, sizeof passed);
    }
  }

  ssize_t n;
  do {
    n = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return make_bool(env, false);
    throw_errno(env, errno, "sendmsg");
    return NULL;
  }
  return make_bool(env, true);
}

static void close_all(const int *fds, size_t n) {
  for (size_t i = 0; i < n; i++) close_quietly(fds[i]);
}

/*
 * seqpacketReceive(fd, maxBytes, maxFds)
 *   -> null                                   nothing queued (EAGAIN)
 *    | { eof: true }                          the peer closed (recvmsg returned 0, nothing else)
 *    | { eof: false, data: Buffer, size, fds: number[], truncated, fdsTruncated }
 * `size` is the message's real length (MSG_TRUNC in flags makes the kernel report it); data holds
 * at most maxBytes of it and `truncated` is set when bytes were cut. fds arrive close-on-exec
 * (MSG_CMSG_CLOEXEC) and belong to the caller; when more arrived than maxFds the kernel closed the
 * rest and `fdsTruncated` is set (MSG_CTRUNC). A zero-length message without fds cannot be told
 * apart from end-of-stream; the wrapper refuses to send one.
 */
napi_value ambient_seqpacket_receive(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int fd;
  int64_t max_bytes, max_fds;
  if (!get_args(env, info, 3, argv) || !arg_fd(env, argv[0], "fd", &fd) ||
      !arg_int64(env, argv[1], "maxBytes", 0, MAX_RECEIVE_BYTES, &max_bytes) ||
      !arg_int64(env, argv[2], "maxFds", 0, MAX_FDS, &max_fds)) {
    return NULL;
  }

  /* One spare byte so a zero-byte buffer is still a valid iovec base. */
  char *buf = malloc((size_t)max_bytes + 1);
  if (buf == NULL) {
    throw_errno(env, ENOMEM, "malloc");
    return NULL;
  }
  union {
    char buf[CMSG_SPACE(MAX_FDS * sizeof(int))];
    struct cmsghdr align;
  } control;

  struct iovec iov = {.iov_base = buf, .iov_len = (size_t)max_bytes};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
  if (max_fds > 0) {
    msg.msg_control = control.buf;
    msg.msg_controllen = CMSG_SPACE((size_t)max_fds * sizeof(int));
  }

  ssize_t n;
  do {
    n = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC | MSG_TRUNC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    int err = errno;
    free(buf);
    if (err == EAGAIN || err == EWOULDBLOCK) {
      napi_value null;
      NAPI_OK(napi_get_null(env, &null));
      return null;
    }
    throw_errno(env, err, "recvmsg");
    return NULL;
  }

  /*
   * Collect the fds first: from here on they are ours to close if anything fails. CMSG_SPACE
   * rounds up, so the kernel may fit one more fd than asked; close any beyond max_fds and report
   * the message as fd-truncated, as if the kernel had dropped them.
   */
  int fds[MAX_FDS];
  size_t nfds = 0;
  bool extra_fds = false;
  if (msg.msg_controllen > 0) {
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      const unsigned char *p = CMSG_DATA(c);
      for (size_t i = 0; i < count; i++) {
        int got;
        memcpy(&got, p + i * sizeof(int), sizeof got);
        if (nfds < (size_t)max_fds) {
          fds[nfds++] = got;
        } else {
          close_quietly(got);
          extra_fds = true;
        }
      }
    }
  }
  bool truncated = (msg.msg_flags & MSG_TRUNC) != 0 || n > max_bytes;
  bool fds_truncated = (msg.msg_flags & MSG_CTRUNC) != 0 || extra_fds;
  size_t kept = (size_t)n < (size_t)max_bytes ? (size_t)n : (size_t)max_bytes;

  napi_value obj, data, list;
  bool ok = napi_create_object(env, &obj) == napi_ok;
  if (ok && n == 0 && nfds == 0 && !fds_truncated) {
    free(buf);
    return set_prop(env, obj, "eof", make_bool(env, true)) ? obj : NULL;
  }
  void *copy_out;
  ok = ok && napi_create_buffer_copy(env, kept, buf, &copy_out, &data) == napi_ok;
  free(buf);
  ok = ok && napi_create_array_with_length(env, nfds, &list) == napi_ok;
  for (size_t i = 0; ok && i < nfds; i++) {
    napi_value v = make_int(env, fds[i]);
    ok = v != NULL && napi_set_element(env, list, (uint32_t)i, v) == napi_ok;
  }
  ok = ok && set_prop(env, obj, "eof", make_bool(env, false)) && set_prop(env, obj, "data", data) &&
       set_prop(env, obj, "size", make_int(env, n)) && set_prop(env, obj, "fds", list) &&
       set_prop(env, obj, "truncated", make_bool(env, truncated)) &&
       set_prop(env, obj, "fdsTruncated", make_bool(env, fds_truncated));
  if (!ok) {
    close_all(fds, nfds);
    napi_check(env, napi_generic_failure);
    return NULL;
  }
  return obj;
}

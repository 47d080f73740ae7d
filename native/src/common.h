/*
 * Shared helpers for the ambient native addon: argument checks and errors.
 *
 * Conventions for every exported function:
 *  - arguments are checked here too (the TypeScript wrapper checks them first, with friendlier
 *    messages); a bad argument throws a TypeError/RangeError with code ERR_INVALID_ARG and never
 *    reaches a syscall;
 *  - a failed syscall throws an Error with `code` (errno name, e.g. "ECONNREFUSED"), `errno`
 *    (positive number) and `syscall`;
 *  - "would block" is an expected outcome and is returned as a value, never thrown.
 */
#ifndef AMBIENT_NATIVE_COMMON_H
#define AMBIENT_NATIVE_COMMON_H

#include <node_api.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Exported functions, one per file area. */
napi_value ambient_get_original_dst(napi_env env, napi_callback_info info);
napi_value ambient_set_mark(napi_env env, napi_callback_info info);
napi_value ambient_get_mark(napi_env env, napi_callback_info info);
napi_value ambient_peer_credentials(napi_env env, napi_callback_info info);
napi_value ambient_create_socket(napi_env env, napi_callback_info info);
napi_value ambient_seqpacket_listen(napi_env env, napi_callback_info info);
napi_value ambient_seqpacket_accept(napi_env env, napi_callback_info info);
napi_value ambient_seqpacket_connect(napi_env env, napi_callback_info info);
napi_value ambient_seqpacket_send(napi_env env, napi_callback_info info);
napi_value ambient_seqpacket_receive(napi_env env, napi_callback_info info);
napi_value ambient_poller_create(napi_env env, napi_callback_info info);
napi_value ambient_poller_update(napi_env env, napi_callback_info info);
napi_value ambient_poller_close(napi_env env, napi_callback_info info);
napi_status ambient_poller_init_env(napi_env env);

/* Fetches exactly `n` arguments into argv; throws (and returns false) when fewer were passed. */
bool get_args(napi_env env, napi_callback_info info, size_t n, napi_value *argv);

/* An integral JS number in [min, max]; throws TypeError/RangeError naming `what` otherwise. */
bool arg_int64(napi_env env, napi_value v, const char *what, int64_t min, int64_t max,
               int64_t *out);
/* A file descriptor: an integer in [0, INT_MAX]. */
bool arg_fd(napi_env env, napi_value v, const char *what, int *out);
bool arg_bool(napi_env env, napi_value v, const char *what, bool *out);
/* A string that fits in `cap` bytes including the terminating NUL and has no NUL inside. */
bool arg_string(napi_env env, napi_value v, const char *what, char *buf, size_t cap,
                size_t *len);
/* Reads the named property of `obj`; `*present` is false when it is undefined. */
bool get_prop(napi_env env, napi_value obj, const char *name, napi_value *out, bool *present);

/* Throws ERR_INVALID_ARG as a TypeError (wrong type) or RangeError (bad value). */
void throw_type(napi_env env, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void throw_range(napi_env env, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Throws the system error `err` (a positive errno) raised by `syscall`. */
void throw_errno(napi_env env, int err, const char *syscall);

/* Small constructors that return NULL after throwing on failure. */
napi_value make_int(napi_env env, int64_t v);
napi_value make_bool(napi_env env, bool v);
bool set_prop(napi_env env, napi_value obj, const char *name, napi_value v);

/* close(2) that keeps errno intact, for cleanup paths. */
void close_quietly(int fd);

/*
 * Node-API calls fail only on a programming error or when a JS exception is pending. napi_check
 * makes sure an exception is pending afterwards (so JS never sees a silent `undefined`) and
 * returns false; NAPI_OK bails out of a napi_value-returning function with it.
 */
bool napi_check(napi_env env, napi_status status);
#define NAPI_OK(call)                                                                              \
  do {                                                                                             \
    if (!napi_check(env, (call))) return NULL;                                                     \
  } while (0)

#endif

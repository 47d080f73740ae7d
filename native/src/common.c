#include "common.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

bool napi_check(napi_env env, napi_status status) {
  if (status == napi_ok) return true;
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) == napi_ok && !pending) {
    const napi_extended_error_info *info = NULL;
    const char *msg = NULL;
    if (napi_get_last_error_info(env, &info) == napi_ok && info != NULL) msg = info->error_message;
    char buf[160];
    snprintf(buf, sizeof buf, "ambient native: Node-API call failed (%s)",
             msg != NULL ? msg : "unknown");
    napi_throw_error(env, "ENAPI", buf);
  }
  return false;
}

bool get_args(napi_env env, napi_callback_info info, size_t n, napi_value *argv) {
  size_t argc = n;
  if (!napi_check(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL))) return false;
  if (argc < n) {
    throw_type(env, "expected %zu argument(s), got %zu", n, argc);
    return false;
  }
  return true;
}

static void throw_invalid(napi_env env, bool range, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

static void throw_invalid(napi_env env, bool range, const char *fmt, va_list ap) {
  char buf[256];
  vsnprintf(buf, sizeof buf, fmt, ap);
  if (range) {
    napi_throw_range_error(env, "ERR_INVALID_ARG", buf);
  } else {
    napi_throw_type_error(env, "ERR_INVALID_ARG", buf);
  }
}

void throw_type(napi_env env, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  throw_invalid(env, false, fmt, ap);
  va_end(ap);
}

void throw_range(napi_env env, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  throw_invalid(env, true, fmt, ap);
  va_end(ap);
}

void throw_errno(napi_env env, int err, const char *syscall) {
  char name[64];
  /* libuv (exported by every Node) knows the errno names; the _r form never allocates. */
  uv_err_name_r(-err, name, sizeof name);
  char desc[128];
  const char *text = strerror_r(err, desc, sizeof desc);
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s (%s)", syscall, text, name);

  napi_value code, message, error;
  if (napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code) != napi_ok ||
      napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &message) != napi_ok ||
      napi_create_error(env, code, message, &error) != napi_ok) {
    napi_throw_error(env, name, msg);
    return;
  }
  napi_value errno_value, syscall_value;
  if (napi_create_int32(env, err, &errno_value) == napi_ok) {
    napi_set_named_property(env, error, "errno", errno_value);
  }
  if (napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &syscall_value) == napi_ok) {
    napi_set_named_property(env, error, "syscall", syscall_value);
  }
  napi_throw(env, error);
}

bool arg_int64(napi_env env, napi_value v, const char *what, int64_t min, int64_t max,
               int64_t *out) {
  napi_valuetype t;
  if (!napi_check(env, napi_typeof(env, v, &t))) return false;
  if (t != napi_number) {
    throw_type(env, "%s must be a number", what);
    return false;
  }
  double d;
  if (!napi_check(env, napi_get_value_double(env, v, &d))) return false;
  /* Reject NaN, fractions and anything outside [min, max] before converting. */
  if (!isfinite(d) || d != trunc(d) || d < (double)min || d > (double)max) {
    throw_range(env, "%s must be an integer in [%lld, %lld]", what, (long long)min,
                (long long)max);
    return false;
  }
  *out = (int64_t)d;
  return true;
}

bool arg_fd(napi_env env, napi_value v, const char *what, int *out) {
  int64_t fd;
  if (!arg_int64(env, v, what, 0, INT_MAX, &fd)) return false;
  *out = (int)fd;
  return true;
}

bool arg_bool(napi_env env, napi_value v, const char *what, bool *out) {
  napi_valuetype t;
  if (!napi_check(env, napi_typeof(env, v, &t))) return false;
  if (t != napi_boolean) {
    throw_type(env, "%s must be a boolean", what);
    return false;
  }
  return napi_check(env, napi_get_value_bool(env, v, out));
}

bool arg_string(napi_env env, napi_value v, const char *what, char *buf, size_t cap,
                size_t *len) {
  napi_valuetype t;
  if (!napi_check(env, napi_typeof(env, v, &t))) return false;
  if (t != napi_string) {
    throw_type(env, "%s must be a string", what);
    return false;
  }
  size_t need;
  if (!napi_check(env, napi_get_value_string_utf8(env, v, NULL, 0, &need))) return false;
  if (need + 1 > cap) {
    throw_range(env, "%s is too long (%zu bytes, at most %zu)", what, need, cap - 1);
    return false;
  }
  size_t got;
  if (!napi_check(env, napi_get_value_string_utf8(env, v, buf, cap, &got))) return false;
  if (strlen(buf) != got) {
    throw_range(env, "%s must not contain NUL characters", what);
    return false;
  }
  if (len != NULL) *len = got;
  return true;
}

bool get_prop(napi_env env, napi_value obj, const char *name, napi_value *out, bool *present) {
  if (!napi_check(env, napi_get_named_property(env, obj, name, out))) return false;
  napi_valuetype t;
  if (!napi_check(env, napi_typeof(env, *out, &t))) return false;
  *present = t != napi_undefined;
  return true;
}

napi_value make_int(napi_env env, int64_t v) {
  napi_value out;
  NAPI_OK(napi_create_int64(env, v, &out));
  return out;
}

napi_value make_bool(napi_env env, bool v) {
  napi_value out;
  NAPI_OK(napi_get_boolean(env, v, &out));
  return out;
}

bool set_prop(napi_env env, napi_value obj, const char *name, napi_value v) {
  if (v == NULL) return false;
  return napi_check(env, napi_set_named_property(env, obj, name, v));
}

void close_quietly(int fd) {
  int saved = errno;
  /* Linux releases the fd even when close() reports EINTR, so never retry. */
  (void)close(fd);
  errno = saved;
}

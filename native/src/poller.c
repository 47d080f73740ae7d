/*
 * Readiness of an fd Node does not manage (the SEQPACKET sockets), on the event loop.
 *
 * Why uv_poll: the wait must not block the JS thread and must not hold a libuv thread-pool thread
 * (there are four, shared with fs, dns.lookup and crypto; a ZDS connection waits for hours). A
 * uv_poll handle puts the fd in the loop's epoll set, costs no thread and wakes the JS callback on
 * the loop like any socket. libuv keeps its ABI stable across 1.x, so this stays one build for
 * every Node version, like the Node-API calls.
 *
 * pollerCreate(fd, callback) -> handle     callback(errno: number, events: number)
 * pollerUpdate(handle, events)             1 readable, 2 writable; 0 stops watching
 * pollerClose(handle)                      stops for good; call it before closing the fd
 *
 * The callback runs whenever one of the wanted conditions holds (level-triggered) with the events
 * seen (1 readable, 2 writable, 4 the peer hung up) or a positive errno. libuv allows one poller
 * per fd; the TypeScript FdWatcher keeps to that. An active poller keeps the loop alive, a stopped
 * one does not.
 */
#include "common.h"

#include <errno.h>
#include <stdlib.h>
#include <uv.h>

typedef struct poller_list poller_list;

typedef struct poller {
  uv_poll_t handle; /* first member: the uv handle pointer is the poller pointer */
  napi_env env;
  poller_list *list;
  napi_ref callback;
  napi_async_context async;
  bool closed;
  int refs; /* the JS external and the uv handle each hold one */
  struct poller *prev, *next;
} poller;

/*
 * Per-environment state. When the environment goes away (a worker exits) every poller must be
 * fully closed — its uv close callback run — before Node unloads the addon, or libuv would call
 * into unmapped code. An async cleanup hook lets Node keep the loop running until then.
 */
struct poller_list {
  poller *head;                           /* pollers not closed yet */
  int handles;                            /* uv handles whose close callback has not run */
  bool tearing_down;
  napi_async_cleanup_hook_handle cleanup; /* valid while tearing_down */
};

static void unref(poller *p) {
  if (--p->refs == 0) free(p);
}

static void finish_teardown_if_done(poller_list *list) {
  if (list->tearing_down && list->handles == 0) {
    napi_remove_async_cleanup_hook(list->cleanup);
    free(list);
  }
}

static void on_uv_closed(uv_handle_t *h) {
  poller *p = (poller *)h;
  poller_list *list = p->list;
  unref(p);
  list->handles--;
  finish_teardown_if_done(list);
}

/* Stops watching and releases the JS callback; the memory goes when the external is collected. */
static void shut(poller *p) {
  if (p->closed) return;
  p->closed = true;
  uv_poll_stop(&p->handle);
  poller_list *list = p->list;
  /* During teardown Node releases references itself and async hooks are gone. */
  if (!list->tearing_down) {
    napi_delete_reference(p->env, p->callback);
    napi_async_destroy(p->env, p->async);
  }
  if (p->prev != NULL) {
    p->prev->next = p->next;
  } else {
    list->head = p->next;
  }
  if (p->next != NULL) p->next->prev = p->prev;
  p->prev = p->next = NULL;
  uv_close((uv_handle_t *)&p->handle, on_uv_closed);
}

static void on_teardown(napi_async_cleanup_hook_handle handle, void *arg) {
  poller_list *list = arg;
  list->cleanup = handle;
  list->tearing_down = true;
  while (list->head != NULL) shut(list->head);
  finish_teardown_if_done(list);
}

napi_status ambient_poller_init_env(napi_env env) {
  poller_list *list = calloc(1, sizeof *list);
  if (list == NULL) return napi_generic_failure;
  napi_status s = napi_set_instance_data(env, list, NULL, NULL);
  if (s == napi_ok) s = napi_add_async_cleanup_hook(env, on_teardown, list, NULL);
  if (s != napi_ok) free(list);
  return s;
}

static void on_external_gone(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  poller *p = data;
  /* A poller dropped without pollerClose: stop it so the fd is not watched forever. Once closed
   * (always so during teardown) this touches nothing but the poller itself. */
  shut(p);
  unref(p);
}

static void on_poll(uv_poll_t *h, int status, int events) {
  poller *p = (poller *)h;
  if (p->closed) return;
  napi_env env = p->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value fn, recv, argv[2];
  if (napi_get_reference_value(env, p->callback, &fn) == napi_ok && fn != NULL &&
      napi_get_global(env, &recv) == napi_ok &&
      napi_create_int32(env, status < 0 ? -status : 0, &argv[0]) == napi_ok &&
      napi_create_int32(env, status < 0 ? 0 : events, &argv[1]) == napi_ok) {
    /* make_callback (not call_function) so promises resolved in the callback run right after;
     * it needs an object as receiver, hence the global. */
    napi_value result;
    if (napi_make_callback(env, p->async, recv, fn, 2, argv, &result) != napi_ok) {
      bool pending = false;
      napi_value error;
      if (napi_is_exception_pending(env, &pending) == napi_ok && pending &&
          napi_get_and_clear_last_exception(env, &error) == napi_ok) {
        napi_fatal_exception(env, error);
      }
    }
  }
  napi_close_handle_scope(env, scope);
}

static bool arg_poller(napi_env env, napi_value v, poller **out) {
  napi_valuetype t;
  if (!napi_check(env, napi_typeof(env, v, &t))) return false;
  void *data = NULL;
  if (t != napi_external || !napi_check(env, napi_get_value_external(env, v, &data)) ||
      data == NULL) {
    throw_type(env, "handle must be a poller handle");
    return false;
  }
  *out = data;
  return true;
}

napi_value ambient_poller_create(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int fd;
  if (!get_args(env, info, 2, argv) || !arg_fd(env, argv[0], "fd", &fd)) return NULL;
  napi_valuetype t;
  NAPI_OK(napi_typeof(env, argv[1], &t));
  if (t != napi_function) {
    throw_type(env, "callback must be a function");
    return NULL;
  }
  uv_loop_t *loop;
  NAPI_OK(napi_get_uv_event_loop(env, &loop));
  void *data = NULL;
  NAPI_OK(napi_get_instance_data(env, &data));
  poller_list *list = data;
  if (list == NULL || list->tearing_down) {
    napi_throw_error(env, "ENAPI", "ambient native: poller state missing");
    return NULL;
  }

  poller *p = calloc(1, sizeof *p);
  if (p == NULL) {
    throw_errno(env, ENOMEM, "calloc");
    return NULL;
  }
  int rc = uv_poll_init(loop, &p->handle, fd);
  if (rc != 0) {
    free(p);
    throw_errno(env, -rc, "uv_poll_init");
    return NULL;
  }
  p->env = env;
  p->list = list;
  p->refs = 1; /* the uv handle; the external adds one below */
  list->handles++;

  napi_value name, resource, external;
  if (napi_create_string_utf8(env, "AmbientFdPoller", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_object(env, &resource) != napi_ok ||
      napi_async_init(env, resource, name, &p->async) != napi_ok) {
    uv_close((uv_handle_t *)&p->handle, on_uv_closed);
    napi_check(env, napi_generic_failure);
    return NULL;
  }
  if (napi_create_reference(env, argv[1], 1, &p->callback) != napi_ok) {
    napi_async_destroy(env, p->async);
    uv_close((uv_handle_t *)&p->handle, on_uv_closed);
    napi_check(env, napi_generic_failure);
    return NULL;
  }
  p->next = list->head;
  if (list->head != NULL) list->head->prev = p;
  list->head = p;

  if (napi_create_external(env, p, on_external_gone, NULL, &external) != napi_ok) {
    shut(p);
    napi_check(env, napi_generic_failure);
    return NULL;
  }
  p->refs++;
  return external;
}

napi_value ambient_poller_update(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  poller *p;
  int64_t events;
  if (!get_args(env, info, 2, argv) || !arg_poller(env, argv[0], &p) ||
      !arg_int64(env, argv[1], "events", 0, 3, &events)) {
    return NULL;
  }
  if (p->closed) {
    throw_errno(env, EBADF, "uv_poll_start");
    return NULL;
  }
  if (events == 0) {
    uv_poll_stop(&p->handle);
    return NULL;
  }
  int wanted = 0;
  if (events & 1) wanted |= UV_READABLE | UV_DISCONNECT;
  if (events & 2) wanted |= UV_WRITABLE;
  int rc = uv_poll_start(&p->handle, wanted, on_poll);
  if (rc != 0) {
    throw_errno(env, -rc, "uv_poll_start");
    return NULL;
  }
  return NULL;
}

napi_value ambient_poller_close(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  poller *p;
  if (!get_args(env, info, 1, argv) || !arg_poller(env, argv[0], &p)) return NULL;
  shut(p);
  return NULL;
}

# The ambient native addon: the few Linux socket calls Node does not offer (DESIGN.md section 6).
# Plain C against Node-API (NAPI_VERSION 8), so one build loads in every Node version from 16 on.
{
  "targets": [
    {
      "target_name": "ambient_native",
      "sources": [
        "src/addon.c",
        "src/common.c",
        "src/sockopt.c",
        "src/netns_socket.c",
        "src/seqpacket.c",
        "src/poller.c",
      ],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"],
      "cflags": [
        "-std=gnu11",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-Wshadow",
        "-Wformat=2",
        "-Wstrict-prototypes",
        "-Wmissing-prototypes",
        "-fvisibility=hidden",
        "-fstack-protector-strong",
        "-D_FORTIFY_SOURCE=2",
      ],
      # node-gyp's defaults add -Wno-unused-parameter; we want that warning too.
      "cflags!": ["-Wno-unused-parameter"],
    }
  ]
}

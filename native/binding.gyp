{
  "variables": {
    "out%": "<(module_root_dir)/../build"
  },
  "targets": [
    {
      "target_name": "unixsock",
      "sources": ["addon.cc", "capture.cc", "loader.cc"],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "../bpf",
        "<(out)",
        "<(out)/deps/include",
        # build/unixsock_vocab.h, the same for every architecture; after <(out), whose skeleton must win
        "../build"
      ],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-Wall", "-Wno-missing-field-initializers"],
      "cflags_cc!": ["-fno-exceptions"],
      "libraries": [
        "<(out)/deps/lib/libbpf.a",
        "<(out)/deps/lib/libelf.a",
        "<(out)/deps/lib/libeu.a",
        "<(out)/deps/lib/libz.a"
      ]
    }
  ]
}

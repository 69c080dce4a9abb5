{
  "targets": [
    {
      "target_name": "unixsock",
      "sources": ["addon.cc", "capture.cc", "loader.cc"],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "../bpf",
        "../build",
        "../build/deps/include"
      ],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-Wall", "-Wno-missing-field-initializers"],
      "cflags_cc!": ["-fno-exceptions"],
      "libraries": [
        "<(module_root_dir)/../build/deps/lib/libbpf.a",
        "<(module_root_dir)/../build/deps/lib/libelf.a",
        "<(module_root_dir)/../build/deps/lib/libeu.a",
        "<(module_root_dir)/../build/deps/lib/libz.a"
      ]
    }
  ]
}

// kfeatures: what the running kernel offers each attach strategy, found out
// independently of the capture's own loader (native/loader.cc), so that the
// tests can predict what the capture must accept, refuse and pick.
//
// Each argument names one hook, KIND:TARGET, as test/kernels/strategies.json
// lists them:
//   fexit:FUNC        FUNC in the kernel's BTF, then a two-instruction fexit
//                     program loaded and attached to it (BPF trampolines)
//   kprobe:FUNC       a kprobe perf event opened on FUNC (the kprobe PMU)
//   kretprobe:FUNC    the same with the PMU's retprobe bit
//   tp_btf:NAME       btf_trace_NAME in the BTF, then a two-instruction tp_btf
//                     program loaded and attached to it
//   tracepoint:C/N    tracefs (wherever /proc/self/mounts says it is, or
//                     mounted on a temporary directory), events/C/N/id, and a
//                     perf event opened on that id
// The program builds its bpf() attributes itself and uses libbpf only to read
// the BTF. It prints one JSON object: the kernel release and machine, where
// tracefs is, the system call numbers of this architecture (from the C
// library's headers: what the capture's records must carry) and, per hook,
// whether it works and if not, why.
#define _GNU_SOURCE
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/bpf.h>
#include <linux/perf_event.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

static struct btf *vmlinux;
static char tracefs[512];      // where tracefs is mounted ("" if nowhere)
static int tracefs_temporary;  // mounted by us, on a temporary directory

static void json_str(const char *s) {
  putchar('"');
  for (; *s; s++) {
    if (*s == '"' || *s == '\\') printf("\\%c", *s);
    else if ((unsigned char)*s < 0x20) printf("\\u%04x", *s);
    else putchar(*s);
  }
  putchar('"');
}

static int sys_bpf(int cmd, union bpf_attr *a) { return (int)syscall(__NR_bpf, cmd, a, sizeof(*a)); }

// Loads `r0 = 0; exit` as a tracing program of the given attach type on the
// BTF type id, and attaches it. Returns 0, or writes why into `why`.
static int trial_tracing(enum bpf_attach_type type, int btf_id, char *why, size_t n) {
  struct bpf_insn insns[] = {
      {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0},
      {.code = BPF_JMP | BPF_EXIT},
  };
  char log[4096] = "";
  union bpf_attr a;
  memset(&a, 0, sizeof(a));
  a.prog_type = BPF_PROG_TYPE_TRACING;
  a.expected_attach_type = type;
  a.attach_btf_id = btf_id;
  a.insns = (uintptr_t)insns;
  a.insn_cnt = 2;
  a.license = (uintptr_t) "GPL";
  a.log_buf = (uintptr_t)log;
  a.log_size = sizeof(log);
  a.log_level = 1;
  int prog = sys_bpf(BPF_PROG_LOAD, &a);
  if (prog < 0) {
    int e = errno;
    char *nl = strchr(log, '\n');
    if (nl) *nl = 0;
    snprintf(why, n, "load: %s%s%s", strerror(e), *log ? ": " : "", log);
    return -1;
  }
  memset(&a, 0, sizeof(a));
  a.raw_tracepoint.prog_fd = prog;
  int link = sys_bpf(BPF_RAW_TRACEPOINT_OPEN, &a);
  int e = errno;
  close(prog);
  if (link < 0) {
    snprintf(why, n, "attach: %s", strerror(e));
    return -1;
  }
  close(link);
  return 0;
}

static int read_int(const char *path, int *v) {
  FILE *f = fopen(path, "re");
  if (!f) return -1;
  int ok = fscanf(f, "%d", v) == 1;
  fclose(f);
  return ok ? 0 : -1;
}

static int kprobe_pmu(int ret, char *why, size_t n, struct perf_event_attr *pa) {
  const char *dev = "/sys/bus/event_source/devices/kprobe";
  char p[256];
  int type;
  snprintf(p, sizeof(p), "%s/type", dev);
  if (read_int(p, &type)) {
    snprintf(why, n, "no kprobe PMU (%s)", dev);
    return -1;
  }
  memset(pa, 0, sizeof(*pa));
  pa->size = sizeof(*pa);
  pa->type = type;
  if (ret) {
    // format/retprobe reads "config:N": the bit that makes it a kretprobe
    int bit;
    FILE *f;
    snprintf(p, sizeof(p), "%s/format/retprobe", dev);
    if (!(f = fopen(p, "re")) || fscanf(f, "config:%d", &bit) != 1) {
      if (f) fclose(f);
      snprintf(why, n, "the kprobe PMU has no retprobe bit");
      return -1;
    }
    fclose(f);
    pa->config |= 1ULL << bit;
  }
  return 0;
}

static int perf_open(struct perf_event_attr *pa, char *why, size_t n) {
  int fd = (int)syscall(__NR_perf_event_open, pa, -1, 0, -1, PERF_FLAG_FD_CLOEXEC);
  if (fd < 0) {
    snprintf(why, n, "perf_event_open: %s", strerror(errno));
    return -1;
  }
  close(fd);
  return 0;
}

static void find_tracefs(void) {
  FILE *f = fopen("/proc/self/mounts", "re");
  char dev[256], dir[512], type[64];
  while (f && fscanf(f, "%255s %511s %63s %*[^\n]", dev, dir, type) == 3) {
    if (!strcmp(type, "tracefs")) {
      snprintf(tracefs, sizeof(tracefs), "%s", dir);
      break;
    }
  }
  if (f) fclose(f);
  if (*tracefs) return;
  char tmp[] = "/tmp/kfeatures-tracefs-XXXXXX";
  if (mkdtemp(tmp) && mount("tracefs", tmp, "tracefs", 0, NULL) == 0) {
    snprintf(tracefs, sizeof(tracefs), "%s", tmp);
    tracefs_temporary = 1;
  } else if (*tmp) {
    rmdir(tmp);
  }
}

static int check(const char *hook, char *why, size_t n) {
  const char *colon = strchr(hook, ':');
  if (!colon) {
    snprintf(why, n, "not KIND:TARGET");
    return -1;
  }
  char kind[32];
  snprintf(kind, sizeof(kind), "%.*s", (int)(colon - hook), hook);
  const char *target = colon + 1;
  if (!strcmp(kind, "fexit") || !strcmp(kind, "tp_btf")) {
    if (!vmlinux) {
      snprintf(why, n, "no BTF");
      return -1;
    }
    char name[256];
    int fexit = !strcmp(kind, "fexit");
    snprintf(name, sizeof(name), fexit ? "%s" : "btf_trace_%s", target);
    int id = btf__find_by_name_kind(vmlinux, name, fexit ? BTF_KIND_FUNC : BTF_KIND_TYPEDEF);
    if (id < 0) {
      snprintf(why, n, "not in BTF (%s)", name);
      return -1;
    }
    return trial_tracing(fexit ? BPF_TRACE_FEXIT : BPF_TRACE_RAW_TP, id, why, n);
  }
  if (!strcmp(kind, "kprobe") || !strcmp(kind, "kretprobe")) {
    struct perf_event_attr pa;
    if (kprobe_pmu(!strcmp(kind, "kretprobe"), why, n, &pa)) return -1;
    pa.config1 = (uintptr_t)target;  // kprobe_func
    return perf_open(&pa, why, n);
  }
  if (!strcmp(kind, "tracepoint")) {
    if (!*tracefs) {
      snprintf(why, n, "tracefs is not mounted and cannot be mounted");
      return -1;
    }
    char p[1024];
    int id;
    snprintf(p, sizeof(p), "%s/events/%s/id", tracefs, target);
    if (read_int(p, &id)) {
      snprintf(why, n, "no tracepoint %s in tracefs", target);
      return -1;
    }
    struct perf_event_attr pa = {.size = sizeof(pa), .type = PERF_TYPE_TRACEPOINT, .config = (uint64_t)id};
    return perf_open(&pa, why, n);
  }
  snprintf(why, n, "unknown kind %s", kind);
  return -1;
}

int main(int argc, char **argv) {
  if (argc < 2 || !strcmp(argv[1], "--help")) {
    fprintf(stderr, "usage: kfeatures KIND:TARGET...  (KIND: fexit, kprobe, kretprobe, tp_btf, tracepoint)\n");
    return 2;
  }
  libbpf_set_print(NULL);
  vmlinux = btf__load_vmlinux_btf();
  find_tracefs();
  struct utsname u;
  uname(&u);
  printf("{\"release\":");
  json_str(u.release);
  printf(",\"machine\":");
  json_str(u.machine);
  printf(",\"btf\":%s,\"tracefs\":", vmlinux ? "true" : "false");
  if (*tracefs && !tracefs_temporary) json_str(tracefs);
  else printf(tracefs_temporary ? "\"(mountable)\"" : "null");
  printf(",\"syscalls\":{\"write\":%d,\"writev\":%d,\"sendto\":%d,\"sendmsg\":%d,\"sendmmsg\":%d,\"sendfile\":%d}",
         SYS_write, SYS_writev, SYS_sendto, SYS_sendmsg, SYS_sendmmsg, SYS_sendfile);
  printf(",\"hooks\":{");
  for (int i = 1; i < argc; i++) {
    char why[600] = "";
    int ok = check(argv[i], why, sizeof(why)) == 0;
    printf("%s", i > 1 ? "," : "");
    json_str(argv[i]);
    printf(":{\"ok\":%s", ok ? "true" : "false");
    if (!ok) {
      printf(",\"why\":");
      json_str(why);
    }
    printf("}");
  }
  printf("}}\n");
  if (tracefs_temporary) {
    umount(tracefs);
    rmdir(tracefs);
  }
  btf__free(vmlinux);
  return 0;
}

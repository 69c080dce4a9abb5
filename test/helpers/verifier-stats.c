// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * verifier-stats OBJ: loads every program of a BPF object on the running
 * kernel, one at a time, and prints the verifier's own figures for each
 * (log level BPF_LOG_STATS: instructions processed, states, peak states),
 * once with every filter off and once with every filter on (the rodata the
 * loader writes decides which code the verifier walks). One line per program
 * and setting, tab-separated:
 *
 *   PROGRAM  SETTING  ok|refused|unsupported  INSNS  TOTAL_STATES  PEAK_STATES  MAX_STATES_PER_INSN  REASON
 *
 * "refused" means the verifier said no (its reason line follows); "unsupported"
 * means this kernel refuses the program type before verifying it (fexit
 * without BPF trampolines: EPERM with an empty log). Exit status: 1 when any
 * program was refused, 2 for bad usage or an object that does not open.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <linux/types.h>
#include "unixsock.h"

static char logbuf[256 << 20];

static int quiet(enum libbpf_print_level l, const char *f, va_list a)
{
	return 0;
}

/* Writes VAL (LEN bytes) into the .rodata variable NAME. */
static void set_var(struct bpf_object *obj, const char *name, const void *val, size_t len)
{
	struct bpf_map *m = bpf_object__find_map_by_name(obj, ".rodata");
	const struct btf *btf = bpf_object__btf(obj);
	size_t size;
	char *data;
	int sec;

	if (!m || !btf || !(data = (char *)bpf_map__initial_value(m, &size)))
		goto missing;
	sec = btf__find_by_name_kind(btf, ".rodata", BTF_KIND_DATASEC);
	if (sec < 0)
		goto missing;
	const struct btf_type *t = btf__type_by_id(btf, sec);
	const struct btf_var_secinfo *v = btf_var_secinfos(t);
	for (int i = 0; i < btf_vlen(t); i++, v++) {
		const struct btf_type *vt = btf__type_by_id(btf, v->type);
		if (strcmp(btf__name_by_offset(btf, vt->name_off), name) == 0 && v->offset + len <= size &&
		    len <= v->size) {
			memcpy(data + v->offset, val, len);
			return;
		}
	}
missing:
	/* a renamed variable would silently verify "filters" as "plain" */
	fprintf(stderr, "verifier-stats: the object has no .rodata variable %s of %zu bytes\n", name, len);
	exit(2);
}

static void filters_on(struct bpf_object *obj)
{
	struct unixsock_filter f = {
		.wakeup_bytes = 256 * 1024,
		.payload = 1,
		.path_mode = UNIXSOCK_PATH_PREFIX,
		.path_len = 107,
		.file_on = 1,
		.file_dev = 1,
		.file_ino = 1,
		.pid_on = 1,
		.pid = 1,
		.comm_on = 1,
		.comm = "abcdefghijklmno",
		.cgroup_on = 1,
		.cgroup_level = 2,
		.cgroup_id = 1,
		.pidns_on = 1,
		.pidns = 1,
		.netns_on = 1,
		.netns = 1,
		.snaplen = 1000,
		.types_mask = 0x26,
	};

	memset(f.path, 'a', sizeof(f.path));
	f.path[0] = '/';
	set_var(obj, "filter", &f, sizeof(f));
}

/* The verifier's reason: the last log line before its closing statistics. */
static void reason_line(const char *log, char *out, size_t outlen)
{
	char *copy = strdup(log), *save = NULL, *last = NULL;

	out[0] = 0;
	for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		if (!strncmp(l, "processed ", 10) || !strncmp(l, "verification time", 17) ||
		    !strncmp(l, "stack depth", 11) || !*l)
			continue;
		last = l;
	}
	if (last)
		snprintf(out, outlen, "%s", last);
	free(copy);
}

static int one(const char *path, const char *prog, int with_filters)
{
	struct bpf_object *obj = bpf_object__open_file(path, NULL);
	struct bpf_program *p, *target = NULL;
	struct bpf_map *rb;
	char reason[512];
	long insns = -1, total = -1, peak = -1, per_insn = -1;
	int err;

	if (!obj)
		return -1;
	bpf_object__for_each_program(p, obj) {
		int me = strcmp(bpf_program__name(p), prog) == 0;
		bpf_program__set_autoload(p, me);
		if (me)
			target = p;
	}
	rb = bpf_object__find_map_by_name(obj, "rb");
	if (rb)
		bpf_map__set_max_entries(rb, 1 << 20);
	if (with_filters)
		filters_on(obj);
	logbuf[0] = 0;
	bpf_program__set_log_buf(target, logbuf, sizeof(logbuf));
	/* VERIFIER_LOG=PROGRAM: its whole log (level 1) on stderr, for finding what the verifier dislikes */
	const char *full = getenv("VERIFIER_LOG");
	int dump = full && !strcmp(full, prog);
	bpf_program__set_log_level(target, dump ? 1 | 4 : 4 /* BPF_LOG_STATS */);
	err = bpf_object__load(obj);
	if (dump)
		fputs(logbuf, stderr);
	const char *s = strstr(logbuf, "processed ");
	if (s) {
		sscanf(s, "processed %ld insns", &insns);
		const char *q;
		if ((q = strstr(s, "max_states_per_insn ")))
			sscanf(q, "max_states_per_insn %ld", &per_insn);
		if ((q = strstr(s, "total_states ")))
			sscanf(q, "total_states %ld", &total);
		if ((q = strstr(s, "peak_states ")))
			sscanf(q, "peak_states %ld", &peak);
	}
	reason_line(logbuf, reason, sizeof(reason));
	const char *verdict = !err ? "ok" : (!logbuf[0] ? "unsupported" : "refused");
	if (!err)
		reason[0] = 0;
	else if (!logbuf[0])
		snprintf(reason, sizeof(reason), "%s", strerror(-err));
	printf("%s\t%s\t%s\t%ld\t%ld\t%ld\t%ld\t%s\n", prog, with_filters ? "filters" : "plain", verdict, insns, total,
	       peak, per_insn, reason);
	bpf_object__close(obj);
	return err && logbuf[0] ? 1 : 0;
}

int main(int argc, char **argv)
{
	struct bpf_object *obj;
	struct bpf_program *p;
	char *names[64];
	int n = 0, refused = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: verifier-stats OBJECT.bpf.o\n");
		return 2;
	}
	libbpf_set_print(quiet);
	obj = bpf_object__open_file(argv[1], NULL);
	if (!obj) {
		fprintf(stderr, "verifier-stats: cannot open %s: %s\n", argv[1], strerror(errno));
		return 2;
	}
	bpf_object__for_each_program(p, obj) {
		if (n < 64)
			names[n++] = strdup(bpf_program__name(p));
	}
	bpf_object__close(obj);
	for (int i = 0; i < n; i++)
		for (int f = 0; f < 2; f++) {
			int r = one(argv[1], names[i], f);
			if (r < 0) {
				fprintf(stderr, "verifier-stats: cannot open %s\n", argv[1]);
				return 2;
			}
			refused |= r;
		}
	return refused;
}

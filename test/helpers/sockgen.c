// sockgen: generates Unix socket traffic with exact system calls for the
// end-to-end tests, and prints what it did as one JSON object on stdout.
//
//   sockgen MODE [ARG]
//     stream-pair          socketpair(STREAM); parent write(), child send() a reply
//     dgram-abstract NAME  bound abstract dgram receiver; sendto() from an unbound sender
//     seqpacket            socketpair(SEQPACKET); three send()s
//     writev N             writev() with N iovecs on a stream pair
//     sendmsg-iov N        sendmsg() with N iovecs on a stream pair
//     sendmmsg K           sendmmsg() of K messages on a dgram pair
//     rights               sendmsg() with SCM_RIGHTS (two fds)
//     creds                sendmsg() with SCM_CREDENTIALS
//     sendfile             sendfile() from a file into a stream pair
//     connect PATH TEXT    connect to a stream socket at PATH, write TEXT, read the answer
//     big N                one send() of N bytes on a stream pair (byte i = (i * 131 + (i >> 12)) & 255)
//     burst K              K write()s "MARK-burst-000000", "…-000001", … on a stream pair, at once
// Every payload starts with a marker the tests search for.
#define _GNU_SOURCE
#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static void die(const char *what)
{
	fprintf(stderr, "sockgen: %s: %s\n", what, strerror(errno));
	exit(1);
}

static unsigned long ino(int fd)
{
	struct stat st;

	if (fstat(fd, &st))
		die("fstat");
	return (unsigned long)st.st_ino;
}

static void drain(int fd, size_t want)
{
	char buf[65536];
	size_t got = 0;

	while (got < want) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n <= 0)
			break;
		got += n;
	}
}

static int pair(int type, int sv[2])
{
	if (socketpair(AF_UNIX, type, 0, sv))
		die("socketpair");
	return 0;
}

/* The inode of /proc/self/ns/NAME: the namespace's number (readlink shows it as NAME:[N]). */
static unsigned long ns_ino(const char *name)
{
	char p[64];
	struct stat st;

	snprintf(p, sizeof(p), "/proc/self/ns/%s", name);
	return stat(p, &st) ? 0 : (unsigned long)st.st_ino;
}

/* Our cgroup's id in the v2 hierarchy: the inode of its directory, where a
 * cgroup2 file system is mounted at one of the usual places; 0 when none is. */
static unsigned long cgroup_ino(void)
{
	static const char *roots[] = { "/sys/fs/cgroup/unified", "/sys/fs/cgroup" };
	char line[4096], p[4200];
	FILE *f = fopen("/proc/self/cgroup", "r");
	unsigned long r = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "0::", 3))
			continue;
		line[strcspn(line, "\n")] = 0;
		for (size_t i = 0; i < sizeof(roots) / sizeof(roots[0]) && !r; i++) {
			struct statfs fs;
			struct stat st;

			if (statfs(roots[i], &fs) || fs.f_type != 0x63677270 /* CGROUP2_SUPER_MAGIC */)
				continue;
			snprintf(p, sizeof(p), "%s%s", roots[i], line + 3);
			if (!stat(p, &st))
				r = (unsigned long)st.st_ino;
		}
	}
	fclose(f);
	return r;
}

static void json_begin(const char *mode, int sv[2])
{
	printf("{\"mode\":\"%s\",\"pid\":%d,\"uid\":%u,\"gid\":%u,\"ino\":%lu,\"peerIno\":%lu,\"pidns\":%lu,\"mntns\":%"
	       "lu,"
	       "\"cgroup\":%lu",
	       mode, getpid(), getuid(), getgid(), ino(sv[0]), ino(sv[1]), ns_ino("pid"), ns_ino("mnt"), cgroup_ino());
}

int main(int argc, char **argv)
{
	int sv[2];
	const char *mode = argc > 1 ? argv[1] : "";
	int n = argc > 2 ? atoi(argv[2]) : 0;

	/* give a capture that started just before us time to settle (not for burst: it tests just that) */
	if (strcmp(mode, "burst"))
		usleep(50000);
	if (!strcmp(mode, "stream-pair")) {
		const char *msg = "MARK-stream-hello";
		const char *reply = "MARK-stream-reply";
		pair(SOCK_STREAM, sv);
		pid_t child = fork();
		if (child == 0) {
			close(sv[0]);
			char buf[64];
			ssize_t r = read(sv[1], buf, sizeof(buf));
			(void)r;
			if (send(sv[1], reply, strlen(reply), 0) < 0)
				die("send");
			_exit(0);
		}
		if (write(sv[0], msg, strlen(msg)) < 0)
			die("write");
		drain(sv[0], strlen(reply));
		waitpid(child, NULL, 0);
		json_begin(mode, sv);
		printf(",\"child\":%d,\"payload\":\"%s\",\"reply\":\"%s\"}\n", child, msg, reply);
	} else if (!strcmp(mode, "dgram-abstract")) {
		const char *name = argc > 2 ? argv[2] : "unixsock-test";
		const char *msg = "MARK-dgram-abstract";
		struct sockaddr_un a = { .sun_family = AF_UNIX };
		socklen_t alen = offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name);
		int r = socket(AF_UNIX, SOCK_DGRAM, 0), s = socket(AF_UNIX, SOCK_DGRAM, 0);
		memcpy(a.sun_path + 1, name, strlen(name));
		if (bind(r, (struct sockaddr *)&a, alen))
			die("bind");
		if (sendto(s, msg, strlen(msg), 0, (struct sockaddr *)&a, alen) < 0)
			die("sendto");
		char buf[64];
		if (recv(r, buf, sizeof(buf), 0) < 0)
			die("recv");
		sv[0] = s;
		sv[1] = r;
		json_begin(mode, sv);
		printf(",\"payload\":\"%s\",\"name\":\"%s\"}\n", msg, name);
	} else if (!strcmp(mode, "seqpacket")) {
		pair(SOCK_SEQPACKET, sv);
		for (int i = 0; i < 3; i++) {
			char m[32];
			snprintf(m, sizeof(m), "MARK-seqpacket-%d", i);
			if (send(sv[0], m, strlen(m), 0) < 0)
				die("send");
		}
		json_begin(mode, sv);
		printf(",\"payload\":\"MARK-seqpacket-\",\"count\":3}\n");
	} else if (!strcmp(mode, "writev") || !strcmp(mode, "sendmsg-iov")) {
		if (n < 1 || n > 1024)
			n = 64;
		struct iovec *iov = calloc(n, sizeof(*iov));
		char *bufs = calloc(n, 16);
		size_t total = 0;
		for (int i = 0; i < n; i++) {
			int l = snprintf(bufs + i * 16, 16, i == 0 ? "MARK-iov%d;" : "iov%d;", i);
			iov[i].iov_base = bufs + i * 16;
			iov[i].iov_len = l;
			total += l;
		}
		pair(SOCK_STREAM, sv);
		ssize_t w;
		if (!strcmp(mode, "writev")) {
			w = writev(sv[0], iov, n);
		} else {
			struct msghdr mh = { .msg_iov = iov, .msg_iovlen = n };
			w = sendmsg(sv[0], &mh, 0);
		}
		if (w < 0)
			die(mode);
		json_begin(mode, sv);
		printf(",\"payload\":\"");
		for (int i = 0; i < n; i++)
			fwrite(iov[i].iov_base, 1, iov[i].iov_len, stdout);
		printf("\",\"len\":%zd}\n", w);
		(void)total;
	} else if (!strcmp(mode, "sendmmsg")) {
		if (n < 1 || n > 64)
			n = 4;
		struct mmsghdr mm[64];
		struct iovec iov[64];
		char bufs[64][32];
		memset(mm, 0, sizeof(mm));
		for (int i = 0; i < n; i++) {
			int l = snprintf(bufs[i], sizeof(bufs[i]), "MARK-mmsg-%d", i);
			iov[i].iov_base = bufs[i];
			iov[i].iov_len = l;
			mm[i].msg_hdr.msg_iov = &iov[i];
			mm[i].msg_hdr.msg_iovlen = 1;
		}
		pair(SOCK_DGRAM, sv);
		int sent = sendmmsg(sv[0], mm, n, 0);
		if (sent < 0)
			die("sendmmsg");
		json_begin(mode, sv);
		printf(",\"payload\":\"MARK-mmsg-\",\"count\":%d}\n", sent);
	} else if (!strcmp(mode, "rights") || !strcmp(mode, "creds")) {
		const char *msg = !strcmp(mode, "rights") ? "MARK-rights" : "MARK-creds";
		struct iovec iov = { (void *)msg, strlen(msg) };
		union {
			char buf[CMSG_SPACE(sizeof(int) * 2) + CMSG_SPACE(sizeof(struct ucred))];
			struct cmsghdr align;
		} u;
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf };
		struct cmsghdr *c;
		int fds[2] = { 0, 1 };
		struct ucred cr = { getpid(), getuid(), getgid() };
		int one = 1;

		memset(&u, 0, sizeof(u));
		pair(SOCK_STREAM, sv);
		setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &one, sizeof(one));
		c = (struct cmsghdr *)u.buf;
		if (!strcmp(mode, "rights")) {
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_RIGHTS;
			c->cmsg_len = CMSG_LEN(sizeof(fds));
			memcpy(CMSG_DATA(c), fds, sizeof(fds));
			mh.msg_controllen = CMSG_SPACE(sizeof(fds));
		} else {
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_CREDENTIALS;
			c->cmsg_len = CMSG_LEN(sizeof(cr));
			memcpy(CMSG_DATA(c), &cr, sizeof(cr));
			mh.msg_controllen = CMSG_SPACE(sizeof(cr));
		}
		if (sendmsg(sv[0], &mh, 0) < 0)
			die("sendmsg");
		json_begin(mode, sv);
		printf(",\"payload\":\"%s\",\"fds\":[0,1]}\n", msg);
	} else if (!strcmp(mode, "sendfile")) {
		char path[] = "/tmp/sockgen-XXXXXX";
		int f = mkstemp(path);
		const char *msg = "MARK-sendfile-data";
		if (f < 0 || write(f, msg, strlen(msg)) < 0)
			die("tmpfile");
		lseek(f, 0, SEEK_SET);
		pair(SOCK_STREAM, sv);
		ssize_t w = sendfile(sv[0], f, NULL, strlen(msg));
		unlink(path);
		if (w < 0)
			die("sendfile");
		json_begin(mode, sv);
		printf(",\"len\":%zd}\n", w);
	} else if (!strcmp(mode, "big") && n > 0) {
		char *buf = malloc(n);
		if (!buf)
			die("malloc");
		for (int i = 0; i < n; i++)
			buf[i] = (char)((i * 131 + (i >> 12)) & 255);
		pair(SOCK_STREAM, sv);
		pid_t child = fork();
		if (child == 0) {
			close(sv[0]);
			drain(sv[1], n);
			_exit(0);
		}
		/* a blocking stream send moves all n bytes in one call while the child reads */
		ssize_t w = send(sv[0], buf, n, 0);
		if (w != n)
			die("send");
		waitpid(child, NULL, 0);
		json_begin(mode, sv);
		printf(",\"child\":%d,\"len\":%zd}\n", child, w);
	} else if (!strcmp(mode, "burst") && n > 0) {
		pair(SOCK_STREAM, sv);
		pid_t child = fork();
		if (child == 0) {
			close(sv[0]);
			drain(sv[1], (size_t)n * 17);
			_exit(0);
		}
		char msg[32];
		for (int i = 0; i < n; i++) {
			snprintf(msg, sizeof(msg), "MARK-burst-%06d", i);
			if (write(sv[0], msg, 17) != 17)
				die("write");
		}
		waitpid(child, NULL, 0);
		json_begin(mode, sv);
		printf(",\"child\":%d,\"count\":%d}\n", child, n);
	} else if (!strcmp(mode, "connect") && argc > 3) {
		struct sockaddr_un a = { .sun_family = AF_UNIX };
		int s = socket(AF_UNIX, SOCK_STREAM, 0);
		strncpy(a.sun_path, argv[2], sizeof(a.sun_path) - 1);
		if (connect(s, (struct sockaddr *)&a, sizeof(a)))
			die("connect");
		if (write(s, argv[3], strlen(argv[3])) < 0)
			die("write");
		/* then read the server's answer until it closes */
		shutdown(s, SHUT_WR);
		char buf[4096];
		size_t got = 0;
		ssize_t r;
		while ((r = read(s, buf, sizeof(buf))) > 0)
			got += r;
		printf("{\"mode\":\"connect\",\"pid\":%d,\"ino\":%lu,\"len\":%zu,\"pidns\":%lu,\"mntns\":%lu,"
		       "\"cgroup\":%lu}\n",
		       getpid(), ino(s), got, ns_ino("pid"), ns_ino("mnt"), cgroup_ino());
		close(s);
	} else {
		fprintf(stderr, "usage: sockgen MODE [ARG] (see the comment at the top of sockgen.c)\n");
		return 2;
	}
	return 0;
}

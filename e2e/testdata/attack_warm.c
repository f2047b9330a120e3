// attack_warm: a payload posing as the holder of a warm container
// (e2e/warmroot_test.go, TestAttackWarmForged). In new user and mount
// namespaces of its own (made inside the container: it owns them, and
// would hold every capability over a launch's stage that joined them), it
// binds the abstract socket name argv[1] and answers the first request
// with descriptors of those namespaces and a payload of its choice
// (/bin/echo HIJACKED), in internal/warmroot's wire format. It prints
// "ready" once it listens, "answered" once it has answered, and exits when
// the caller hangs up (or after 20 s).
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static const char body[] = "1\0\0\0\0/\0/bin/echo\0" "2\0echo\0HIJACKED\0" "0\0" "0";

int main(int argc, char **argv) {
	if (argc != 2)
		return 2;
	if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0) {
		perror("unshare");
		return 1;
	}
	int s = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un a;
	memset(&a, 0, sizeof a);
	a.sun_family = AF_UNIX;
	size_t n = strlen(argv[1]);
	if (n + 2 > sizeof a.sun_path)
		return 2;
	memcpy(a.sun_path + 1, argv[1], n);
	if (bind(s, (struct sockaddr *)&a, (socklen_t)(sizeof a.sun_family + 1 + n)) < 0 || listen(s, 8) < 0) {
		perror("bind");
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	alarm(20);
	int c = accept(s, NULL, NULL);
	if (c < 0)
		return 1;
	char buf[65536];
	(void)!read(c, buf, sizeof buf); // the request: not looked at
	int fds[2] = {open("/proc/self/ns/user", O_RDONLY), open("/proc/self/ns/mnt", O_RDONLY)};
	unsigned char hdr[8] = {'L', 'W', '1', 'Y', 0, 0, 0, 0};
	uint32_t len = sizeof body; // with the last NUL
	for (int i = 0; i < 4; i++)
		hdr[4 + i] = (unsigned char)(len >> (8 * i));
	union {
		char b[CMSG_SPACE(sizeof fds)];
		struct cmsghdr align;
	} ctl;
	memset(&ctl, 0, sizeof ctl);
	struct iovec iov = {hdr, sizeof hdr};
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b, .msg_controllen = sizeof ctl.b};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof fds);
	memcpy(CMSG_DATA(cm), fds, sizeof fds);
	if (sendmsg(c, &m, MSG_NOSIGNAL) < 0 || send(c, body, sizeof body, MSG_NOSIGNAL) < 0)
		return 1;
	printf("answered\n");
	fflush(stdout);
	while (read(c, buf, sizeof buf) > 0)
		;
	return 0;
}

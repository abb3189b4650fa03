/* raw.h: raw HTTP over a loopback socket, for the tests that must send what curl will not (two
 * Content-Length headers, a head trickled byte by byte) and see exactly what comes back (how many
 * status lines, whether the server closed the connection).
 *
 * t_raw_connect opens a blocking TCP connection to 127.0.0.1:port, optionally from another
 * loopback source address (127.0.0.2 ...), so a test can play several clients. t_raw_exchange
 * sends a request and reads until the server closes or a quiet period passes.
 */
#ifndef TABLEHUB_TEST_API_RAW_H
#define TABLEHUB_TEST_API_RAW_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static inline int64_t t_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* A connection to 127.0.0.1:port from source address `src` (NULL = any). Returns the socket or
 * -1. */
static inline int t_raw_connect(int port, const char *src)
{
	struct sockaddr_in sa;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	if (src != NULL) {
		memset(&sa, 0, sizeof(sa));
		sa.sin_family = AF_INET;
		inet_pton(AF_INET, src, &sa.sin_addr);
		if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			close(fd);
			return -1;
		}
	}
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons((uint16_t)port);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Send all of buf. Returns 0 or -1. */
static inline int t_raw_send(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Read into out (NUL-terminated, at most cap-1 bytes) until the peer closes (*closed = 1) or
 * nothing comes for quiet_ms. Returns the bytes read. */
static inline size_t t_raw_read(int fd, char *out, size_t cap, int quiet_ms, int *closed)
{
	size_t len = 0;

	*closed = 0;
	for (;;) {
		struct pollfd p = { fd, POLLIN, 0 };
		ssize_t n;
		if (poll(&p, 1, quiet_ms) <= 0)
			break;
		n = recv(fd, out + len, cap - 1 - len, 0);
		if (n <= 0) {
			*closed = 1;
			break;
		}
		len += (size_t)n;
		if (len == cap - 1)
			break;
	}
	out[len] = '\0';
	return len;
}

/* Connect, send `req`, read the answer into out as t_raw_read does. Returns the bytes read, or
 * -1 when the connection could not be made. */
static inline long t_raw_exchange(int port, const char *req, size_t len, char *out, size_t cap,
                                  int quiet_ms, int *closed)
{
	int fd = t_raw_connect(port, NULL);
	size_t n;

	if (fd < 0)
		return -1;
	(void)t_raw_send(fd, req, len);
	n = t_raw_read(fd, out, cap, quiet_ms, closed);
	close(fd);
	return (long)n;
}

/* How many times an HTTP/1.x status line starts in buf. */
static inline int t_raw_status_lines(const char *buf)
{
	int n = 0;

	for (const char *p = buf; (p = strstr(p, "HTTP/1.")) != NULL; p++)
		if (p == buf || (p >= buf + 2 && p[-2] == '\r' && p[-1] == '\n') || p[-1] == '}')
			n++;
	return n;
}

/* The status code of the first status line in buf, or -1. */
static inline int t_raw_status(const char *buf)
{
	return strncmp(buf, "HTTP/1.", 7) == 0 && strlen(buf) > 12 ? atoi(buf + 9) : -1;
}

/* The body of the first response in buf (after the blank line), or "". */
static inline const char *t_raw_body(const char *buf)
{
	const char *p = strstr(buf, "\r\n\r\n");
	return p ? p + 4 : "";
}

#endif

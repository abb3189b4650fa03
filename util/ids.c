/* ids.c: the clock, random bytes, uuids and API token secrets. Randomness comes from getrandom(),
 * which blocks only until the kernel's pool is first seeded and never returns weak bytes.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/types.h>
#include <time.h>

#include <openssl/crypto.h>

#include "tablehub/hash.h"
#include "tablehub/ids.h"

int64_t th_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void th_time_fmt(char out[32], int64_t ms)
{
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;
	char date[24];

	if (ms < 0)
		secs = 0, ms = 0;
	gmtime_r(&secs, &tm);
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, 32, "%.20s.%03dZ", date, (int)(ms % 1000));
}

int th_random_bytes(unsigned char *out, size_t n, th_error *err)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = getrandom(out + got, n - got, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return th_error_set(err, TH_ESTORE, "getrandom: %s", strerror(errno));
		}
		got += (size_t)r;
	}
	return TH_OK;
}

int th_uuid4(char out[TH_UUID_SIZE], th_error *err)
{
	unsigned char b[16];
	char hex[33];
	int error;

	if ((error = th_random_bytes(b, sizeof(b), err)) < 0)
		return error;
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	th_hex(hex, b, sizeof(b));
	snprintf(out, TH_UUID_SIZE, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16,
	         hex + 20);
	return TH_OK;
}

int th_uuid_valid(const char *s, int lower_only)
{
	for (size_t i = 0; i < 36; i++) {
		int dash = i == 8 || i == 13 || i == 18 || i == 23;
		unsigned char c = (unsigned char)s[i];
		if (dash ? c != '-'
		         : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
		             (!lower_only && c >= 'A' && c <= 'F')))
			return 0;
	}
	return s[36] == '\0';
}

int th_token_new(char out[TH_TOKEN_SIZE], th_error *err)
{
	unsigned char raw[32];
	int error;

	if ((error = th_random_bytes(raw, sizeof(raw), err)) < 0)
		return error;
	memcpy(out, TH_TOKEN_PREFIX, 4);
	th_hex(out + 4, raw, sizeof(raw));
	OPENSSL_cleanse(raw, sizeof(raw));
	return TH_OK;
}

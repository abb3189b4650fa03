/* base64.c: decoding base64 (RFC 4648, the standard alphabet), for the values clients send in
 * headers: HTTP basic auth's credentials (auth.c) and tus's Upload-Metadata and Upload-Checksum
 * (tus.c). Strict: padding optional but only at the end, no white space, no other alphabet. */
#include "api.h"

static int b64val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

long api_base64_decode(unsigned char *out, size_t size, const char *in, size_t len)
{
	size_t i, n = 0, pad = 0;
	uint32_t acc = 0;
	int bits = 0;

	while (pad < 2 && len > 0 && in[len - 1] == '=') {
		len--;
		pad++;
	}
	if ((len + pad) % 4 != 0 && pad > 0)
		return -1;
	if (len % 4 == 1)
		return -1;
	for (i = 0; i < len; i++) {
		int v = b64val((unsigned char)in[i]);
		if (v < 0)
			return -1;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (n == size)
				return -1;
			out[n++] = (unsigned char)(acc >> bits);
		}
	}
	/* The bits left over must be zero: "QQ==" is "A", "QR==" is not base64. */
	if ((acc & ((1u << bits) - 1)) != 0)
		return -1;
	return (long)n;
}

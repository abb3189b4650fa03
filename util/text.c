/* text.c: checks and conversions of text that every layer needs: UTF-8 validation (a word at a
 * time over ASCII, since CSV import runs it over every byte), hex digits, and the names of owners,
 * databases and users.
 */
#include <stdint.h>
#include <string.h>

#include "tablehub/text.h"

int th_utf8_valid(const char *str, size_t len, size_t *bad_at)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;

	while (i < len) {
		unsigned char c = s[i];
		size_t n, k;
		uint32_t cp;

		if (c < 0x80) {
			/* Skip ASCII a word at a time where aligned enough to matter. */
			while (i + 8 <= len) {
				uint64_t w;
				memcpy(&w, s + i, 8);
				if (w & 0x8080808080808080ull)
					break;
				i += 8;
			}
			while (i < len && s[i] < 0x80)
				i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			/* a continuation byte, an overlong lead (c0, c1) or beyond U+10FFFF
			 * (f5..ff) */
			goto bad;
		}
		if (len - i - 1 < n)
			goto bad; /* truncated sequence */
		for (k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				goto bad;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			goto bad; /* overlong, beyond Unicode, or a surrogate */
		i += n + 1;
	}
	return 1;
bad:
	if (bad_at)
		*bad_at = i;
	return 0;
}

size_t th_utf8_scrub(char *out, const char *s, size_t len)
{
	size_t i = 0, o = 0, bad;

	while (i < len) {
		if (th_utf8_valid(s + i, len - i, &bad)) {
			memcpy(out + o, s + i, len - i);
			return o + len - i;
		}
		memcpy(out + o, s + i, bad);
		o += bad;
		memcpy(out + o, "\xef\xbf\xbd", 3); /* U+FFFD REPLACEMENT CHARACTER */
		o += 3;
		i += bad + 1;
	}
	return o;
}

void th_scrub_paths(char *s)
{
	char *p = s;

	while ((p = strchr(p, '\'')) != NULL) {
		char *start = p + 1, *end = strchr(start, '\''), *keep, *git;
		size_t slashes = 0;

		if (end == NULL)
			return;
		for (char *q = start; q < end; q++)
			slashes += *q == '/';
		if (*start != '/' || slashes < 2) {
			p = start; /* the quote may have been an apostrophe: look on from here */
			continue;
		}
		keep = NULL;
		for (git = start; (git = strstr(git, ".git/")) != NULL && git < end; git += 5)
			keep = git + 5;
		if (keep == NULL || keep >= end)
			for (keep = end; keep > start && keep[-1] != '/';)
				keep--;
		memmove(start, keep, strlen(keep) + 1);
		p = start + (end - keep) + 1;
	}
}

int th_hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int th_is_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (th_hexval((unsigned char)s[i]) < 0)
			return 0;
	return 1;
}

int th_name_valid(const char *s)
{
	size_t i;

	if (s == NULL || s[0] == '\0' || s[0] == '-')
		return 0;
	for (i = 0; s[i]; i++) {
		char c = s[i];
		if (i >= 64)
			return 0;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

int th_split_db_name(char owner[65], char db[65], const char *s, th_error *err)
{
	const char *slash = strchr(s, '/');
	size_t olen;

	if (slash == NULL || (olen = (size_t)(slash - s)) == 0 || olen > 64 ||
	    strlen(slash + 1) > 64)
		goto bad;
	memcpy(owner, s, olen);
	owner[olen] = '\0';
	strcpy(db, slash + 1);
	if (!th_name_valid(owner) || !th_name_valid(db))
		goto bad;
	return TH_OK;
bad:
	return th_error_set(err, TH_EINVALID,
	                    "bad database name '%s': expected OWNER/DB, each 1-64 of [A-Za-z0-9_-]",
	                    s);
}

/* The registered folders; set at start, read-only after (see th_redact_add). */
static char *redacted[4];
static size_t n_redacted;

int th_redact_add(const char *dir)
{
	size_t len = dir ? strlen(dir) : 0;
	char *copy;

	while (len > 1 && dir[len - 1] == '/')
		len--;
	if (len < 2 || n_redacted == sizeof(redacted) / sizeof(redacted[0]))
		return -1;
	if ((copy = strndup(dir, len)) == NULL)
		return -1;
	redacted[n_redacted++] = copy;
	return 0;
}

static int path_before(char c)
{
	return c == '\'' || c == '"' || c == ' ' || c == '=' || c == '(' || c == ':';
}

static int path_after(char c)
{
	return c == '/' || c == '\'' || c == '"' || c == ' ' || c == ')' || c == '\0';
}

size_t th_redact(char *s, size_t size)
{
	static const char mark[] = "<data>";
	const size_t mlen = sizeof(mark) - 1;
	size_t n = 0, i, k, len, plen;

	if (s == NULL || size == 0)
		return 0;
	len = strlen(s);
	for (k = 0; k < n_redacted; k++) {
		plen = strlen(redacted[k]);
		for (i = 0; i + plen <= len; i++) {
			size_t tail;

			if ((i > 0 && !path_before(s[i - 1])) ||
			    strncmp(s + i, redacted[k], plen) != 0 || !path_after(s[i + plen]))
				continue;
			tail = len - i - plen; /* bytes after the folder, without the NUL */
			if (i + mlen + tail >= size)
				tail = size - 1 > i + mlen ? size - 1 - i - mlen : 0;
			if (i + mlen >= size) {
				s[i] = '\0';
				len = i;
				n++;
				break;
			}
			memmove(s + i + mlen, s + i + plen, tail);
			memcpy(s + i, mark, mlen);
			len = i + mlen + tail;
			s[len] = '\0';
			i += mlen - 1;
			n++;
		}
	}
	return n;
}

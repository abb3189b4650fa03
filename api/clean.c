/* clean.c: the last look at every JSON reply before it leaves (reply.c's writer calls it), so
 * that no reply is invalid JSON and none shows where the server keeps its data.
 *
 * A message may quote what a client sent (a table or branch name), and cJSON copies such bytes
 * as they are: a name with invalid UTF-8 would make the whole body invalid JSON. Such bytes are
 * replaced with U+FFFD here. JSON's own syntax is ASCII, so the replacement can only happen inside
 * strings, and the body stays well-formed.
 *
 * Errors of libraries and the OS name files by their path. The sources cut those paths where they
 * make messages (storage/), and this is the net behind them: a quoted path that starts with the
 * data directory ('/srv/data/cache/...', or the directory as given on the command line) or with
 * serve's --cache directory loses that prefix. Both checks cost one pass over the body when there
 * is nothing to change.
 */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "tablehub/sqlcache.h"
#include "tablehub/text.h"

/* Cut "'<prefix>/" to "'" everywhere in buf[0..*len) (NUL-terminated). */
static void cut_prefix(char *buf, size_t *len, const char *prefix)
{
	size_t plen = prefix ? strlen(prefix) : 0;
	char *p = buf;

	if (plen == 0 || (plen == 1 && prefix[0] == '.'))
		return;
	while ((p = strchr(p, '\'')) != NULL) {
		if (strncmp(p + 1, prefix, plen) == 0 && p[1 + plen] == '/') {
			size_t cut = plen + 1;
			memmove(p + 1, p + 1 + cut, *len - (size_t)(p + 1 + cut - buf) + 1);
			*len -= cut;
		}
		p++;
	}
}

static int has_prefix(const char *text, size_t len, const char *prefix)
{
	size_t plen = prefix ? strlen(prefix) : 0;

	for (const char *p = text; plen > 0 && (p = memchr(p, '\'', len - (size_t)(p - text))); p++)
		if ((size_t)(text + len - p) > plen + 1 && memcmp(p + 1, prefix, plen) == 0 &&
		    p[1 + plen] == '/')
			return 1;
	return 0;
}

const char *api_clean_reply(const th_req *req, const char *text, size_t *len, char **owned)
{
	const api_server *srv = req->srv;
	const char *dir = srv->cfg.data_dir, *abs = srv->data_dir_abs, *cache = th_snap_dir();
	char *out;
	size_t n;

	*owned = NULL;
	if (th_utf8_valid(text, *len, NULL) && !has_prefix(text, *len, abs) &&
	    !has_prefix(text, *len, dir) && !has_prefix(text, *len, cache))
		return text;
	if ((out = malloc(*len * 3 + 1)) == NULL)
		return text; /* out of memory: send it as it is rather than nothing */
	n = th_utf8_scrub(out, text, *len);
	out[n] = '\0';
	cut_prefix(out, &n, abs);
	cut_prefix(out, &n, dir);
	cut_prefix(out, &n, cache);
	*owned = out;
	*len = n;
	return out;
}

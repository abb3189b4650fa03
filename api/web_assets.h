/* web_assets.h: the files of the web pages, embedded at build time (api/web_embed.c writes
 * web_assets.c into the build tree from api/web/). Everything here is static data of the binary:
 * never freed, never written.
 */
#ifndef TABLEHUB_API_WEB_ASSETS_H
#define TABLEHUB_API_WEB_ASSETS_H

#include <stddef.h>

typedef struct api_web_asset {
	const char *name;         /* "main.js": the path under api/web/ */
	const char *content_type; /* "text/javascript; charset=utf-8" */
	const unsigned char *data;
	size_t len;
	const unsigned char *gz; /* the gzip copy, or NULL when it would not be smaller */
	size_t gz_len;
	const char *etag;    /* "\"<32 hex of SHA-256>\"" */
	const char *gz_etag; /* the same with "-gz" inside the quotes, for the gzip copy */
} api_web_asset;

/* Every asset, ended by an entry whose name is NULL. */
extern const api_web_asset api_web_assets[];
/* 12 hex digits naming this set of files; the shell's asset URLs are /web/<build>/<name>. */
extern const char api_web_build[];

/* web.c: the asset called `name` ("main.js"), or NULL. */
const api_web_asset *api_web_find(const char *name);
/* web.c: does an Accept-Encoding header value accept gzip (a "gzip" or "*" coding, q not 0)? */
int api_web_accepts_gzip(const char *accept_encoding);
/* web.c: does an If-None-Match header value name entity tag `a` or `b` (weak or strong), or is
 * it "*"? */
int api_web_etag_matches(const char *if_none_match, const char *a, const char *b);

#endif

/* web_embed.c: a build-time tool, not part of the `tablehub` binary. It turns the files of the
 * web pages (api/web/) into a C file of byte arrays, so the binary serves them without any file
 * installed beside it and without Node, xxd or a shell at build or run time.
 *
 *   th_web_embed OUT.c SRCDIR FILE...
 *
 * For each FILE (a path relative to SRCDIR) it writes the bytes, a gzip copy made once here at
 * level 9 (served when the client accepts gzip and the copy is smaller), and an ETag: the first 32
 * hex digits of the SHA-256 of the bytes, quoted. The build id is the first 12 hex digits of the
 * SHA-256 over every file's name and bytes; every "__BUILD__" in an .html file is replaced by it
 * before hashing and compressing, so the shell names its assets under /web/<build>/ and those URLs
 * change whenever any file does (they can then be cached for good). The output is deterministic:
 * the same inputs give the same bytes (gzip's header carries no time or name).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <zlib.h>

typedef struct blob {
	unsigned char *p;
	size_t n;
} blob;

static void die(const char *what, const char *arg)
{
	fprintf(stderr, "th_web_embed: %s%s%s\n", what, arg ? ": " : "", arg ? arg : "");
	exit(1);
}

static blob read_file(const char *dir, const char *name)
{
	char path[4096];
	blob b = { NULL, 0 };
	size_t cap = 0, r;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((f = fopen(path, "rb")) == NULL)
		die("cannot open", path);
	for (;;) {
		if (b.n + 4096 > cap) {
			cap = cap ? cap * 2 : 65536;
			if ((b.p = realloc(b.p, cap)) == NULL)
				die("out of memory", NULL);
		}
		if ((r = fread(b.p + b.n, 1, cap - b.n, f)) == 0)
			break;
		b.n += r;
	}
	if (ferror(f))
		die("cannot read", path);
	fclose(f);
	return b;
}

static void sha256(unsigned char out[32], const void *p, size_t n)
{
	unsigned int len = 32;

	if (EVP_Digest(p, n, out, &len, EVP_sha256(), NULL) != 1)
		die("sha256 failed", NULL);
}

static void hex(char *out, const unsigned char *p, size_t n)
{
	static const char d[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[p[i] >> 4];
		out[2 * i + 1] = d[p[i] & 15];
	}
	out[2 * n] = '\0';
}

static blob gzip(const blob *in)
{
	z_stream z;
	blob out;

	memset(&z, 0, sizeof(z));
	/* 15 + 16: a gzip wrapper; its header has mtime 0 and no file name. */
	if (deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY) != Z_OK)
		die("deflateInit2 failed", NULL);
	out.n = deflateBound(&z, (uLong)in->n) + 32;
	if ((out.p = malloc(out.n)) == NULL)
		die("out of memory", NULL);
	z.next_in = in->p;
	z.avail_in = (uInt)in->n;
	z.next_out = out.p;
	z.avail_out = (uInt)out.n;
	if (deflate(&z, Z_FINISH) != Z_STREAM_END)
		die("deflate failed", NULL);
	out.n = z.total_out;
	deflateEnd(&z);
	return out;
}

/* Replace every "__BUILD__" in b by `build` (12 chars; the marker is 9, so b may grow). */
static void put_build(blob *b, const char *build)
{
	static const char mark[] = "__BUILD__";
	size_t ml = sizeof(mark) - 1, bl = strlen(build), i, o = 0, count = 0;
	unsigned char *p;

	for (i = 0; i + ml <= b->n; i++)
		if (memcmp(b->p + i, mark, ml) == 0)
			count++;
	if (count == 0)
		return;
	if ((p = malloc(b->n + count * bl + 1)) == NULL)
		die("out of memory", NULL);
	for (i = 0; i < b->n;) {
		if (i + ml <= b->n && memcmp(b->p + i, mark, ml) == 0) {
			memcpy(p + o, build, bl);
			o += bl;
			i += ml;
		} else {
			p[o++] = b->p[i++];
		}
	}
	free(b->p);
	b->p = p;
	b->n = o;
}

static void write_bytes(FILE *f, const char *name, const blob *b)
{
	fprintf(f, "static const unsigned char %s[%zu] = {", name, b->n ? b->n : 1);
	for (size_t i = 0; i < b->n; i++)
		fprintf(f, "%s%u,", i % 24 == 0 ? "\n\t" : "", b->p[i]);
	if (b->n == 0)
		fputs("0", f);
	fputs("\n};\n", f);
}

static const char *content_type(const char *name)
{
	const char *dot = strrchr(name, '.');

	if (dot == NULL)
		return "application/octet-stream";
	if (strcmp(dot, ".html") == 0)
		return "text/html; charset=utf-8";
	if (strcmp(dot, ".css") == 0)
		return "text/css; charset=utf-8";
	if (strcmp(dot, ".js") == 0 || strcmp(dot, ".mjs") == 0)
		return "text/javascript; charset=utf-8";
	if (strcmp(dot, ".svg") == 0)
		return "image/svg+xml";
	if (strcmp(dot, ".png") == 0)
		return "image/png";
	if (strcmp(dot, ".json") == 0)
		return "application/json";
	if (strcmp(dot, ".txt") == 0)
		return "text/plain; charset=utf-8";
	return "application/octet-stream";
}

static int is_html(const char *name)
{
	size_t n = strlen(name);

	return n > 5 && strcmp(name + n - 5, ".html") == 0;
}

int main(int argc, char **argv)
{
	unsigned char digest[32];
	char build[65], etag[65], var[32];
	EVP_MD_CTX *all;
	blob *files, *gzs;
	int nfiles = argc - 3, i;
	FILE *out;

	if (argc < 4)
		die("usage: th_web_embed OUT.c SRCDIR FILE...", NULL);
	if ((files = calloc((size_t)nfiles, sizeof(*files))) == NULL ||
	    (gzs = calloc((size_t)nfiles, sizeof(*gzs))) == NULL ||
	    (all = EVP_MD_CTX_new()) == NULL || EVP_DigestInit_ex(all, EVP_sha256(), NULL) != 1)
		die("out of memory", NULL);
	for (i = 0; i < nfiles; i++) {
		const char *name = argv[3 + i];
		if (strchr(name, '"') || strchr(name, '\\') || strstr(name, ".."))
			die("bad file name", name);
		files[i] = read_file(argv[2], name);
		EVP_DigestUpdate(all, name, strlen(name) + 1);
		EVP_DigestUpdate(all, files[i].p, files[i].n);
	}
	EVP_DigestFinal_ex(all, digest, NULL);
	EVP_MD_CTX_free(all);
	hex(build, digest, 6);

	if ((out = fopen(argv[1], "w")) == NULL)
		die("cannot write", argv[1]);
	fprintf(out,
	        "/* Generated by th_web_embed from api/web/: do not edit. */\n"
	        "#include \"web_assets.h\"\n\n"
	        "const char api_web_build[] = \"%s\";\n\n",
	        build);
	for (i = 0; i < nfiles; i++) {
		if (is_html(argv[3 + i]))
			put_build(&files[i], build);
		gzs[i] = gzip(&files[i]);
		snprintf(var, sizeof(var), "f%d", i);
		write_bytes(out, var, &files[i]);
		/* A gzip copy no smaller than the bytes is not worth sending (nor writing). */
		if (gzs[i].n < files[i].n) {
			snprintf(var, sizeof(var), "g%d", i);
			write_bytes(out, var, &gzs[i]);
		}
	}
	fputs("\nconst api_web_asset api_web_assets[] = {\n", out);
	for (i = 0; i < nfiles; i++) {
		int has_gz = gzs[i].n < files[i].n;
		sha256(digest, files[i].p, files[i].n);
		hex(etag, digest, 16);
		if (has_gz)
			snprintf(var, sizeof(var), "g%d", i);
		else
			snprintf(var, sizeof(var), "NULL");
		fprintf(out,
		        "\t{ \"%s\", \"%s\", f%d, %zu, %s, %zu, \"\\\"%s\\\"\", \"\\\"%s-gz\\\"\" "
		        "},\n",
		        argv[3 + i], content_type(argv[3 + i]), i, files[i].n, var,
		        has_gz ? gzs[i].n : (size_t)0, etag, etag);
		free(gzs[i].p);
	}
	fputs("\t{ NULL, NULL, NULL, 0, NULL, 0, NULL, NULL }\n};\n", out);
	for (i = 0; i < nfiles; i++)
		free(files[i].p);
	free(files);
	free(gzs);
	if (fclose(out) != 0)
		die("cannot write", argv[1]);
	return 0;
}

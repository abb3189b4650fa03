/* repo_rollup.c: the roll-up repack (th_repo_gc with TH_REPO_GC_ROLLUP, include/tablehub/
 * repo_maint.h) done here rather than by `git repack --geometric=2 -d`.
 *
 * Every import writes a pack of its own, so a busy database reaches the pack threshold every few
 * dozen imports. git took about 20 processes (repack, pack-objects, index-pack and friends) and
 * tens of milliseconds of CPU to join a score of small packs, a fifth of the server's CPU under a
 * stream of small uploads. Here the same roll-up is a file copy:
 *
 * - The packs are listed with their object counts (from each .idx's fan-out) and ordered by size;
 *   as git's --geometric=2 does, the packs that already form a progression (each at least twice
 *   the one below) from the top stay as they are, and all below the split join one pack, the split
 *   moving up while the joined pack would reach half of the next. A pack with a .keep stays.
 * - Each joining pack's object bytes are copied verbatim into the new pack (th_pack__copy: deltas
 *   stay deltas, since a delta names its base by its distance, which a verbatim copy keeps), each
 *   object checked against the CRC its .idx records, the .idx itself against its checksum. A pack
 *   holding an object already copied (two imports wrote the same blob at once) is instead read
 *   object by object and written anew, skipping what is there.
 * - Loose objects are read and written into the same pack.
 * - th_pack__commit fsyncs and renames the new pack in; only then are the joined packs (.idx
 *   first, so no reader finds an index without its pack) and the packed loose objects deleted,
 *   and the fan-out directories left empty.
 *
 * Like git's, a roll-up deletes nothing that is not in the new pack, so it runs beside imports
 * (the writer lock shared): a pack or loose object written meanwhile was not listed, and stays.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "repo_internal.h"
#include "tablehub/buf.h"
#include "tablehub/hash.h"
#include "tablehub/repo_maint.h"
#include "tablehub/text.h"

#define IDX_HEAD (8 + 256 * 4)

struct src_pack {
	char hex[41];
	uint32_t nobj;
};

struct rollup {
	const char *path; /* the repository */
	th_buf file;      /* scratch: a file's path */
	struct src_pack *packs;
	size_t npacks, cap;
	unsigned char *loose; /* 20 bytes per loose object */
	size_t nloose, loose_cap;
};

static uint32_t get32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* r->file = <repo>/objects/pack/pack-<hex><ext>. */
static int pack_file(struct rollup *r, const char *hex, const char *ext, th_error *err)
{
	th_buf_clear(&r->file);
	return th_buf_printf(&r->file, err, "%s/objects/pack/pack-%s%s", r->path, hex, ext);
}

static int file_exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

/* Read a whole small file (a pack index) into *out (malloc'd), its size in *len. */
static int read_file(unsigned char **out, size_t *len, const char *path, const char *name,
                     th_error *err)
{
	unsigned char *buf = NULL;
	struct stat st;
	size_t at = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &st) < 0)
		goto fail;
	if ((buf = malloc(st.st_size > 0 ? (size_t)st.st_size : 1)) == NULL) {
		close(fd);
		return th_error_set(err, TH_ENOMEM, "out of memory");
	}
	while (at < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + at, (size_t)st.st_size - at);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			goto fail;
		}
		at += (size_t)n;
	}
	close(fd);
	*out = buf;
	*len = at;
	return TH_OK;
fail:
	if (fd >= 0)
		close(fd);
	free(buf);
	return th_error_set(err, TH_ESTORE, "cannot read %s: %s", name, strerror(errno));
}

/* List the repository's packs that may join (an .idx, its .pack, no .keep) with their object
 * counts. A pack whose index cannot be read is left out: git decides about it at the next gc. */
static int list_packs(struct rollup *r, th_error *err)
{
	th_buf dir = TH_BUF_INIT;
	struct dirent *e;
	DIR *d;
	int error;

	if ((error = th_buf_printf(&dir, err, "%s/objects/pack", r->path)) < 0)
		return error;
	if ((d = opendir(dir.ptr)) == NULL) {
		error = errno == ENOENT ? TH_OK
		                        : th_error_set(err, TH_ESTORE, "cannot list the packs: %s",
		                                       strerror(errno));
		th_buf_dispose(&dir);
		return error;
	}
	while ((e = readdir(d)) != NULL) {
		unsigned char head[IDX_HEAD];
		struct src_pack *p;
		ssize_t got;
		int fd;

		if (strlen(e->d_name) != 49 || strncmp(e->d_name, "pack-", 5) != 0 ||
		    strcmp(e->d_name + 45, ".idx") != 0 || !th_is_hex(e->d_name + 5, 40))
			continue;
		if (r->npacks == r->cap) {
			size_t ncap = r->cap ? r->cap * 2 : 32;
			void *np = realloc(r->packs, ncap * sizeof(*r->packs));
			if (np == NULL) {
				error = th_error_set(err, TH_ENOMEM, "out of memory");
				break;
			}
			r->packs = np;
			r->cap = ncap;
		}
		p = &r->packs[r->npacks];
		memcpy(p->hex, e->d_name + 5, 40);
		p->hex[40] = '\0';
		if ((error = pack_file(r, p->hex, ".keep", err)) < 0)
			break;
		if (file_exists(r->file.ptr))
			continue;
		if ((error = pack_file(r, p->hex, ".pack", err)) < 0)
			break;
		if (!file_exists(r->file.ptr))
			continue;
		if ((error = pack_file(r, p->hex, ".idx", err)) < 0)
			break;
		if ((fd = open(r->file.ptr, O_RDONLY | O_CLOEXEC)) < 0)
			continue;
		got = pread(fd, head, sizeof(head), 0);
		close(fd);
		if (got != (ssize_t)sizeof(head) || memcmp(head, "\377tOc\0\0\0\2", 8) != 0)
			continue;
		p->nobj = get32(head + IDX_HEAD - 4);
		r->npacks++;
	}
	closedir(d);
	th_buf_dispose(&dir);
	return error;
}

/* Record one loose object's id (th_repo_loose_foreach). */
static int add_loose(void *payload, const char *fan, const char *rest, th_error *err)
{
	struct rollup *r = payload;
	unsigned char *o;

	if (r->nloose == r->loose_cap) {
		size_t ncap = r->loose_cap ? r->loose_cap * 2 : 64;
		void *nl = realloc(r->loose, ncap * 20);
		if (nl == NULL)
			return th_error_set(err, TH_ENOMEM, "out of memory");
		r->loose = nl;
		r->loose_cap = ncap;
	}
	o = r->loose + r->nloose * 20;
	o[0] = (unsigned char)(th_hexval(fan[0]) << 4 | th_hexval(fan[1]));
	for (int k = 0; k < 19; k++)
		o[k + 1] =
		        (unsigned char)(th_hexval(rest[2 * k]) << 4 | th_hexval(rest[2 * k + 1]));
	r->nloose++;
	return TH_OK;
}

static int by_size(const void *a, const void *b)
{
	uint32_t x = ((const struct src_pack *)a)->nobj, y = ((const struct src_pack *)b)->nobj;

	return x < y ? -1 : x > y;
}

/* Order r->packs by size and return how many of the smallest join (git's --geometric=2 split). */
static size_t geometric_split(struct rollup *r)
{
	size_t i, split;
	uint64_t total = 0;

	if (r->npacks < 2)
		return 0;
	qsort(r->packs, r->npacks, sizeof(*r->packs), by_size);
	/* From the top down, the first pack not at least twice the one below it: it and all below
	 * it join; none when the packs form a progression already. */
	for (i = r->npacks - 1; i > 0; i--)
		if ((uint64_t)r->packs[i].nobj < 2 * (uint64_t)r->packs[i - 1].nobj)
			break;
	split = i > 0 ? i + 1 : 0;
	for (i = 0; i < split; i++)
		total += r->packs[i].nobj;
	/* The joined pack must stay under half of the next one, or that one joins too. */
	while (split < r->npacks && (uint64_t)r->packs[split].nobj < 2 * total)
		total += r->packs[split++].nobj;
	return split;
}

static int by_offset(const void *a, const void *b)
{
	uint64_t x = ((const th_pack_entry *)a)->offset, y = ((const th_pack_entry *)b)->offset;

	return x < y ? -1 : x > y;
}

/* Parse and check a version 2 pack index: its entries into *out (malloc'd, n of them, sorted by
 * offset) and the checksum of its pack into pack_sum. */
static int parse_idx(th_pack_entry **out, size_t *n_out, unsigned char pack_sum[20],
                     const unsigned char *idx, size_t len, const char *name, th_error *err)
{
	const unsigned char *oids, *crcs, *offs, *large;
	unsigned char sum[20];
	size_t n, nlarge = 0, i;
	th_pack_entry *e;
	th_sha1 *sha;

	if (len < IDX_HEAD + 40 || memcmp(idx, "\377tOc\0\0\0\2", 8) != 0)
		goto bad;
	n = get32(idx + IDX_HEAD - 4);
	if ((len - IDX_HEAD - 40) / 28 < n)
		goto bad;
	oids = idx + IDX_HEAD;
	crcs = oids + 20 * n;
	offs = crcs + 4 * n;
	large = offs + 4 * n;
	for (i = 0; i < n; i++)
		nlarge += (get32(offs + 4 * i) & 0x80000000u) != 0;
	if (len != IDX_HEAD + 28 * n + 8 * nlarge + 40)
		goto bad;
	if ((sha = th_sha1_new()) == NULL)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	th_sha1_update(sha, idx, len - 20);
	th_sha1_final(sha, sum);
	th_sha1_free(sha);
	if (memcmp(sum, idx + len - 20, 20) != 0)
		goto bad;
	if ((e = malloc((n ? n : 1) * sizeof(*e))) == NULL)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	for (i = 0; i < n; i++) {
		uint32_t o = get32(offs + 4 * i);

		memcpy(e[i].oid, oids + 20 * i, 20);
		e[i].crc = get32(crcs + 4 * i);
		if (o & 0x80000000u) {
			size_t k = o & 0x7fffffffu;
			if (k >= nlarge) {
				free(e);
				goto bad;
			}
			e[i].offset =
			        (uint64_t)get32(large + 8 * k) << 32 | get32(large + 8 * k + 4);
		} else {
			e[i].offset = o;
		}
	}
	qsort(e, n, sizeof(*e), by_offset);
	memcpy(pack_sum, idx + len - 40, 20);
	*out = e;
	*n_out = n;
	return TH_OK;
bad:
	return th_error_set(err, TH_ESTORE, "the index of pack-%s is corrupt", name);
}

/* Write object `oid` (read through the repository) into the pack, unless it is there already. */
static int add_read(th_pack *pk, th_repo *repo, const unsigned char oid[20], th_error *err)
{
	git_odb_object *obj;
	int error;

	if ((error = git_odb_read(&obj, repo->odb, (const git_oid *)(const void *)oid)) < 0)
		return th_repo__git_error(err, error, "cannot read an object to repack");
	error = th_pack__add_object(pk, (int)git_odb_object_type(obj), oid,
	                            git_odb_object_data(obj), git_odb_object_size(obj), err);
	git_odb_object_free(obj);
	return error;
}

/* Add the objects of pack `hex` to pk: copied verbatim, or one by one when one of them is in pk
 * already. */
static int join_pack(th_pack *pk, th_repo *repo, struct rollup *r, const char *hex, th_error *err)
{
	unsigned char *idx = NULL, sum[20], trailer[20], head[12];
	th_pack_entry *e = NULL;
	size_t idx_len = 0, n = 0;
	struct stat st;
	int fd = -1, error;

	if ((error = pack_file(r, hex, ".idx", err)) < 0 ||
	    (error = read_file(&idx, &idx_len, r->file.ptr, "a pack index", err)) < 0 ||
	    (error = parse_idx(&e, &n, sum, idx, idx_len, hex, err)) < 0 ||
	    (error = pack_file(r, hex, ".pack", err)) < 0)
		goto cleanup;
	if ((fd = open(r->file.ptr, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &st) < 0) {
		error = th_error_set(err, TH_ESTORE, "cannot read pack-%s: %s", hex,
		                     strerror(errno));
		goto cleanup;
	}
	/* The pack is the one its index describes: its object count and its trailing checksum. */
	if (st.st_size < 32 || pread(fd, head, 12, 0) != 12 ||
	    pread(fd, trailer, 20, st.st_size - 20) != 20 || memcmp(head, "PACK", 4) != 0 ||
	    get32(head + 8) != n || memcmp(trailer, sum, 20) != 0) {
		error = th_error_set(err, TH_ESTORE, "pack-%s does not match its index", hex);
		goto cleanup;
	}
	if (n == 0)
		goto cleanup;
	error = th_pack__copy(pk, fd, e, n, (uint64_t)st.st_size - 20, err);
	if (error == TH_EEXISTS) {
		error = TH_OK;
		for (size_t i = 0; i < n && error == TH_OK; i++)
			error = add_read(pk, repo, e[i].oid, err);
	}
cleanup:
	if (fd >= 0)
		close(fd);
	free(idx);
	free(e);
	return error;
}

/* Delete what the new pack `kept` now holds: the joined packs (but `kept` itself, should a pack
 * have been rewritten to the same name) and the loose objects. Failures only leave a duplicate. */
static void delete_joined(struct rollup *r, size_t njoin, const char *kept)
{
	static const char *const exts[] = { ".idx",      ".pack",   ".rev", ".bitmap",
		                            ".promisor", ".mtimes", NULL };
	th_error ignore = { 0 };

	for (size_t i = 0; i < njoin; i++) {
		if (strcmp(r->packs[i].hex, kept) == 0)
			continue;
		for (size_t k = 0; exts[k] != NULL; k++)
			if (pack_file(r, r->packs[i].hex, exts[k], &ignore) == TH_OK)
				(void)unlink(r->file.ptr);
	}
	for (size_t i = 0; i < r->nloose; i++) {
		char hex[41];

		th_hex(hex, r->loose + 20 * i, 20);
		th_buf_clear(&r->file);
		if (th_buf_printf(&r->file, &ignore, "%s/objects/%.2s/%s", r->path, hex, hex + 2) !=
		    TH_OK)
			continue;
		(void)unlink(r->file.ptr);
		/* An emptied fan-out directory goes too (as git prune-packed does): fewer to list.
		 */
		r->file.ptr[r->file.size - 39] = '\0';
		(void)rmdir(r->file.ptr);
	}
	th_error_clear(&ignore);
}

int th_repo_rollup(const char *path, th_repo_stop_fn stop, void *payload, th_error *err)
{
	struct rollup r = { path, TH_BUF_INIT, NULL, 0, 0, NULL, 0, 0 };
	char name[41] = "";
	th_repo *repo = NULL;
	th_pack *pk = NULL;
	size_t njoin = 0;
	int error;

	if ((error = list_packs(&r, err)) < 0 ||
	    (error = th_repo_loose_foreach(path, add_loose, &r, err)) < 0)
		goto cleanup;
	njoin = geometric_split(&r);
	if (njoin < 2 && r.nloose == 0)
		goto cleanup; /* nothing to join */
	if ((error = th_repo_open(&repo, path, 0, err)) < 0 ||
	    (error = th_pack_new(&pk, repo, 1, err)) < 0)
		goto cleanup;
	for (size_t i = 0; i < njoin; i++)
		if ((stop != NULL && (error = stop(payload, err)) < 0) ||
		    (error = join_pack(pk, repo, &r, r.packs[i].hex, err)) < 0)
			goto cleanup;
	for (size_t i = 0; i < r.nloose; i++)
		if ((error = add_read(pk, repo, r.loose + 20 * i, err)) < 0)
			goto cleanup;
	error = th_pack__commit(pk, name, err);
	pk = NULL;
	if (error == TH_OK)
		delete_joined(&r, njoin, name);
cleanup:
	th_pack_free(pk);
	th_repo_free(repo);
	th_buf_dispose(&r.file);
	free(r.packs);
	free(r.loose);
	return error;
}

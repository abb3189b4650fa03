/* pack.c: writing many blobs (or a batch's objects, repo_batch.c) into one git packfile, without
 * libgit2's packbuilder or indexer.
 *
 * A large import makes a few thousand chunk blobs of ~64 KiB. As loose objects each one costs a
 * file, a rename and (with fsync on) a flush to disk; through git_packbuilder they are buffered,
 * delta-searched and hashed again; through git_odb_write_pack the indexer re-inflates and re-hashes
 * every object. Here each blob is hashed once (its object id), deflated once straight into a 1 MiB
 * write buffer, and its offset and CRC32 are remembered; th_pack_commit then patches the object
 * count into the header, hashes the file once for the trailer, writes the version 2 .idx from the
 * remembered entries, fsyncs both at once, and renames them into place, .pack first and .idx last
 * (git and libgit2 only see a pack through its .idx, so a crash in between leaves an unused file,
 * never a broken pack). No deltas: chunks of different tables rarely share bytes, and a later
 * repack can add them.
 *
 * Format (git's Documentation/gitformat-pack.txt): "PACK", version 2, object count, all big-endian;
 * each object a header byte (type in bits 6-4, size bits 3-0, bit 7 = more) plus 7-bit size groups,
 * then the zlib stream; a SHA-1 of everything before it as trailer. The .idx: "\377tOc", version 2,
 * a 256-entry fan-out of cumulative counts, sorted ids, CRC32s, 31-bit offsets (bit 31 set = index
 * into a table of 64-bit offsets), the pack's checksum and the index's own.
 */
#define ZLIB_CONST
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "repo_internal.h"
#include "tablehub/dirsync.h"
#include "tablehub/hash.h"
#include "tablehub/text.h"

#define WBUF_SIZE (1u << 20)
#define QUEUE_BYTES (4u << 20) /* data waiting for the writer thread, at most */
#define QUEUE_JOBS 1024
#define DEFLATE_CHUNK (1u << 30)
#define OBJ_BLOB 3

struct th_pack {
	th_repo *repo;
	char *dir;      /* objects/pack, no trailing slash */
	char *tmp_path; /* objects/pack/tmp_pack_XXXXXX while the pack is open */
	int fd;
	int broken;    /* a write failed half-way: only th_pack_free is left */
	int refreshed; /* the object database was refreshed before the first blob was looked for */
	z_stream zs;
	int zs_ready;
	th_sha1 *sha;
	unsigned char *wbuf;
	size_t wlen;
	uint64_t off; /* bytes written to the file plus bytes waiting in wbuf */
	th_pack_entry *entries;
	size_t n, cap;
	uint32_t *slots; /* open addressing over entries: index + 1, 0 = empty */
	size_t nslots;   /* a power of two, kept at least twice n */

	/* The writer thread (th_pack_async): the adding thread hashes, records the entry's id and
	 * queues a copy of the data; the writer deflates and writes it and fills in the entry's
	 * offset and CRC. The writer owns fd, zs, wbuf, wlen and off while it runs; `mu` guards the
	 * queue, `werr` and the entries array while the adder grows it. */
	int async, mu_ready;
	pthread_t writer;
	pthread_mutex_t mu;
	pthread_cond_t work, room;
	struct qjob {
		size_t idx;
		int type;
		unsigned char *data;
		size_t len;
	} q[QUEUE_JOBS];
	size_t qhead, qlen, qbytes;
	int stop;
	int failed; /* the writer failed: werr says how; set under mu */
	th_error werr;
};

static void put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

/* The last part of a path: what a message may name (never the server's directories). */
static const char *basename_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

/* err for errno failing to `what` the file at `path` (TH_ENOSPC for a full disk), which is
 * named by its place in the repository, never by the server's path. Returns the code. */
static int sys_error(th_error *err, const char *what, const char *path)
{
	int code = th_error_os(err, errno, what, path);

	if (err != NULL)
		th_scrub_paths(err->msg);
	return code;
}

static int write_all(int fd, const unsigned char *p, size_t len)
{
	while (len) {
		ssize_t w = write(fd, p, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

static int pwrite_all(int fd, const unsigned char *p, size_t len, off_t at)
{
	while (len) {
		ssize_t w = pwrite(fd, p, len, at);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		at += w;
		len -= (size_t)w;
	}
	return 0;
}

static int flush(th_pack *pk, th_error *err)
{
	if (pk->wlen == 0)
		return TH_OK;
	if (write_all(pk->fd, pk->wbuf, pk->wlen) < 0) {
		pk->broken = 1;
		return sys_error(err, "write pack", pk->tmp_path);
	}
	pk->wlen = 0;
	return TH_OK;
}

/* --- the set of ids in this pack ------------------------------------------------------------- */

static size_t slot_of(const unsigned char *oid, size_t nslots)
{
	uint64_t h;

	memcpy(&h, oid, sizeof(h)); /* ids are uniformly distributed already */
	return (size_t)(h & (nslots - 1));
}

static const th_pack_entry *set_find(const th_pack *pk, const unsigned char *oid)
{
	size_t i;

	if (pk->nslots == 0)
		return NULL;
	for (i = slot_of(oid, pk->nslots); pk->slots[i]; i = (i + 1) & (pk->nslots - 1)) {
		const th_pack_entry *e = &pk->entries[pk->slots[i] - 1];

		if (memcmp(e->oid, oid, 20) == 0)
			return e;
	}
	return NULL;
}

static void set_put(th_pack *pk, size_t idx)
{
	size_t i = slot_of(pk->entries[idx].oid, pk->nslots);

	while (pk->slots[i])
		i = (i + 1) & (pk->nslots - 1);
	pk->slots[i] = (uint32_t)(idx + 1);
}

/* Room for one more entry in the array and the set. */
static int reserve(th_pack *pk, th_error *err)
{
	if (pk->n >= UINT32_MAX - 1)
		return th_error_set(err, TH_ESTORE, "pack '%s' is full", basename_of(pk->tmp_path));
	if (pk->n + 1 > pk->cap) {
		size_t ncap = pk->cap ? pk->cap * 2 : 1024;
		th_pack_entry *ne;

		if (pk->async) /* the writer fills in entries under the mutex */
			pthread_mutex_lock(&pk->mu);
		ne = realloc(pk->entries, ncap * sizeof(*ne));
		if (ne != NULL) {
			pk->entries = ne;
			pk->cap = ncap;
		}
		if (pk->async)
			pthread_mutex_unlock(&pk->mu);
		if (ne == NULL)
			return th_error_set(err, TH_ENOMEM, "out of memory");
	}
	if ((pk->n + 1) * 2 > pk->nslots) {
		size_t nslots = pk->nslots ? pk->nslots * 2 : 4096, i;
		uint32_t *ns = calloc(nslots, sizeof(*ns));

		if (ns == NULL)
			return th_error_set(err, TH_ENOMEM, "out of memory");
		free(pk->slots);
		pk->slots = ns;
		pk->nslots = nslots;
		for (i = 0; i < pk->n; i++)
			set_put(pk, i);
	}
	return TH_OK;
}

/* --- writing --------------------------------------------------------------------------------- */

int th_pack_new(th_pack **out, th_repo *repo, int zlevel, th_error *err)
{
	static const unsigned char header[12] = { 'P', 'A', 'C', 'K', 0, 0, 0, 2, 0, 0, 0, 0 };
	const char *gitdir = git_repository_path(repo->git);
	th_pack *pk;
	size_t n;
	int error;

	if (zlevel < 0 || zlevel > 9)
		zlevel = Z_DEFAULT_COMPRESSION;
	if ((pk = calloc(1, sizeof(*pk))) == NULL)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	pk->fd = -1;
	pk->repo = repo;
	n = strlen(gitdir) + 32;
	if ((pk->dir = malloc(n)) == NULL || (pk->tmp_path = malloc(n)) == NULL ||
	    (pk->wbuf = malloc(WBUF_SIZE)) == NULL || (pk->sha = th_sha1_new()) == NULL) {
		error = th_error_set(err, TH_ENOMEM, "out of memory");
		goto fail;
	}
	/* git_repository_path ends with a slash. */
	snprintf(pk->dir, n, "%sobjects/pack", gitdir);
	snprintf(pk->tmp_path, n, "%s/tmp_pack_XXXXXX", pk->dir);
	if (mkdir(pk->dir, 0777) < 0 && errno != EEXIST) {
		error = sys_error(err, "create", pk->dir);
		goto fail;
	}
	if ((pk->fd = mkstemp(pk->tmp_path)) < 0) {
		error = sys_error(err, "create", pk->tmp_path);
		goto fail;
	}
	if (deflateInit(&pk->zs, zlevel) != Z_OK) {
		error = th_error_set(err, TH_ENOMEM, "cannot initialise zlib");
		goto fail;
	}
	pk->zs_ready = 1;
	memcpy(pk->wbuf, header, sizeof(header));
	pk->wlen = pk->off = sizeof(header);
	*out = pk;
	return TH_OK;

fail:
	th_pack_free(pk);
	return error;
}

/* Deflate len bytes of data into the write buffer, flushing it as it fills; crc covers what was
 * produced. */
static int deflate_into(th_pack *pk, const unsigned char *data, size_t len, uLong *crc,
                        th_error *err)
{
	z_stream *zs = &pk->zs;
	size_t left = len;
	int zrc, error;

	if (deflateReset(zs) != Z_OK)
		return th_error_set(err, TH_ESTORE, "deflate failed");
	zs->next_in = data;
	for (;;) {
		size_t room, made;
		uInt give = left > DEFLATE_CHUNK ? DEFLATE_CHUNK : (uInt)left;

		if (pk->wlen == WBUF_SIZE && (error = flush(pk, err)) < 0)
			return error;
		room = WBUF_SIZE - pk->wlen;
		zs->avail_in = give;
		zs->next_out = pk->wbuf + pk->wlen;
		zs->avail_out = (uInt)room;
		zrc = deflate(zs, left == give ? Z_FINISH : Z_NO_FLUSH);
		if (zrc != Z_OK && zrc != Z_STREAM_END && zrc != Z_BUF_ERROR) {
			pk->broken = 1;
			return th_error_set(err, TH_ESTORE, "deflate failed (%d)", zrc);
		}
		made = room - zs->avail_out;
		*crc = crc32(*crc, pk->wbuf + pk->wlen, (uInt)made);
		pk->wlen += made;
		pk->off += made;
		left -= give - zs->avail_in;
		if (zrc == Z_STREAM_END)
			return TH_OK;
	}
}

/* Write the object of entry `idx` (git type `type`) into the pack: its header and its deflated
 * data at the current offset, then the entry's offset and CRC. Runs on the adding thread, or on the
 * writer thread when async. */
static int write_object(th_pack *pk, size_t idx, int type, const void *data, size_t len,
                        th_error *err)
{
	unsigned char hdr[32];
	size_t hlen, size;
	uint64_t offset;
	uLong crc;
	int error;

	/* Object header: type and the low 4 bits of the size, then 7 bits a byte. */
	size = len;
	hlen = 0;
	hdr[hlen] = (unsigned char)((type << 4) | (int)(size & 15));
	size >>= 4;
	while (size) {
		hdr[hlen++] |= 0x80;
		hdr[hlen] = (unsigned char)(size & 0x7f);
		size >>= 7;
	}
	hlen++;
	if (WBUF_SIZE - pk->wlen < hlen && (error = flush(pk, err)) < 0)
		return error;
	offset = pk->off;
	memcpy(pk->wbuf + pk->wlen, hdr, hlen);
	pk->wlen += hlen;
	pk->off += hlen;
	crc = crc32(0L, hdr, (uInt)hlen);
	if ((error = deflate_into(pk, data, len, &crc, err)) < 0) {
		pk->broken = 1;
		return error;
	}
	if (pk->async)
		pthread_mutex_lock(&pk->mu);
	pk->entries[idx].offset = offset;
	pk->entries[idx].crc = (uint32_t)crc;
	if (pk->async)
		pthread_mutex_unlock(&pk->mu);
	return TH_OK;
}

/* The writer thread: writes queued objects in order until told to stop with the queue empty. A
 * failure is kept in werr for the adding thread; later jobs are dropped. */
static void *writer_main(void *arg)
{
	th_pack *pk = arg;

	pthread_mutex_lock(&pk->mu);
	for (;;) {
		struct qjob j;
		th_error e;
		int rc = TH_OK, skip;

		while (pk->qlen == 0 && !pk->stop)
			pthread_cond_wait(&pk->work, &pk->mu);
		if (pk->qlen == 0)
			break;
		j = pk->q[pk->qhead];
		skip = pk->failed;
		pthread_mutex_unlock(&pk->mu);
		th_error_clear(&e);
		if (!skip)
			rc = write_object(pk, j.idx, j.type, j.data, j.len, &e);
		free(j.data);
		pthread_mutex_lock(&pk->mu);
		if (rc < 0 && !pk->failed) {
			pk->failed = 1;
			pk->werr = e;
		}
		pk->qhead = (pk->qhead + 1) % QUEUE_JOBS;
		pk->qlen--;
		pk->qbytes -= j.len;
		pthread_cond_signal(&pk->room);
	}
	pthread_mutex_unlock(&pk->mu);
	return NULL;
}

/* Stop the writer after it wrote what is queued. Returns TH_OK, or its failure. */
static int writer_stop(th_pack *pk, th_error *err)
{
	if (!pk->async)
		return TH_OK;
	pthread_mutex_lock(&pk->mu);
	pk->stop = 1;
	pthread_cond_signal(&pk->work);
	pthread_mutex_unlock(&pk->mu);
	pthread_join(pk->writer, NULL);
	pk->async = 0;
	if (pk->failed) {
		pk->broken = 1;
		if (err)
			*err = pk->werr;
		return pk->werr.code ? pk->werr.code : TH_ESTORE;
	}
	return TH_OK;
}

int th_pack_async(th_pack *pk, th_error *err)
{
	int rc;

	if (pk->async)
		return TH_OK;
	pthread_mutex_init(&pk->mu, NULL);
	pthread_cond_init(&pk->work, NULL);
	pthread_cond_init(&pk->room, NULL);
	pk->mu_ready = 1;
	pk->async = 1;
	if ((rc = pthread_create(&pk->writer, NULL, writer_main, pk)) != 0) {
		pk->async = 0;
		return th_error_set(err, TH_ESTORE, "cannot start the pack writer: %s",
		                    strerror(rc));
	}
	return TH_OK;
}

/* Add object `oid` of git type `type` to the pack (the caller knows it is not there yet): written
 * now, or queued for the writer thread with a copy of the data. */
static int add_new(th_pack *pk, int type, const unsigned char oid[20], const void *data, size_t len,
                   th_error *err)
{
	size_t idx;
	int error;

	if ((error = reserve(pk, err)) < 0)
		return error;
	idx = pk->n;
	memcpy(pk->entries[idx].oid, oid, 20);
	if (!pk->async) {
		if ((error = write_object(pk, idx, type, data, len, err)) < 0)
			return error;
	} else {
		unsigned char *copy = malloc(len ? len : 1);

		if (copy == NULL)
			return th_error_set(err, TH_ENOMEM, "out of memory");
		memcpy(copy, data, len);
		pthread_mutex_lock(&pk->mu);
		while (!pk->failed &&
		       (pk->qlen == QUEUE_JOBS || (pk->qlen > 0 && pk->qbytes + len > QUEUE_BYTES)))
			pthread_cond_wait(&pk->room, &pk->mu);
		if (pk->failed) {
			pthread_mutex_unlock(&pk->mu);
			free(copy);
			return writer_stop(pk, err);
		}
		pk->q[(pk->qhead + pk->qlen) % QUEUE_JOBS] = (struct qjob){ idx, type, copy, len };
		pk->qlen++;
		pk->qbytes += len;
		pthread_cond_signal(&pk->work);
		pthread_mutex_unlock(&pk->mu);
	}
	set_put(pk, idx);
	pk->n++;
	return TH_OK;
}

static int broken_error(const th_pack *pk, th_error *err)
{
	return th_error_set(err, TH_ESTORE, "pack '%s' is unusable after a failed write",
	                    basename_of(pk->tmp_path));
}

int th_pack_add_blob(th_oid *out, th_pack *pk, const void *data, size_t len, th_error *err)
{
	unsigned char hdr[32], oid[20];
	size_t hlen;

	if (!pk->async && pk->broken) /* async: the writer's failure comes back from add_new */
		return broken_error(pk, err);
	/* The object id: SHA-1 of "blob <len>\0" and the data. */
	hlen = (size_t)snprintf((char *)hdr, sizeof(hdr), "blob %zu", len) + 1;
	th_sha1_update(pk->sha, hdr, hlen);
	th_sha1_update(pk->sha, data, len);
	th_sha1_final(pk->sha, oid);
	memcpy(out->id, oid, 20);

	/* One refresh before the first blob, so that each can be looked for without making libgit2
	 * re-scan objects/pack on every miss (which is every new blob). A batch's objects
	 * (th_pack__add_object) are new by construction and need none. */
	if (!pk->refreshed) {
		int rc = git_odb_refresh(pk->repo->odb);
		if (rc < 0)
			return th_repo__git_error(err, rc, "cannot refresh object database");
		pk->refreshed = 1;
	}
	if (set_find(pk, oid) ||
	    git_odb_exists_ext(pk->repo->odb, (const git_oid *)(const void *)oid,
	                       GIT_ODB_LOOKUP_NO_REFRESH))
		return TH_OK;
	return add_new(pk, OBJ_BLOB, oid, data, len, err);
}

int th_pack__add_object(th_pack *pk, int type, const unsigned char id[20], const void *data,
                        size_t len, th_error *err)
{
	if (!pk->async && pk->broken)
		return broken_error(pk, err);
	if (type < 1 || type > 4)
		return th_error_set(err, TH_ESTORE, "object of unknown type %d", type);
	if (set_find(pk, id))
		return TH_OK;
	return add_new(pk, type, id, data, len, err);
}

int th_pack__copy(th_pack *pk, int fd, const th_pack_entry *src, size_t n, uint64_t end,
                  th_error *err)
{
	uint64_t base = pk->off, at = 12;
	uLong crc = crc32(0L, Z_NULL, 0);
	size_t i;
	int error;

	if (pk->async)
		return th_error_set(err, TH_ESTORE, "cannot copy into a pack written on a thread");
	if (pk->broken)
		return broken_error(pk, err);
	if (n == 0 || src[0].offset != 12)
		return th_error_set(err, TH_ESTORE, "pack to copy does not start with an object");
	for (i = 0; i < n; i++) {
		if ((i + 1 < n ? src[i + 1].offset : end) <= src[i].offset)
			return th_error_set(err, TH_ESTORE, "pack to copy has overlapping objects");
		if (set_find(pk, src[i].oid))
			return TH_EEXISTS;
	}
	i = 0;
	while (at < end) {
		size_t want, left;
		unsigned char *p;
		ssize_t r;

		if (pk->wlen == WBUF_SIZE && (error = flush(pk, err)) < 0)
			goto fail;
		want = WBUF_SIZE - pk->wlen;
		if (end - at < want)
			want = (size_t)(end - at);
		r = pread(fd, pk->wbuf + pk->wlen, want, (off_t)at);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			error = th_error_set(err, TH_ESTORE, "cannot read a pack to copy: %s",
			                     r == 0 ? "it is cut short" : strerror(errno));
			goto fail;
		}
		/* Each object's bytes run to the next one's offset: check them against its CRC. */
		for (p = pk->wbuf + pk->wlen, left = (size_t)r; left > 0;) {
			uint64_t stop = i + 1 < n ? src[i + 1].offset : end;
			size_t take = stop - at < left ? (size_t)(stop - at) : left;

			crc = crc32(crc, p, (uInt)take);
			at += take;
			p += take;
			left -= take;
			if (at == stop) {
				if ((uint32_t)crc != src[i].crc) {
					error = th_error_set(
					        err, TH_ESTORE,
					        "a pack to copy is corrupt (CRC of object "
					        "%zu of %zu)",
					        i + 1, n);
					goto fail;
				}
				crc = crc32(0L, Z_NULL, 0);
				i++;
			}
		}
		pk->wlen += (size_t)r;
		pk->off += (uint64_t)r;
	}
	for (i = 0; i < n; i++) {
		if ((error = reserve(pk, err)) < 0)
			goto fail;
		pk->entries[pk->n] = src[i];
		pk->entries[pk->n].offset = base + (src[i].offset - 12);
		set_put(pk, pk->n);
		pk->n++;
	}
	return TH_OK;

fail:
	pk->broken = 1;
	return error;
}

size_t th_pack_count(const th_pack *pack)
{
	return pack->n;
}

/* --- finishing ------------------------------------------------------------------------------- */

static int cmp_entry(const void *a, const void *b)
{
	return memcmp(((const th_pack_entry *)a)->oid, ((const th_pack_entry *)b)->oid, 20);
}

int th_pack__idx_build(unsigned char **out, size_t *len, const th_pack_entry *entries, size_t n,
                       const unsigned char pack_sum[20], th_error *err)
{
	size_t nlarge = 0, size, i, li = 0;
	uint32_t fanout[256] = { 0 };
	unsigned char *buf, *p;
	th_sha1 *sha;

	for (i = 0; i < n; i++) {
		fanout[entries[i].oid[0]]++;
		if (entries[i].offset >= 0x80000000u)
			nlarge++;
	}
	for (i = 1; i < 256; i++)
		fanout[i] += fanout[i - 1];
	size = 8 + 256 * 4 + n * (20 + 4 + 4) + nlarge * 8 + 40;
	if ((buf = malloc(size)) == NULL || (sha = th_sha1_new()) == NULL) {
		free(buf);
		return th_error_set(err, TH_ENOMEM, "out of memory");
	}
	p = buf;
	memcpy(p, "\377tOc", 4);
	put32(p + 4, 2);
	p += 8;
	for (i = 0; i < 256; i++, p += 4)
		put32(p, fanout[i]);
	for (i = 0; i < n; i++, p += 20)
		memcpy(p, entries[i].oid, 20);
	for (i = 0; i < n; i++, p += 4)
		put32(p, entries[i].crc);
	for (i = 0; i < n; i++, p += 4) {
		if (entries[i].offset < 0x80000000u)
			put32(p, (uint32_t)entries[i].offset);
		else
			put32(p, 0x80000000u | (uint32_t)li++);
	}
	for (i = 0; i < n; i++) {
		uint64_t off = entries[i].offset;

		if (off < 0x80000000u)
			continue;
		put32(p, (uint32_t)(off >> 32));
		put32(p + 4, (uint32_t)off);
		p += 8;
	}
	memcpy(p, pack_sum, 20);
	p += 20;
	th_sha1_update(sha, buf, (size_t)(p - buf));
	th_sha1_final(sha, p);
	th_sha1_free(sha);
	*out = buf;
	*len = size;
	return TH_OK;
}

/* Hash the whole file from its start (after the header was patched) into sum. */
static int hash_file(th_pack *pk, unsigned char sum[20], th_error *err)
{
	uint64_t at = 0;

	while (at < pk->off) {
		size_t want = pk->off - at < WBUF_SIZE ? (size_t)(pk->off - at) : WBUF_SIZE;
		ssize_t r = pread(pk->fd, pk->wbuf, want, (off_t)at);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			if (r == 0)
				errno = EIO;
			return sys_error(err, "read back pack", pk->tmp_path);
		}
		th_sha1_update(pk->sha, pk->wbuf, (size_t)r);
		at += (uint64_t)r;
	}
	th_sha1_final(pk->sha, sum);
	return TH_OK;
}

struct fsync_job {
	int fd, rc, err;
};

static void *fsync_main(void *arg)
{
	struct fsync_job *j = arg;

	j->rc = fsync(j->fd);
	j->err = errno;
	return NULL;
}

/* fsync a and b at once, a on a thread of its own, so the disk works on both flushes together
 * (the pack's and its index's: about one flush's wait instead of two in a row). Returns 0, or -1
 * with errno from the first that failed and *which = 0 (a) or 1 (b). */
static int fsync_both(int a, int b, int *which)
{
	struct fsync_job ja = { a, 0, 0 };
	pthread_t th;
	int started = pthread_create(&th, NULL, fsync_main, &ja) == 0, rb, eb;

	if (!started)
		fsync_main(&ja);
	rb = fsync(b);
	eb = errno;
	if (started)
		pthread_join(th, NULL);
	if (ja.rc < 0) {
		*which = 0;
		errno = ja.err;
		return -1;
	}
	if (rb < 0) {
		*which = 1;
		errno = eb;
		return -1;
	}
	return 0;
}

int th_pack__commit(th_pack *pk, char name_out[41], th_error *err)
{
	unsigned char count[4], sum[20], *idx = NULL;
	char hex[41], *idx_tmp = NULL, *pack_final = NULL, *idx_final = NULL;
	size_t idx_len = 0, n;
	int idx_fd = -1, error;

	if ((error = writer_stop(pk, err)) < 0)
		goto cleanup;
	if (pk->broken) {
		error = broken_error(pk, err);
		goto cleanup;
	}
	if (pk->n == 0) {
		error = TH_OK; /* th_pack_free removes the temporary file */
		goto cleanup;
	}
	if ((error = flush(pk, err)) < 0)
		goto cleanup;
	put32(count, (uint32_t)pk->n);
	if (pwrite_all(pk->fd, count, 4, 8) < 0) {
		error = sys_error(err, "write pack", pk->tmp_path);
		goto cleanup;
	}
	if ((error = hash_file(pk, sum, err)) < 0)
		goto cleanup;
	if (pwrite_all(pk->fd, sum, 20, (off_t)pk->off) < 0) {
		error = sys_error(err, "write pack", pk->tmp_path);
		goto cleanup;
	}
	/* Packs are immutable: read-only, as git makes them. */
	if (fchmod(pk->fd, 0444) < 0) {
		error = sys_error(err, "sync pack", pk->tmp_path);
		goto cleanup;
	}

	qsort(pk->entries, pk->n, sizeof(*pk->entries), cmp_entry);
	if ((error = th_pack__idx_build(&idx, &idx_len, pk->entries, pk->n, sum, err)) < 0)
		goto cleanup;
	n = strlen(pk->dir) + 64;
	if ((idx_tmp = malloc(n)) == NULL || (pack_final = malloc(n)) == NULL ||
	    (idx_final = malloc(n)) == NULL) {
		error = th_error_set(err, TH_ENOMEM, "out of memory");
		goto cleanup;
	}
	th_hex(hex, sum, 20);
	if (name_out != NULL)
		memcpy(name_out, hex, 41);
	snprintf(idx_tmp, n, "%s/tmp_idx_XXXXXX", pk->dir);
	snprintf(pack_final, n, "%s/pack-%s.pack", pk->dir, hex);
	snprintf(idx_final, n, "%s/pack-%s.idx", pk->dir, hex);
	if ((idx_fd = mkstemp(idx_tmp)) < 0) {
		error = sys_error(err, "create", idx_tmp);
		free(idx_tmp);
		idx_tmp = NULL;
		goto cleanup;
	}
	if (write_all(idx_fd, idx, idx_len) < 0 || fchmod(idx_fd, 0444) < 0) {
		error = sys_error(err, "write index", idx_tmp);
		goto cleanup;
	}
	{
		int which = 0;

		if (fsync_both(pk->fd, idx_fd, &which) < 0) {
			error = sys_error(err, which ? "sync index" : "sync pack",
			                  which ? idx_tmp : pk->tmp_path);
			goto cleanup;
		}
	}
	close(idx_fd);
	idx_fd = -1;

	/* .pack first, .idx last: the pack becomes visible only once both are complete. */
	if (rename(pk->tmp_path, pack_final) < 0) {
		error = sys_error(err, "rename pack to", pack_final);
		goto cleanup;
	}
	free(pk->tmp_path);
	pk->tmp_path = NULL; /* no longer ours to remove */
	if (rename(idx_tmp, idx_final) < 0) {
		error = sys_error(err, "rename index to", idx_final);
		goto cleanup;
	}
	free(idx_tmp);
	idx_tmp = NULL;
	/* Packs of the repository finishing together share the directory's fsync. */
	if (th_dirsync(pk->dir) < 0) {
		error = sys_error(err, "sync", pk->dir);
		goto cleanup;
	}
	if ((error = git_odb_refresh(pk->repo->odb)) < 0) {
		error = th_repo__git_error(err, error, "cannot refresh object database");
		goto cleanup;
	}
	error = TH_OK;

cleanup:
	if (idx_fd >= 0)
		close(idx_fd);
	if (idx_tmp) {
		unlink(idx_tmp);
		free(idx_tmp);
	}
	free(idx);
	free(pack_final);
	free(idx_final);
	th_pack_free(pk);
	return error;
}

int th_pack_commit(th_pack *pk, th_error *err)
{
	return th_pack__commit(pk, NULL, err);
}

void th_pack_free(th_pack *pack)
{
	if (pack == NULL)
		return;
	if (pack->async) {
		pthread_mutex_lock(&pack->mu);
		pack->failed = 1; /* nothing more is written: drop what waits */
		th_error_clear(&pack->werr);
		pthread_mutex_unlock(&pack->mu);
		(void)writer_stop(pack, NULL);
	}
	if (pack->mu_ready) {
		pthread_mutex_destroy(&pack->mu);
		pthread_cond_destroy(&pack->work);
		pthread_cond_destroy(&pack->room);
	}
	if (pack->fd >= 0)
		close(pack->fd);
	if (pack->tmp_path && pack->fd >= 0)
		unlink(pack->tmp_path);
	if (pack->zs_ready)
		deflateEnd(&pack->zs);
	th_sha1_free(pack->sha);
	free(pack->wbuf);
	free(pack->entries);
	free(pack->slots);
	free(pack->tmp_path);
	free(pack->dir);
	free(pack);
}

/* sorter.c: an external merge sort of (key, payload, seq) records (see include/tablehub/sorter.h).
 *
 * DESIGN. Records are copied into an arena of blocks (each a fraction of the budget, so runs fill
 * it evenly; a record larger than a block gets a block of its own) and indexed by an array of
 * entries holding the key's first 8 bytes big-endian beside the record's pointer: most
 * comparisons end on that prefix without touching the record. When the arena and the entries would
 * pass the budget, the entries are sorted (sort_ents: a radix sort on the prefixes, with n entries
 * of scratch beside the budget) and the records written in that order to an unlinked temporary
 * file: a run. Finishing sorts what is left in memory as one more run, kept in memory, and sets up
 * a binary min-heap over every run's current record; popping advances one run and sifts it down. A
 * record's header is its seq and the key and data lengths; key then data follow it, both in memory
 * and in run files, so a run file is read back with one fread for the header and one for the bytes.
 *
 * The merge's fan-in is bounded (TH_SORTER_FANIN runs read at once), so that neither the memory
 * nor the files it holds open grow with the input. Runs have a level: a spill makes a run of
 * level 0, and whenever FANIN runs of one level exist they are merged into one run of the next
 * level (as a log-structured merge does: each record is rewritten once per level, log_FANIN of
 * the number of runs times in all). Finishing merges the smallest runs until at most FANIN - 1
 * files are left beside the run in memory, and the last merge is the one the reader pops from.
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tablehub/sorter.h"
#include "tablehub/value.h"

#define DEFAULT_BUDGET (64u << 20)
#define MAX_BLOCK (4u << 20)
#define MIN_BLOCK (4u << 10)
/* A run file's stdio buffer: TH_SORTER_FANIN + 1 of them are open at most, 4.25 MiB. */
#define RUN_BUF (256u << 10)

/* A record: key bytes then data bytes follow the header in memory and in run files. */
typedef struct rec {
	uint64_t seq;
	uint32_t keylen, datalen;
} rec;

#define REC_KEY(r) ((const unsigned char *)((r) + 1))
#define REC_DATA(r) ((const char *)((r) + 1) + (r)->keylen)

typedef struct sortent {
	uint64_t prefix; /* first 8 key bytes, big-endian: most comparisons end here */
	rec *r;
} sortent;

typedef struct block {
	struct block *next;
	size_t used;
	char data[];
} block;

/* A run source for the merge: either the in-memory sorted array or a run file. */
typedef struct run {
	FILE *f;    /* NULL for the in-memory run */
	char *fbuf; /* f's buffer, RUN_BUF bytes */
	sortent *v; /* in-memory run */
	size_t n, pos;
	rec *cur; /* current record (heap buffer for file runs) */
	size_t cap;
	unsigned level; /* file runs: 0 for a spill, L + 1 for a merge of runs of level L */
} run;

struct th_sorter {
	char *tmpdir;
	size_t budget, used;
	size_t block_size;
	block *blocks;
	sortent *ents;
	size_t nents, capents;
	run *runs;
	size_t nruns;
	size_t *heap; /* indices into runs, a min-heap on the current record */
	size_t nheap;
	int finished;
	th_sorter_stats stats;
	size_t nopen; /* run files open now */
};

/* The directory for temporary files: `dir`, else $TMPDIR, else /tmp. */
static const char *tmp_dir(const char *dir)
{
	if (dir == NULL)
		dir = getenv("TMPDIR");
	return dir ? dir : "/tmp";
}

int th_sorter_tmpfd(int *out, const char *dir, th_error *err)
{
	char path[4096];
	int fd;

	snprintf(path, sizeof(path), "%s/th-sort-XXXXXX", tmp_dir(dir));
	if ((fd = mkstemp(path)) < 0)
		return th_error_set(err, TH_ESTORE, "cannot create a temporary file: %s",
		                    strerror(errno));
	unlink(path); /* anonymous: nothing is left behind by a crash */
	*out = fd;
	return TH_OK;
}

/* Close a tmpfile_open file (NULL: nothing) and unmap its buffer of `bufsize` bytes. */
static void tmpfile_close(FILE *f, char *buf, size_t bufsize)
{
	if (f != NULL)
		fclose(f);
	if (buf != NULL)
		munmap(buf, bufsize);
}

/* th_sorter_tmpfd's file, open for writing and reading with a buffer of `bufsize` bytes (0 = the
 * C library's, one 4 KiB block: one write a block). The buffer is mapped, not malloc'd: a freed
 * block of this size would raise glibc's dynamic mmap threshold and keep later large allocations
 * on the heap (+25 MB of peak RSS in a 1M-row import). *out and *buf_out are the caller's, for
 * tmpfile_close. Returns TH_OK, TH_ENOMEM or TH_ESTORE. */
static int tmpfile_open(FILE **out, char **buf_out, size_t bufsize, const char *dir, th_error *err)
{
	char *buf = NULL;
	FILE *f;
	int fd, error;

	if (bufsize > 0 && (buf = mmap(NULL, bufsize, PROT_READ | PROT_WRITE,
	                               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)) == MAP_FAILED)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	if ((error = th_sorter_tmpfd(&fd, dir, err)) < 0) {
		tmpfile_close(NULL, buf, bufsize);
		return error;
	}
	if ((f = fdopen(fd, "w+b")) == NULL) {
		close(fd);
		tmpfile_close(NULL, buf, bufsize);
		return th_error_set(err, TH_ENOMEM, "out of memory");
	}
	if (buf != NULL)
		setvbuf(f, buf, _IOFBF, bufsize);
	*out = f;
	*buf_out = buf;
	return TH_OK;
}

static uint64_t key_prefix(const unsigned char *k, size_t n)
{
	uint64_t p = 0;
	size_t i;

	for (i = 0; i < 8; i++)
		p = p << 8 | (i < n ? k[i] : 0);
	return p;
}

static int rec_cmp(const rec *a, const rec *b)
{
	int c = th_key_cmp(REC_KEY(a), a->keylen, REC_KEY(b), b->keylen);

	if (c)
		return c;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static int sortent_cmp(const void *pa, const void *pb)
{
	const sortent *a = pa, *b = pb;

	if (a->prefix != b->prefix)
		return a->prefix < b->prefix ? -1 : 1;
	return rec_cmp(a->r, b->r);
}

/* How many bytes every key of v[n] starts with (n > 0). */
static size_t common_prefix(const sortent *v, size_t n)
{
	const unsigned char *first = REC_KEY(v[0].r);
	size_t cp = v[0].r->keylen, i;

	for (i = 1; i < n && cp > 0; i++) {
		const unsigned char *k = REC_KEY(v[i].r);
		size_t m = v[i].r->keylen < cp ? v[i].r->keylen : cp, j = 0;

		while (j < m && k[j] == first[j])
			j++;
		cp = j;
	}
	return cp;
}

/* Sort v[n] as qsort with sortent_cmp would: a least-significant-digit radix sort on the 64-bit
 * prefixes (a byte a pass, stable, passes skipped where every prefix has the same byte, as the high
 * bytes of small integer keys do), then qsort of each group of equal prefixes, where only the
 * whole key and the sequence number can tell the entries apart. sortent_cmp is a total order (the
 * sequence number breaks ties), so the result is the one qsort gives. Needs n more entries of
 * scratch; without them (out of memory), qsort does it all. Radix: qsort's comparisons through a
 * function pointer were a sixth of a shuffled 1M-row import. */
static void sort_ents(sortent *v, size_t n)
{
	sortent *tmp, *src, *dst, *t;
	size_t count[256], i, start, skip;
	int shift;

	/* Keys that all start with the same bytes (an integer key's tag and high bytes: 8 bytes
	 * from the first would leave groups of 256 equal prefixes for qsort, a third of the sort's
	 * time) are told apart by the 8 bytes after those. */
	if (n >= 64 && (skip = common_prefix(v, n)) > 0)
		for (i = 0; i < n; i++)
			v[i].prefix = key_prefix(REC_KEY(v[i].r) + skip, v[i].r->keylen - skip);
	if (n < 64 || (tmp = malloc(n * sizeof(*tmp))) == NULL) {
		if (n > 1)
			qsort(v, n, sizeof(*v), sortent_cmp);
		return;
	}
	src = v;
	dst = tmp;
	for (shift = 0; shift < 64; shift += 8) {
		size_t sum = 0;

		memset(count, 0, sizeof(count));
		for (i = 0; i < n; i++)
			count[(src[i].prefix >> shift) & 0xff]++;
		if (count[(src[0].prefix >> shift) & 0xff] == n)
			continue; /* one byte value throughout: the order stays */
		for (i = 0; i < 256; i++) {
			size_t c = count[i];
			count[i] = sum;
			sum += c;
		}
		for (i = 0; i < n; i++)
			dst[count[(src[i].prefix >> shift) & 0xff]++] = src[i];
		t = src;
		src = dst;
		dst = t;
	}
	if (src != v)
		memcpy(v, src, n * sizeof(*v));
	free(tmp);
	for (start = 0; start < n; start = i) {
		for (i = start + 1; i < n && v[i].prefix == v[start].prefix; i++)
			;
		if (i - start > 1)
			qsort(v + start, i - start, sizeof(*v), sortent_cmp);
	}
}

int th_sorter_new(th_sorter **out, const char *tmpdir, size_t budget, th_error *err)
{
	th_sorter *s = calloc(1, sizeof(*s));

	if (s == NULL || (s->tmpdir = strdup(tmp_dir(tmpdir))) == NULL) {
		free(s);
		return th_error_set(err, TH_ENOMEM, "out of memory");
	}
	s->budget = budget ? budget : DEFAULT_BUDGET;
	s->block_size = s->budget / 8 < MAX_BLOCK ? s->budget / 8 : MAX_BLOCK;
	if (s->block_size < MIN_BLOCK)
		s->block_size = MIN_BLOCK;
	*out = s;
	return TH_OK;
}

/* A new run file into r->f, counted as open. */
static int open_run(run *r, th_sorter *s, th_error *err)
{
	int error;

	if ((error = tmpfile_open(&r->f, &r->fbuf, RUN_BUF, s->tmpdir, err)) < 0)
		return error;
	s->stats.runs++;
	if (++s->nopen > s->stats.max_open)
		s->stats.max_open = s->nopen;
	return TH_OK;
}

/* Close (so delete) a run file and free its record buffer. */
static void close_run(th_sorter *s, run *r)
{
	if (r->f)
		s->nopen--;
	tmpfile_close(r->f, r->fbuf, RUN_BUF);
	r->fbuf = NULL;
	free(r->cur);
	r->f = NULL;
	r->cur = NULL;
	r->cap = 0;
}

static void free_blocks(th_sorter *s)
{
	while (s->blocks) {
		block *b = s->blocks;
		s->blocks = b->next;
		free(b);
	}
}

void th_sorter_free(th_sorter *s)
{
	size_t i;

	if (s == NULL)
		return;
	free_blocks(s);
	free(s->ents);
	for (i = 0; i < s->nruns; i++)
		if (s->runs[i].f)
			close_run(s, &s->runs[i]);
	free(s->runs);
	free(s->heap);
	free(s->tmpdir);
	free(s);
}

static int cascade(th_sorter *s, th_error *err);

static int add_run(th_sorter *s, run *r, th_error *err)
{
	run *p = realloc(s->runs, (s->nruns + 1) * sizeof(*p));

	if (p == NULL)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	s->runs = p;
	s->runs[s->nruns++] = *r;
	return TH_OK;
}

/* Sort what is in memory and write it out as a run file. */
static int spill(th_sorter *s, th_error *err)
{
	run r;
	size_t i;
	int error;

	memset(&r, 0, sizeof(r));
	sort_ents(s->ents, s->nents);
	if ((error = open_run(&r, s, err)) < 0)
		return error;
	for (i = 0; i < s->nents; i++) {
		const rec *e = s->ents[i].r;
		if (fwrite(e, sizeof(*e) + e->keylen + e->datalen, 1, r.f) != 1) {
			close_run(s, &r);
			return th_error_set(err, TH_ESTORE, "cannot write a sort run: %s",
			                    strerror(errno));
		}
	}
	if (fflush(r.f) != 0 || fseek(r.f, 0, SEEK_SET) != 0) {
		close_run(s, &r);
		return th_error_set(err, TH_ESTORE, "cannot write a sort run: %s", strerror(errno));
	}
	free_blocks(s);
	s->nents = 0;
	s->used = 0;
	if ((error = add_run(s, &r, err)) < 0) {
		close_run(s, &r);
		return error;
	}
	return cascade(s, err);
}

int th_sorter_put(th_sorter *s, const void *key, size_t keylen, const void *data, size_t datalen,
                  uint64_t seq, th_error *err)
{
	size_t need = sizeof(rec) + keylen + datalen;
	rec *r;
	int error;

	assert(!s->finished);
	if (keylen > UINT32_MAX || datalen > UINT32_MAX)
		return th_error_set(err, TH_EINVALID, "a record of %zu bytes is too large to sort",
		                    keylen + datalen);
	need = (need + 7) & ~(size_t)7;
	/* Arena blocks plus the entries in use count against the budget. */
	if (s->used + (s->nents + 1) * sizeof(sortent) + need > s->budget && s->nents > 0 &&
	    (error = spill(s, err)) < 0)
		return error;
	if (s->blocks == NULL || s->blocks->used + need > s->block_size) {
		size_t size = need > s->block_size ? need : s->block_size;
		block *b = malloc(sizeof(*b) + size);
		if (b == NULL)
			return th_error_set(err, TH_ENOMEM, "out of memory");
		b->used = 0;
		b->next = s->blocks;
		s->blocks = b;
		s->used += sizeof(*b) + size;
	}
	if (s->nents == s->capents) {
		size_t ncap = s->capents ? s->capents * 2 : 4096;
		sortent *p = realloc(s->ents, ncap * sizeof(*p));
		if (p == NULL)
			return th_error_set(err, TH_ENOMEM, "out of memory");
		s->ents = p;
		s->capents = ncap;
	}
	r = (rec *)(s->blocks->data + s->blocks->used);
	s->blocks->used += need;
	r->seq = seq;
	r->keylen = (uint32_t)keylen;
	r->datalen = (uint32_t)datalen;
	/* (empty inputs may be NULL, which memcpy may not be given) */
	if (keylen)
		memcpy((char *)(r + 1), key, keylen);
	if (datalen)
		memcpy((char *)(r + 1) + keylen, data, datalen);
	s->ents[s->nents].prefix = key_prefix(REC_KEY(r), r->keylen);
	s->ents[s->nents++].r = r;
	return TH_OK;
}

/* Load the next record of a run into r->cur; returns 1, 0 at its end, or a negative code. */
static int run_next(run *r, th_error *err)
{
	rec h;
	size_t need;

	if (r->f == NULL) {
		if (r->pos >= r->n)
			return 0;
		r->cur = r->v[r->pos++].r;
		return 1;
	}
	if (fread(&h, sizeof(h), 1, r->f) != 1) {
		if (ferror(r->f))
			return th_error_set(err, TH_ESTORE, "cannot read a sort run: %s",
			                    strerror(errno));
		return 0;
	}
	need = sizeof(h) + h.keylen + h.datalen;
	if (need > r->cap) {
		rec *p = realloc(r->cur, need);
		if (p == NULL)
			return th_error_set(err, TH_ENOMEM, "out of memory");
		r->cur = p;
		r->cap = need;
	}
	*r->cur = h;
	if (h.keylen + h.datalen && fread(r->cur + 1, h.keylen + h.datalen, 1, r->f) != 1)
		return th_error_set(err, TH_ESTORE, "sort run truncated");
	return 1;
}

/* Sift entry i of a min-heap of n run indices (into runs), ordered by their current records. */
static void sift(const run *runs, size_t *heap, size_t n, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, m = i, t;
		if (l < n && rec_cmp(runs[heap[l]].cur, runs[heap[m]].cur) < 0)
			m = l;
		if (l + 1 < n && rec_cmp(runs[heap[l + 1]].cur, runs[heap[m]].cur) < 0)
			m = l + 1;
		if (m == i)
			return;
		t = heap[i];
		heap[i] = heap[m];
		heap[m] = t;
		i = m;
	}
}

static void heap_down(th_sorter *s, size_t i)
{
	sift(s->runs, s->heap, s->nheap, i);
}

/* Merge the k file runs whose indices are in idx (k <= TH_SORTER_FANIN) into one new run file of
 * `level`, which replaces them in s->runs. */
static int merge_runs(th_sorter *s, const size_t *idx, size_t k, unsigned level, th_error *err)
{
	size_t heap[TH_SORTER_FANIN], n = 0, i, j;
	run out;
	int error;

	assert(k <= TH_SORTER_FANIN);
	memset(&out, 0, sizeof(out));
	out.level = level;
	if ((error = open_run(&out, s, err)) < 0)
		return error;
	for (i = 0; i < k; i++) {
		if ((error = run_next(&s->runs[idx[i]], err)) < 0)
			goto fail;
		if (error == 1)
			heap[n++] = idx[i];
	}
	for (i = n; i-- > 0;)
		sift(s->runs, heap, n, i);
	while (n > 0) {
		const rec *r = s->runs[heap[0]].cur;
		if (fwrite(r, sizeof(*r) + r->keylen + r->datalen, 1, out.f) != 1) {
			error = th_error_set(err, TH_ESTORE, "cannot write a sort run: %s",
			                     strerror(errno));
			goto fail;
		}
		if ((error = run_next(&s->runs[heap[0]], err)) < 0)
			goto fail;
		if (error == 0)
			heap[0] = heap[--n];
		if (n)
			sift(s->runs, heap, n, 0);
	}
	if (fflush(out.f) != 0 || fseek(out.f, 0, SEEK_SET) != 0) {
		error = th_error_set(err, TH_ESTORE, "cannot write a sort run: %s",
		                     strerror(errno));
		goto fail;
	}
	s->stats.merges++;
	if (k > s->stats.max_fanin)
		s->stats.max_fanin = k;
	/* The merged runs leave s->runs (kept in order), the new one joins it. */
	for (i = 0; i < k; i++)
		close_run(s, &s->runs[idx[i]]);
	for (i = j = 0; i < s->nruns; i++)
		if (s->runs[i].f != NULL || s->runs[i].v != NULL)
			s->runs[j++] = s->runs[i];
	s->nruns = j;
	s->runs[s->nruns++] = out; /* fits: k >= 1 runs left */
	return TH_OK;
fail:
	close_run(s, &out);
	return error;
}

/* After a spill: while TH_SORTER_FANIN runs of one level exist, merge them into one of the next
 * level. */
static int cascade(th_sorter *s, th_error *err)
{
	size_t idx[TH_SORTER_FANIN], k, i;
	unsigned level;
	int error;

	for (level = 0;; level++) {
		for (i = k = 0; i < s->nruns && k < TH_SORTER_FANIN; i++)
			if (s->runs[i].f != NULL && s->runs[i].level == level)
				idx[k++] = i;
		if (k < TH_SORTER_FANIN)
			return TH_OK;
		if ((error = merge_runs(s, idx, k, level + 1, err)) < 0)
			return error;
	}
}

/* Before the last merge: merge the lowest-level file runs until at most `keep` are left. */
static int reduce_runs(th_sorter *s, size_t keep, th_error *err)
{
	size_t idx[TH_SORTER_FANIN], nfile, k, i;
	unsigned level, top;
	int error;

	for (;;) {
		for (i = nfile = top = 0; i < s->nruns; i++) {
			if (s->runs[i].f == NULL)
				continue;
			nfile++;
			if (s->runs[i].level > top)
				top = s->runs[i].level;
		}
		if (nfile <= keep)
			return TH_OK;
		/* Merging k runs into one removes k - 1: no more than needed, smallest first. */
		k = nfile - keep + 1 < TH_SORTER_FANIN ? nfile - keep + 1 : TH_SORTER_FANIN;
		for (level = 0, i = 0; i < k && level <= top; level++)
			for (size_t r = 0; r < s->nruns && i < k; r++)
				if (s->runs[r].f != NULL && s->runs[r].level == level)
					idx[i++] = r;
		if ((error = merge_runs(s, idx, i, top + 1, err)) < 0)
			return error;
	}
}

void th_sorter_get_stats(th_sorter_stats *out, const th_sorter *s)
{
	*out = s->stats;
}

int th_sorter_finish(th_sorter *s, th_error *err)
{
	run r;
	size_t i;
	int error;

	assert(!s->finished);
	/* At most TH_SORTER_FANIN runs in the last merge: the files and the one in memory. */
	if ((error = reduce_runs(s, s->nents > 0 ? TH_SORTER_FANIN - 1 : TH_SORTER_FANIN, err)) < 0)
		return error;
	memset(&r, 0, sizeof(r));
	if (s->nents > 0) /* with nothing put, ents is NULL */
		sort_ents(s->ents, s->nents);
	r.v = s->ents;
	r.n = s->nents;
	if ((error = add_run(s, &r, err)) < 0)
		return error;
	if ((s->heap = malloc(s->nruns * sizeof(*s->heap))) == NULL)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	for (i = 0; i < s->nruns; i++) {
		if ((error = run_next(&s->runs[i], err)) < 0)
			return error;
		if (error == 1)
			s->heap[s->nheap++] = i;
	}
	for (i = s->nheap; i-- > 0;)
		heap_down(s, i);
	if (s->nruns > s->stats.max_fanin)
		s->stats.max_fanin = s->nruns;
	s->finished = 1;
	return TH_OK;
}

int th_sorter_peek(th_sorter_rec *out, const th_sorter *s)
{
	const rec *r;

	if (s->nheap == 0)
		return 0;
	r = s->runs[s->heap[0]].cur;
	out->key = REC_KEY(r);
	out->keylen = r->keylen;
	out->data = REC_DATA(r);
	out->datalen = r->datalen;
	out->seq = r->seq;
	return 1;
}

int th_sorter_pop(th_sorter *s, th_error *err)
{
	int error;

	if (s->nheap == 0)
		return TH_OK;
	if ((error = run_next(&s->runs[s->heap[0]], err)) < 0)
		return error;
	if (error == 0)
		s->heap[0] = s->heap[--s->nheap];
	if (s->nheap)
		heap_down(s, 0);
	return TH_OK;
}

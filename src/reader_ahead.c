/* reader_ahead.c: a reader that parses on a thread of its own (th_reader_ahead, see
 * include/tablehub/reader.h).
 *
 * An import's first pass is the parse (libcsv, about half of it) and then the checks, the type
 * inference and the spill of each row, all on one core while the other waits for the sort and the
 * pack writer of the second pass. Here the inner reader runs on a second thread and hands its rows
 * over in batches: each row's cells copied into the batch's bytes (the inner reader's pointers
 * last only until its next row), up to BATCH_ROWS rows or BATCH_BYTES bytes a batch, NBATCH
 * batches in a ring. The caller's th_reader_next returns the rows of the oldest full batch in
 * order, and the inner reader's end or error after its last row, exactly as the inner reader would
 * have; a batch goes back to the thread at the call after its last row, when nothing the caller
 * holds points into it any more.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "tablehub/buf.h"
#include "tablehub/reader.h"

#define NBATCH 4
#define BATCH_ROWS 1024
#define BATCH_BYTES (128u << 10)
#define NO_CELL SIZE_MAX

struct arow {
	uint64_t line;
	size_t first, n; /* cells [first, first + n) of the batch */
};

struct batch {
	struct arow *rows;
	size_t nrows, rows_cap;
	size_t *offs, *lens; /* per cell: offset in data (NO_CELL for NULL) and length */
	size_t ncells, cells_cap;
	th_buf data;
	uint64_t bytes; /* the inner reader's bytes once the batch was full */
	int last;       /* the inner reader ended after these rows: `rc` says how */
	int rc;         /* 0 (end) or the error code, `err` its error */
	th_error err;
};

typedef struct ahead {
	th_reader base; /* first: what callers hold */
	th_reader *inner;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t full, empty;
	struct batch b[NBATCH];
	size_t head, nfull; /* the oldest full batch, and how many are full */
	int stop;           /* the caller closes: the thread ends */
	int done;           /* the thread ended */
	/* The caller's side: the batch being read and its position, a row's cell pointers. */
	struct batch *cur;
	size_t pos;
	const char **cells;
	size_t cells_cap;
	uint64_t bytes;
	int ended; /* the last batch's outcome was returned */
} ahead;

/* Copy `row` into b. Returns 0, or -1 out of memory. */
static int batch_add(struct batch *b, const th_reader_row *row)
{
	struct arow *r;

	if (b->nrows == b->rows_cap) {
		size_t ncap = b->rows_cap ? b->rows_cap * 2 : 256;
		void *p = realloc(b->rows, ncap * sizeof(*b->rows));
		if (p == NULL)
			return -1;
		b->rows = p;
		b->rows_cap = ncap;
	}
	if (b->ncells + row->n > b->cells_cap) {
		size_t ncap = b->cells_cap ? b->cells_cap * 2 : 2048;
		void *po, *pl;

		while (ncap < b->ncells + row->n)
			ncap *= 2;
		if ((po = realloc(b->offs, ncap * sizeof(*b->offs))) == NULL)
			return -1;
		b->offs = po;
		if ((pl = realloc(b->lens, ncap * sizeof(*b->lens))) == NULL)
			return -1;
		b->lens = pl;
		b->cells_cap = ncap;
	}
	r = &b->rows[b->nrows];
	r->line = row->line;
	r->first = b->ncells;
	r->n = row->n;
	for (size_t i = 0; i < row->n; i++) {
		size_t k = b->ncells + i;

		b->lens[k] = row->lens[i];
		if (row->cells[i] == NULL) {
			b->offs[k] = NO_CELL;
			continue;
		}
		b->offs[k] = b->data.size;
		if (th_buf_put(&b->data, row->cells[i], row->lens[i], NULL) < 0 ||
		    th_buf_putc(&b->data, '\0', NULL) < 0)
			return -1;
	}
	b->ncells += row->n;
	b->nrows++;
	return 0;
}

static void *reader_main(void *arg)
{
	ahead *a = arg;
	size_t slot = 0;
	int last = 0;

	while (!last) {
		struct batch *b;

		pthread_mutex_lock(&a->mu);
		while (!a->stop && a->nfull == NBATCH)
			pthread_cond_wait(&a->empty, &a->mu);
		if (a->stop) {
			pthread_mutex_unlock(&a->mu);
			break;
		}
		pthread_mutex_unlock(&a->mu);
		b = &a->b[slot]; /* empty: ours until it is counted full */
		b->nrows = b->ncells = 0;
		th_buf_clear(&b->data);
		while (b->nrows < BATCH_ROWS && b->data.size < BATCH_BYTES) {
			th_reader_row row;
			int rc = th_reader_next(a->inner, &row, &b->err);

			if (rc == 1 && batch_add(b, &row) < 0)
				rc = th_error_set(&b->err, TH_ENOMEM, "out of memory");
			if (rc != 1) {
				b->rc = rc;
				last = 1;
				break;
			}
		}
		b->last = last;
		b->bytes = th_reader_bytes(a->inner);
		pthread_mutex_lock(&a->mu);
		a->nfull++;
		pthread_cond_signal(&a->full);
		pthread_mutex_unlock(&a->mu);
		slot = (slot + 1) % NBATCH;
	}
	pthread_mutex_lock(&a->mu);
	a->done = 1;
	pthread_cond_signal(&a->full);
	pthread_mutex_unlock(&a->mu);
	return NULL;
}

static int ahead_next(th_reader *r, th_reader_row *row, th_error *err)
{
	ahead *a = (ahead *)r;
	struct batch *b = a->cur;
	const struct arow *ar;

	if (b != NULL && a->pos == b->nrows) {
		if (b->last) {
			a->ended = 1;
			if (b->rc < 0 && err != NULL)
				*err = b->err;
			return b->rc;
		}
		/* Every row of b was handed out and the caller moved on: b goes back. */
		pthread_mutex_lock(&a->mu);
		a->head = (a->head + 1) % NBATCH;
		a->nfull--;
		pthread_cond_signal(&a->empty);
		pthread_mutex_unlock(&a->mu);
		b = a->cur = NULL;
	}
	if (b == NULL) {
		pthread_mutex_lock(&a->mu);
		while (a->nfull == 0 && !a->done)
			pthread_cond_wait(&a->full, &a->mu);
		if (a->nfull == 0) { /* cannot happen: the thread's last batch is counted full */
			pthread_mutex_unlock(&a->mu);
			return th_error_set(err, TH_ESTORE, "the input reader stopped");
		}
		b = a->cur = &a->b[a->head];
		pthread_mutex_unlock(&a->mu);
		a->pos = 0;
		a->bytes = b->bytes;
		return ahead_next(r, row, err);
	}
	ar = &b->rows[a->pos++];
	if (ar->n > a->cells_cap) {
		size_t ncap = ar->n * 2;
		void *p = realloc(a->cells, ncap * sizeof(*a->cells));
		if (p == NULL)
			return th_error_set(err, TH_ENOMEM, "out of memory");
		a->cells = p;
		a->cells_cap = ncap;
	}
	for (size_t i = 0; i < ar->n; i++) {
		size_t off = b->offs[ar->first + i];
		a->cells[i] = off == NO_CELL ? NULL : b->data.ptr + off;
	}
	row->n = ar->n;
	row->cells = a->cells;
	row->lens = b->lens + ar->first;
	row->line = ar->line;
	return 1;
}

static void stop_thread(ahead *a)
{
	pthread_mutex_lock(&a->mu);
	a->stop = 1;
	pthread_cond_signal(&a->empty);
	pthread_mutex_unlock(&a->mu);
	pthread_join(a->thread, NULL);
}

/* Only once the inner reader ended (the thread is done with it) is its error position asked. */
static void ahead_error_pos(const th_reader *r, uint64_t *line, uint32_t *column)
{
	const ahead *a = (const ahead *)r;

	if (a->ended) {
		th_reader_error_pos(a->inner, line, column);
	} else {
		*line = 0;
		*column = 0;
	}
}

static uint64_t ahead_bytes(const th_reader *r)
{
	return ((const ahead *)r)->bytes;
}

static void ahead_free(ahead *a)
{
	for (int i = 0; i < NBATCH; i++) {
		free(a->b[i].rows);
		free(a->b[i].offs);
		free(a->b[i].lens);
		th_buf_dispose(&a->b[i].data);
	}
	free(a->cells);
	free(a);
}

static void ahead_close(th_reader *r)
{
	ahead *a = (ahead *)r;

	stop_thread(a);
	pthread_mutex_destroy(&a->mu);
	pthread_cond_destroy(&a->full);
	pthread_cond_destroy(&a->empty);
	th_reader_close(a->inner);
	ahead_free(a);
}

static int ahead_open(th_reader **out, int fd, const th_reader_opts *opts, th_error *err)
{
	(void)out;
	(void)fd;
	(void)opts;
	return th_error_set(err, TH_EINVALID, "a read-ahead reader wraps another: th_reader_ahead");
}

static const th_reader_type ahead_type = { ahead_open, ahead_next, ahead_error_pos, ahead_bytes,
	                                   ahead_close };

th_reader *th_reader_ahead(th_reader *inner)
{
	ahead *a = calloc(1, sizeof(*a));

	if (a == NULL)
		return inner;
	a->base.type = &ahead_type;
	a->inner = inner;
	if (pthread_mutex_init(&a->mu, NULL) != 0) {
		ahead_free(a);
		return inner;
	}
	if (pthread_cond_init(&a->full, NULL) != 0) {
		pthread_mutex_destroy(&a->mu);
		ahead_free(a);
		return inner;
	}
	if (pthread_cond_init(&a->empty, NULL) != 0) {
		pthread_cond_destroy(&a->full);
		pthread_mutex_destroy(&a->mu);
		ahead_free(a);
		return inner;
	}
	if (pthread_create(&a->thread, NULL, reader_main, a) != 0) {
		pthread_cond_destroy(&a->empty);
		pthread_cond_destroy(&a->full);
		pthread_mutex_destroy(&a->mu);
		ahead_free(a);
		return inner;
	}
	return &a->base;
}

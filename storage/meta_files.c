/* meta_files.c: files as resources and tus uploads in the SQL metadata backends (tables files,
 * file_operations and tus_uploads; see include/tablehub/meta_files.h), on the statement layer of
 * storage/meta_sql.h, so the same code serves SQLite and PostgreSQL.
 *
 * Like meta_limits.c, these statements are prepared when they run (th_msql__exec, MS_NOSLOT)
 * instead of taking slots of the prepared-statement table: they are rare next to the polls and
 * claims (a few per upload request, one listing every minute for the retention sweep), so the parse
 * costs nothing that matters. The multi-statement ones run in the backend's transactions
 * (th_msql__tx).
 *
 * file_operations has no foreign key to operations: that table may be rebuilt by a migration,
 * and a link to an operation that is gone is harmless (it reads as "gone").
 */
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meta_sql.h"
#include "tablehub/meta_files.h"
#include "tablehub/text.h"

#define MAX_PAGE 200

/* A growing array of fixed-size items, read row by row. */
typedef struct rows {
	char *items;
	size_t n, cap, size;
	int (*read)(void *item, const th_mrow *st);
} rows;

static int rows_add(void *ctx, const th_mrow *st, th_error *err)
{
	rows *r = ctx;

	if (r->n == r->cap) {
		size_t ncap = r->cap ? r->cap * 2 : 16;
		char *p = realloc(r->items, ncap * r->size);
		if (p == NULL)
			return th_error_set(err, TH_ENOMEM, "out of memory");
		r->items = p;
		r->cap = ncap;
	}
	memset(r->items + r->n * r->size, 0, r->size);
	if (r->read(r->items + r->n * r->size, st) < 0)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	r->n++;
	return TH_OK;
}

/* --- files ----------------------------------------------------------------------------------- */

#define FILE_COLS                                                                                  \
	"f.id, f.db_id, f.name, f.size, f.sha256, f.type, f.uploader, f.created_at, "              \
	"f.last_used_at, (SELECT count(*) FROM file_operations fo JOIN operations o ON "           \
	"o.id = fo.op_id WHERE fo.file_id = f.id AND o.state IN ('Pending', 'In Progress'))"

static int read_file_info(void *item, const th_mrow *st)
{
	th_file_info *f = item;

	th_msql__copy(f->id, sizeof(f->id), st, 0);
	f->db_id = th_msql__int(st, 1);
	th_msql__copy(f->name, sizeof(f->name), st, 2);
	f->size = (uint64_t)th_msql__int(st, 3);
	th_msql__copy(f->sha256, sizeof(f->sha256), st, 4);
	th_msql__copy(f->type, sizeof(f->type), st, 5);
	th_msql__copy(f->uploader, sizeof(f->uploader), st, 6);
	f->created_at = th_msql__int(st, 7);
	f->last_used_at = th_msql__int(st, 8);
	f->ops_unfinished = (unsigned)(int)th_msql__int(st, 9);
	return 0;
}

static int row_file(void *ctx, const th_mrow *st, th_error *err)
{
	(void)err;
	return read_file_info(ctx, st);
}

/* The length of s cut to at most max bytes without splitting a UTF-8 sequence. */
static size_t utf8_cut(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n <= max)
		return n;
	while (max > 0 && ((unsigned char)s[max] & 0xc0) == 0x80)
		max--;
	return max;
}

int th_meta_file_add(char id_out[TH_UUID_SIZE], th_meta *m, int64_t db_id, const char *name,
                     uint64_t size, const char *sha256, const char *type, const char *uploader,
                     th_error *err)
{
	th_msql *s = (th_msql *)m;
	char id[TH_UUID_SIZE], cut[TH_FILE_NAME_MAX];
	int64_t now = th_now_ms();
	int error;

	if (sha256 == NULL || strlen(sha256) != 64 || uploader == NULL || !th_name_valid(uploader))
		return th_error_set(err, TH_EINVALID, "a file needs a sha-256 and an uploader");
	if ((error = th_uuid4(id, err)) < 0)
		return error;
	name = name ? name : "";
	snprintf(cut, sizeof(cut), "%.*s", (int)utf8_cut(name, sizeof(cut) - 1), name);
	if ((error = th_msql__exec(
	             s, "insert file",
	             "INSERT INTO files(id, db_id, name, size, sha256, type, uploader, "
	             "created_at, last_used_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
	             NULL, NULL, err, "sisisssi", id, db_id, cut, (int64_t)size, sha256,
	             type ? type : "", uploader, now)) < 0)
		return error;
	memcpy(id_out, id, sizeof(id));
	return TH_OK;
}

int th_meta_file_get(th_file_info *out, th_meta *m, int64_t db_id, const char *id, th_error *err)
{
	th_msql *s = (th_msql *)m;
	th_file_info f;
	int n;

	memset(&f, 0, sizeof(f));
	if ((n = th_msql__exec(s, "read file",
	                       "SELECT " FILE_COLS " FROM files f WHERE f.id = ?1 AND f.db_id = ?2",
	                       row_file, &f, err, "si", id ? id : "", db_id)) < 0)
		return n;
	if (n == 0)
		return th_error_set(err, TH_ENOTFOUND, "file '%.64s' not found", id ? id : "");
	*out = f;
	return TH_OK;
}

int th_meta_file_list(th_file_info **items_out, size_t *n_out, char next_out[TH_PAGE_TOKEN_SIZE],
                      th_meta *m, int64_t db_id, const char *page_token, size_t limit,
                      th_error *err)
{
	th_msql *s = (th_msql *)m;
	rows r = { NULL, 0, 0, sizeof(th_file_info), read_file_info };
	int64_t offset;
	int error;

	if ((error = th_meta__page_parse(&offset, page_token, err)) < 0)
		return error;
	limit = th_meta__page_limit(limit, MAX_PAGE);
	if ((error = th_msql__exec(s, "list files",
	                           "SELECT " FILE_COLS " FROM files f WHERE f.db_id = ?1 "
	                           "ORDER BY f.created_at DESC, f.rowid DESC LIMIT ?2 OFFSET ?3",
	                           rows_add, &r, err, "iii", db_id, (int64_t)limit + 1, offset)) <
	    0) {
		free(r.items);
		return error;
	}
	th_meta__page_next(next_out, r.n > limit, offset, limit);
	*items_out = (th_file_info *)r.items;
	*n_out = r.n > limit ? limit : r.n;
	return TH_OK;
}

static int read_use(void *item, const th_mrow *st)
{
	th_file_use *u = item;

	th_msql__copy(u->op_id, sizeof(u->op_id), st, 0);
	th_msql__copy(u->kind, sizeof(u->kind), st, 1);
	u->state = th_op_state_parse(th_msql__text(st, 2));
	u->created_at = th_msql__int(st, 3);
	return 0;
}

int th_meta_file_uses(th_file_use **items_out, size_t *n_out, th_meta *m, const char *id,
                      th_error *err)
{
	th_msql *s = (th_msql *)m;
	rows r = { NULL, 0, 0, sizeof(th_file_use), read_use };
	int error;

	if ((error = th_msql__exec(
	             s, "list the operations of a file",
	             "SELECT fo.op_id, o.kind, o.state, fo.created_at FROM file_operations fo "
	             "LEFT JOIN operations o ON o.id = fo.op_id WHERE fo.file_id = ?1 "
	             "ORDER BY fo.created_at, fo.rowid",
	             rows_add, &r, err, "s", id ? id : "")) < 0) {
		free(r.items);
		return error;
	}
	*items_out = (th_file_use *)r.items;
	*n_out = r.n;
	return TH_OK;
}

int th_msql__file_link_locked(th_msql *s, const char *id, const char *op_id, th_error *err)
{
	int64_t now = th_now_ms();
	int n;

	if ((n = th_msql__exec_locked(s, "record a file's use",
	                              "UPDATE files SET last_used_at = ?2 WHERE id = ?1", NULL,
	                              NULL, err, "si", id, now)) < 0)
		return n;
	if (n == 0)
		return th_error_set(err, TH_ENOTFOUND, "file '%.64s' not found", id);
	n = th_msql__exec_locked(s, "record a file's use",
	                         "INSERT INTO file_operations(file_id, op_id, created_at) "
	                         "VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
	                         NULL, NULL, err, "ssi", id, op_id, now);
	return n < 0 ? n : TH_OK;
}

static int use_tx(th_msql *s, void *ctx, th_error *err)
{
	const char **u = ctx;

	return th_msql__file_link_locked(s, u[0], u[1], err);
}

int th_meta_file_use(th_meta *m, const char *id, const char *op_id, th_error *err)
{
	const char *u[2] = { id ? id : "", op_id ? op_id : "" };

	return th_msql__tx((th_msql *)m, use_tx, u, err);
}

int th_meta_file_of_op(th_file_info *out, th_meta *m, const char *op_id, th_error *err)
{
	th_msql *s = (th_msql *)m;
	th_file_info f;
	int n;

	memset(&f, 0, sizeof(f));
	if ((n = th_msql__exec(s, "read the file of an operation",
	                       "SELECT " FILE_COLS
	                       " FROM file_operations l JOIN files f ON f.id = l.file_id "
	                       "WHERE l.op_id = ?1 ORDER BY l.rowid LIMIT 1",
	                       row_file, &f, err, "s", op_id ? op_id : "")) < 0)
		return n;
	if (n == 0)
		return th_error_set(err, TH_ENOTFOUND, "operation '%.64s' read no file",
		                    op_id ? op_id : "");
	*out = f;
	return TH_OK;
}

static int row_count(void *ctx, const th_mrow *st, th_error *err)
{
	(void)err;
	*(int64_t *)ctx = th_msql__int(st, 0);
	return TH_OK;
}

/* Does a file record or an unfinished operation still name sha? A connection is pinned. */
static int sha_named_locked(int *named, th_msql *s, const char *sha, th_error *err)
{
	int64_t n = 0;
	int error;

	if ((error = th_msql__exec_locked(
	             s, "find the users of an upload",
	             "SELECT EXISTS (SELECT 1 FROM files WHERE sha256 = ?1) OR "
	             "EXISTS (SELECT 1 FROM operations WHERE upload_sha256 = ?1 AND "
	             "state IN ('Pending', 'In Progress'))",
	             row_count, &n, err, "s", sha)) < 0)
		return error;
	*named = n != 0;
	return TH_OK;
}

struct delete_ctx {
	int64_t db_id;
	const char *id;
	th_file_info f;
	char busy_op[TH_UUID_SIZE];
	int sha_free;
};

static int row_op_id(void *ctx, const th_mrow *st, th_error *err)
{
	(void)err;
	th_msql__copy(ctx, TH_UUID_SIZE, st, 0);
	return TH_OK;
}

static int delete_tx(th_msql *s, void *ctx, th_error *err)
{
	struct delete_ctx *d = ctx;
	int n, named = 1, error;

	if ((n = th_msql__exec_locked(s, "read file",
	                              "SELECT " FILE_COLS
	                              " FROM files f WHERE f.id = ?1 AND f.db_id = ?2",
	                              row_file, &d->f, err, "si", d->id, d->db_id)) < 0)
		return n;
	if (n == 0)
		return th_error_set(err, TH_ENOTFOUND, "file '%.64s' not found", d->id);
	if ((n = th_msql__exec_locked(
	             s, "find the operations of a file",
	             "SELECT fo.op_id FROM file_operations fo JOIN operations o ON "
	             "o.id = fo.op_id WHERE fo.file_id = ?1 AND o.state IN ('Pending', "
	             "'In Progress') LIMIT 1",
	             row_op_id, d->busy_op, err, "s", d->id)) < 0)
		return n;
	if (n > 0)
		return th_error_set(err, TH_ECONFLICT,
		                    "file '%s' is in use: operation '%s' reads it; delete it when "
		                    "that operation has ended",
		                    d->id, d->busy_op);
	if ((n = th_msql__exec_locked(s, "delete file", "DELETE FROM files WHERE id = ?1", NULL,
	                              NULL, err, "s", d->id)) < 0 ||
	    (error = sha_named_locked(&named, s, d->f.sha256, err)) < 0)
		return n < 0 ? n : error;
	d->sha_free = !named;
	return TH_OK;
}

int th_meta_file_delete(char sha_out[65], int *sha_free_out, th_meta *m, int64_t db_id,
                        const char *id, th_error *err)
{
	th_msql *s = (th_msql *)m;
	struct delete_ctx d;
	int error;

	memset(&d, 0, sizeof(d));
	d.db_id = db_id;
	d.id = id ? id : "";
	if ((error = th_msql__tx(s, delete_tx, &d, err)) < 0)
		return error;
	memcpy(sha_out, d.f.sha256, 65);
	*sha_free_out = d.sha_free;
	return TH_OK;
}

typedef struct sha_item {
	char sha[65];
} sha_item;

static int read_sha(void *item, const th_mrow *st)
{
	th_msql__copy(((sha_item *)item)->sha, 65, st, 0);
	return 0;
}

struct expire_ctx {
	int64_t before;
	rows shas; /* of the records deleted */
	size_t files;
	char (*free_shas)[65];
	size_t nfree;
};

static int expire_tx(th_msql *s, void *ctx, th_error *err)
{
	struct expire_ctx *e = ctx;
	int n;

	/* The condition is the same in both statements, inside one transaction. */
#define EXPIRED                                                                                    \
	" FROM files f WHERE f.last_used_at < ?1 AND NOT EXISTS (SELECT 1 FROM file_operations "   \
	"fo JOIN operations o ON o.id = fo.op_id WHERE fo.file_id = f.id AND o.state IN "          \
	"('Pending', 'In Progress'))"
	if ((n = th_msql__exec_locked(s, "list expired files", "SELECT DISTINCT f.sha256" EXPIRED,
	                              rows_add, &e->shas, err, "i", e->before)) < 0 ||
	    (n = th_msql__exec_locked(s, "delete expired files",
	                              "DELETE FROM files WHERE id IN (SELECT f.id" EXPIRED ")",
	                              NULL, NULL, err, "i", e->before)) < 0)
		return n;
#undef EXPIRED
	e->files = (size_t)n;
	if (e->shas.n > 0 && (e->free_shas = calloc(e->shas.n, sizeof(*e->free_shas))) == NULL)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	for (size_t i = 0; i < e->shas.n; i++) {
		const char *sha = ((sha_item *)e->shas.items)[i].sha;
		int named = 1, error;
		if ((error = sha_named_locked(&named, s, sha, err)) < 0)
			return error;
		if (!named)
			memcpy(e->free_shas[e->nfree++], sha, 65);
	}
	return TH_OK;
}

int th_meta_files_expire(char (**shas_out)[65], size_t *n_out, size_t *files_out, th_meta *m,
                         int64_t before_ms, th_error *err)
{
	th_msql *s = (th_msql *)m;
	struct expire_ctx e;
	int error;

	memset(&e, 0, sizeof(e));
	e.before = before_ms;
	e.shas.size = sizeof(sha_item);
	e.shas.read = read_sha;
	error = th_msql__tx(s, expire_tx, &e, err);
	free(e.shas.items);
	if (error < 0) {
		free(e.free_shas);
		return error;
	}
	*shas_out = e.free_shas;
	*n_out = e.nfree;
	if (files_out)
		*files_out = e.files;
	return TH_OK;
}

int th_meta_upload_named(int *named_out, th_meta *m, const char *sha, th_error *err)
{
	th_msql *s = (th_msql *)m;
	int named = 1, error;

	if ((error = th_msql__lock(s, err)) < 0)
		return error;
	error = sha_named_locked(&named, s, sha ? sha : "", err);
	th_msql__unlock(s);
	if (error == TH_OK)
		*named_out = named;
	return error;
}

int th_meta_files_drop_sha(size_t *n_out, th_meta *m, const char *sha, th_error *err)
{
	th_msql *s = (th_msql *)m;
	int n;

	if ((n = th_msql__exec(s, "delete the files of an upload",
	                       "DELETE FROM files WHERE sha256 = ?1", NULL, NULL, err, "s",
	                       sha ? sha : "")) < 0)
		return n;
	if (n_out)
		*n_out = (size_t)n;
	return TH_OK;
}

struct usage {
	int64_t bytes, count;
};

static int row_usage(void *ctx, const th_mrow *st, th_error *err)
{
	struct usage *u = ctx;

	(void)err;
	u->bytes = th_msql__int(st, 0);
	u->count = th_msql__int(st, 1);
	return TH_OK;
}

int th_meta_files_usage(uint64_t *bytes_out, uint64_t *count_out, th_meta *m, int64_t db_id,
                        th_error *err)
{
	th_msql *s = (th_msql *)m;
	struct usage u = { 0, 0 };
	int error;

	if ((error = th_msql__exec(
	             s, "sum the files' sizes",
	             "SELECT coalesce(sum(size), 0), count(*) FROM (SELECT sha256, max(size) "
	             "AS size FROM files WHERE ?1 = 0 OR db_id = ?1 GROUP BY sha256) AS u",
	             row_usage, &u, err, "i", db_id)) < 0)
		return error;
	*bytes_out = (uint64_t)u.bytes;
	*count_out = (uint64_t)u.count;
	return TH_OK;
}

/* --- tus uploads ----------------------------------------------------------------------------- */

void th_tus_info_dispose(th_tus_info *t)
{
	if (t == NULL)
		return;
	free(t->metadata);
	free(t->params);
	t->metadata = t->params = NULL;
}

int th_meta_tus_create(char id_out[TH_UUID_SIZE], th_meta *m, int64_t db_id, const char *creator,
                       uint64_t length, const char *metadata, const char *params, th_error *err)
{
	th_msql *s = (th_msql *)m;
	char id[TH_UUID_SIZE];
	int64_t now = th_now_ms();
	int error;

	if (creator == NULL || !th_name_valid(creator) || length > INT64_MAX)
		return th_error_set(err, TH_EINVALID, "an upload needs a creator and a length");
	if ((error = th_uuid4(id, err)) < 0)
		return error;
	if ((error = th_msql__exec(
	             s, "insert upload",
	             "INSERT INTO tus_uploads(id, db_id, creator, length, metadata, params, "
	             "created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
	             NULL, NULL, err, "sisissi", id, db_id, creator, (int64_t)length,
	             metadata ? metadata : "", params ? params : "{}", now)) < 0)
		return error;
	memcpy(id_out, id, sizeof(id));
	return TH_OK;
}

struct tus_read {
	th_tus_info t;
	int error;
};

static int row_tus(void *ctx, const th_mrow *st, th_error *err)
{
	th_tus_info *t = ctx;
	int error;

	th_msql__copy(t->id, sizeof(t->id), st, 0);
	t->db_id = th_msql__int(st, 1);
	th_msql__copy(t->creator, sizeof(t->creator), st, 2);
	t->length = (uint64_t)th_msql__int(st, 3);
	t->offset = (uint64_t)th_msql__int(st, 4);
	if ((error = th_msql__dup(&t->metadata, st, 5, 0, err)) < 0 ||
	    (error = th_msql__dup(&t->params, st, 6, 0, err)) < 0)
		return error;
	t->state = strcmp(th_msql__text(st, 7), "done") == 0 ? TH_TUS_DONE : TH_TUS_OPEN;
	th_msql__copy(t->file_id, sizeof(t->file_id), st, 8);
	th_msql__copy(t->op_id, sizeof(t->op_id), st, 9);
	t->created_at = th_msql__int(st, 10);
	t->updated_at = th_msql__int(st, 11);
	return TH_OK;
}

int th_meta_tus_get(th_tus_info *out, th_meta *m, int64_t db_id, const char *id, th_error *err)
{
	th_msql *s = (th_msql *)m;
	th_tus_info t;
	int n;

	memset(&t, 0, sizeof(t));
	n = th_msql__exec(
	        s, "read upload",
	        "SELECT id, db_id, creator, length, received, metadata, params, state, file_id, "
	        "op_id, created_at, updated_at FROM tus_uploads WHERE id = ?1 AND db_id = ?2",
	        row_tus, &t, err, "si", id ? id : "", db_id);
	if (n <= 0) {
		th_tus_info_dispose(&t);
		return n < 0 ? n
		             : th_error_set(err, TH_ENOTFOUND, "upload '%.64s' not found",
		                            id ? id : "");
	}
	*out = t;
	return TH_OK;
}

int th_meta_tus_set_offset(th_meta *m, const char *id, uint64_t offset, th_error *err)
{
	th_msql *s = (th_msql *)m;
	int n;

	if ((n = th_msql__exec(
	             s, "record an upload's offset",
	             "UPDATE tus_uploads SET received = ?2, updated_at = ?3 WHERE id = ?1 AND "
	             "state = 'open' AND ?2 <= length",
	             NULL, NULL, err, "sii", id ? id : "", (int64_t)offset, th_now_ms())) < 0)
		return n;
	return n == 0 ? th_error_set(err, TH_ENOTFOUND, "no open upload '%.64s'", id ? id : "")
	              : TH_OK;
}

int th_meta_tus_done(th_meta *m, const char *id, const char *file_id, const char *op_id,
                     th_error *err)
{
	th_msql *s = (th_msql *)m;
	int n;

	if ((n = th_msql__exec(
	             s, "finish an upload",
	             "UPDATE tus_uploads SET state = 'done', received = length, file_id = ?2, "
	             "op_id = ?3, updated_at = ?4 WHERE id = ?1 AND state = 'open'",
	             NULL, NULL, err, "sssi", id ? id : "", file_id ? file_id : "",
	             op_id ? op_id : "", th_now_ms())) < 0)
		return n;
	return n == 0 ? th_error_set(err, TH_ENOTFOUND, "no open upload '%.64s'", id ? id : "")
	              : TH_OK;
}

int th_meta_tus_delete(th_meta *m, const char *id, th_error *err)
{
	th_msql *s = (th_msql *)m;
	int n;

	if ((n = th_msql__exec(s, "delete upload", "DELETE FROM tus_uploads WHERE id = ?1", NULL,
	                       NULL, err, "s", id ? id : "")) < 0)
		return n;
	return n == 0 ? th_error_set(err, TH_ENOTFOUND, "upload '%.64s' not found", id ? id : "")
	              : TH_OK;
}

typedef struct id_item {
	char id[TH_UUID_SIZE];
} id_item;

static int read_id(void *item, const th_mrow *st)
{
	th_msql__copy(((id_item *)item)->id, TH_UUID_SIZE, st, 0);
	return 0;
}

int th_meta_tus_stale(char (**ids_out)[TH_UUID_SIZE], size_t *n_out, th_meta *m, int64_t before_ms,
                      th_error *err)
{
	th_msql *s = (th_msql *)m;
	rows r = { NULL, 0, 0, sizeof(id_item), read_id };
	int error;

	if ((error = th_msql__exec(
	             s, "list stale uploads",
	             "SELECT id FROM tus_uploads WHERE updated_at < ?1 ORDER BY updated_at",
	             rows_add, &r, err, "i", before_ms)) < 0) {
		free(r.items);
		return error;
	}
	*ids_out = (char(*)[TH_UUID_SIZE])(void *)r.items;
	*n_out = r.n;
	return TH_OK;
}

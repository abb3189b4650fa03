/* query.c: read-only SQL at any ref, over snapshots cached in DIR/cache (see
 * include/tablehub/query.h), and tables streamed as CSV.
 *
 * A query resolves its ref to a commit, and the commit to the id of its tables/ tree, which names
 * the snapshot file: DIR/cache/<owner>/<db>/<tables-oid>.sqlite. Two commits with the same tables
 * (a branch and the tag on it; a merge that changed nothing) share the file.
 *
 * DESIGN
 * - Building. A missing snapshot is built into a temporary file that is renamed into place, so a
 *   reader never sees half a snapshot. If a recent ancestor (the first `ancestor_depth` commits
 *   of the history) has a snapshot, that file is brought up to date table by table: a table whose
 *   tree is unchanged is left alone, one whose schema is unchanged gets the rows th_diff_rows
 *   reports, others are rebuilt; dropped tables are dropped. Otherwise every row is read from git
 *   and inserted. Either way rows go in key order.
 * - Copy or take over. The ancestor's file is copied (a reflink, else copy_file_range) when it
 *   holds main's head (see is_main_head) or a query is reading it; otherwise it is taken over
 *   (th_snap_steal) and changed in place. Writing 120 MB anew costs ~0.3 s on the ext4 this was
 *   measured on; a one-row change in place costs a few ms. A commit that loses its snapshot this
 *   way gets it back when asked. Import branches, left behind after their merge, would protect
 *   nearly every snapshot if "some branch points at it" were the rule, so the rule is main's.
 * - Once. Threads of this process that want the same missing snapshot wait on one condition
 *   variable while the first builds it; across processes an flock on <file>.building does the
 *   same. Whoever gets the lock first checks again whether the file appeared meanwhile.
 * - Forgetting. Each use sets the file's atime (the mtime stays the content's); after a build, if
 *   the snapshots under DIR/cache exceed the budget, the least recently used go first (never the
 *   one just built). A snapshot deleted under a running query stays readable through its open
 *   descriptor; a query that finds its file gone between the check and the open builds it again.
 * - Crashes. A snapshot is written without syncs, then synced once before its rename, so a power
 *   loss leaves it whole or missing. Temporary files a crash leaves behind are removed by the next
 *   eviction pass once they are an hour old.
 */
#define _GNU_SOURCE /* copy_file_range */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tablehub/text.h"
#include "tablehub/csv.h"
#include "tablehub/datadir.h"
#include "tablehub/diff.h"
#include "tablehub/log.h"
#include "tablehub/merge.h"
#include "tablehub/query.h"
#include "tablehub/repo.h"
#include "tablehub/table.h"

void th_query_opts_init(th_query_opts *o)
{
	o->max_rows = TH_QUERY_MAX_ROWS;
	o->time_ms = TH_QUERY_TIME_MS;
	o->heap_bytes = TH_QUERY_HEAP_BYTES;
	o->cache_budget = TH_QUERY_CACHE_BUDGET;
	o->ancestor_depth = TH_QUERY_ANCESTOR_DEPTH;
}

int th_query_http_status(int code)
{
	switch (code) {
	case TH_OK:
		return 200;
	case TH_EINVALID:
	case TH_ELIMIT:
		return 400;
	case TH_ENOTFOUND:
		return 404;
	case TH_EBUSY:
		return 503;
	default:
		return 500;
	}
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int file_exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* --- resolving a target ----------------------------------------------------------------------- */

/* Refs are branch and tag names and commit ids, plus git's `~N` and `^N` suffixes; anything else
 * revparse understands (`@{...}`, `:/text`, `^{tree}`) is refused. */
static int ref_valid(const char *ref)
{
	const char *p;

	if (ref[0] == '\0' || ref[0] == '-' || ref[0] == '/' || strstr(ref, "..") != NULL ||
	    strlen(ref) > 255)
		return 0;
	for (p = ref; *p; p++) {
		char c = *p;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      strchr("_-./~^", c) != NULL))
			return 0;
	}
	return 1;
}

static const char *target_ref(const th_query_target *t)
{
	return t->ref && t->ref[0] ? t->ref : "main";
}

/* What a target resolves to. */
typedef struct resolved {
	th_repo *repo;
	th_oid commit;
	th_oid root;   /* the commit's tree */
	th_oid tables; /* its tables/ tree, or the empty tree */
} resolved;

static int target_open(th_repo **out, const th_query_target *t, th_error *err)
{
	return th_datadir_repo_open(out, t->datadir, t->owner, t->db, 0, err);
}

static int tables_tree(th_oid *out, th_repo *repo, const th_oid *root, th_error *err)
{
	int is_tree = 0, error;

	error = th_repo_tree_lookup(out, &is_tree, repo, root, "tables", err);
	if (error == TH_ENOTFOUND || (error == TH_OK && !is_tree)) {
		th_repo_empty_tree(out);
		return TH_OK;
	}
	return error;
}

static int target_resolve(resolved *r, const th_query_target *t, th_error *err)
{
	th_commit_info ci;
	const char *ref = target_ref(t);
	int error;

	memset(r, 0, sizeof(*r));
	memset(&ci, 0, sizeof(ci));
	if (!ref_valid(ref))
		return th_error_set(err, TH_EINVALID,
		                    "bad ref '%s': expected a branch, a tag or a commit id", ref);
	if ((error = target_open(&r->repo, t, err)) < 0)
		return error;
	if ((error = th_repo_resolve(&r->commit, r->repo, ref, err)) < 0) {
		if (error == TH_ENOTFOUND)
			error = th_error_set(err, TH_ENOTFOUND,
			                     "ref '%s' not found in database '%s/%s'", ref,
			                     t->owner, t->db);
		goto fail;
	}
	if ((error = th_repo_commit_read(&ci, r->repo, &r->commit, err)) < 0)
		goto fail;
	r->root = ci.tree;
	th_commit_info_dispose(&ci);
	if ((error = tables_tree(&r->tables, r->repo, &r->root, err)) < 0)
		goto fail;
	return TH_OK;
fail:
	th_repo_free(r->repo);
	r->repo = NULL;
	return error;
}

/* DIR/cache/<owner>/<db> */
static int cache_dir(th_buf *out, const th_query_target *t, th_error *err)
{
	return th_buf_printf(out, err, "%s/cache/%s/%s", t->datadir, t->owner, t->db);
}

static int snapshot_path(th_buf *out, const char *dir, const th_oid *tables, th_error *err)
{
	char hex[41];

	th_oid_fmt(hex, tables);
	return th_buf_printf(out, err, "%s/%s.sqlite", dir, hex);
}

/* --- building --------------------------------------------------------------------------------- */

/* SQLite reserves names that start with "sqlite_" for itself: such a table (a valid tablehub name)
 * cannot be in a snapshot, and is left out of it rather than making the whole database
 * unqueryable. */
static int sql_name_ok(const char *name)
{
	if (strncasecmp(name, "sqlite_", 7) != 0)
		return 1;
	TH_LOG(TH_LOG_WARN, "table '%s' left out of the query snapshot: SQLite reserves the name",
	       name);
	return 0;
}

static int load_table(th_snap *snap, th_repo *repo, const th_table *t, const char *name,
                      th_error *err)
{
	th_snap_table *st = NULL;
	th_row_iter *it = NULL;
	th_cells cells = TH_CELLS_INIT;
	th_row row;
	int error;

	if ((error = th_snap_table_create(&st, snap, name, &t->schema, err)) < 0)
		goto cleanup;
	if (th_oid_is_zero(&t->rows))
		goto cleanup;
	if ((error = th_row_iter_new(&it, repo, t, err)) < 0)
		goto cleanup;
	while ((error = th_row_iter_next(it, &row, err)) > 0) {
		if ((error = th_row_decode(&cells, &t->schema, row.line, row.linelen, err)) < 0 ||
		    (error = th_snap_put(st, cells.c, 1, err)) < 0)
			goto cleanup;
	}
cleanup:
	th_row_iter_free(it);
	th_cells_dispose(&cells);
	th_snap_table_free(st);
	return error;
}

static int build_scratch(const char *tmp, th_repo *repo, const th_oid *root, th_error *err)
{
	th_snap *snap = NULL;
	char **names = NULL;
	size_t i;
	int error;

	if ((error = th_table_names(&names, repo, root, err)) < 0 ||
	    (error = th_snap_create(&snap, tmp, err)) < 0)
		goto cleanup;
	for (i = 0; names[i] != NULL; i++) {
		th_table t = TH_TABLE_INIT;
		if (!sql_name_ok(names[i]))
			continue;
		if ((error = th_table_load(&t, repo, root, names[i], err)) == 0)
			error = load_table(snap, repo, &t, names[i], err);
		th_table_dispose(&t);
		if (error < 0)
			goto cleanup;
	}
	error = th_snap_commit(snap, err);
	snap = NULL;
cleanup:
	th_snap_free(snap);
	th_strv_free(names);
	return error;
}

typedef struct apply_ctx {
	th_snap_table *st;
	const th_schema *schema;
	th_cells cells;
	th_error *err;
} apply_ctx;

static int apply_change(void *payload, const th_row_change *c)
{
	apply_ctx *a = payload;
	uint64_t count = a->schema->npk > 0 ? 1 : c->count;
	int error;

	if (c->kind == TH_CHANGE_REMOVED) {
		if ((error = th_row_decode(&a->cells, a->schema, c->old_line, c->old_len, a->err)) <
		    0)
			return error;
		return th_snap_delete(a->st, a->cells.c, count, a->err);
	}
	if (a->schema->npk == 0 && c->kind == TH_CHANGE_MODIFIED && c->old_line != NULL) {
		/* Not reported for keyless tables (their changes are additions and removals);
		 * handled anyway: the old copy goes, the new one comes. */
		if ((error = th_row_decode(&a->cells, a->schema, c->old_line, c->old_len, a->err)) <
		            0 ||
		    (error = th_snap_delete(a->st, a->cells.c, count, a->err)) < 0)
			return error;
	}
	if ((error = th_row_decode(&a->cells, a->schema, c->new_line, c->new_len, a->err)) < 0)
		return error;
	return th_snap_put(a->st, a->cells.c, count, a->err);
}

static int in_list(char **v, const char *s)
{
	for (; v && *v; v++)
		if (strcmp(*v, s) == 0)
			return 1;
	return 0;
}

/* Copy src to dst (created or truncated): a reflink if the file system can, else in-kernel. */
static int copy_file(const char *src, const char *dst, th_error *err)
{
	int in = -1, out = -1, error = TH_OK;
	struct stat st;
	char buf[1 << 16];

	if ((in = open(src, O_RDONLY | O_CLOEXEC)) < 0) {
		error = th_error_set(err, errno == ENOENT ? TH_ENOTFOUND : TH_ESTORE,
		                     "cannot open '%s': %s", src, strerror(errno));
		goto cleanup;
	}
	if (fstat(in, &st) < 0 ||
	    (out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0) {
		error = th_error_set(err, TH_ESTORE, "cannot copy '%s': %s", src, strerror(errno));
		goto cleanup;
	}
	if (ioctl(out, FICLONE, in) == 0)
		goto cleanup;
	for (off_t done = 0; done < st.st_size;) {
		ssize_t n = copy_file_range(in, NULL, out, NULL, (size_t)(st.st_size - done), 0);
		if (n > 0) {
			done += n;
			continue;
		}
		if (n == 0)
			break;
		if (errno == EINTR)
			continue;
		/* No copy_file_range here (old kernel, odd file system): plain reads and writes
		 * from where it stopped. */
		if (errno != EXDEV && errno != ENOSYS && errno != EOPNOTSUPP && errno != EINVAL) {
			error = th_error_set(err, TH_ESTORE, "cannot copy '%s': %s", src,
			                     strerror(errno));
			goto cleanup;
		}
		for (;;) {
			ssize_t r = pread(in, buf, sizeof(buf), done), w = 0;
			if (r == 0)
				goto cleanup;
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0 || (w = pwrite(out, buf, (size_t)r, done)) != r) {
				error = th_error_set(err, TH_ESTORE, "cannot copy '%s': %s", src,
				                     w < 0 || r < 0 ? strerror(errno)
				                                    : "short write");
				goto cleanup;
			}
			done += r;
		}
	}
cleanup:
	if (in >= 0)
		close(in);
	if (out >= 0 && close(out) < 0 && error == TH_OK)
		error = th_error_set(err, TH_ESTORE, "cannot write '%s': %s", dst, strerror(errno));
	return error;
}

/* Bring the snapshot of tree `old_root` up to tree `root` at `tmp`: a copy of base_path, or, when
 * base_path is NULL, the file already at tmp (taken over). */
static int build_advance(const char *tmp, const char *base_path, th_repo *repo,
                         const th_oid *old_root, const th_oid *root, th_error *err)
{
	th_snap *snap = NULL;
	char **old_names = NULL, **names = NULL;
	apply_ctx a;
	size_t i;
	int error;

	memset(&a, 0, sizeof(a));
	a.err = err;
	if ((error = th_table_names(&old_names, repo, old_root, err)) < 0 ||
	    (error = th_table_names(&names, repo, root, err)) < 0 ||
	    (base_path != NULL && (error = copy_file(base_path, tmp, err)) < 0) ||
	    (error = th_snap_open(&snap, tmp, err)) < 0)
		goto cleanup;
	for (i = 0; old_names[i] != NULL; i++)
		if (!in_list(names, old_names[i]) && strncasecmp(old_names[i], "sqlite_", 7) != 0 &&
		    (error = th_snap_table_drop(snap, old_names[i], err)) < 0)
			goto cleanup;
	for (i = 0; names[i] != NULL; i++) {
		th_table t = TH_TABLE_INIT, old = TH_TABLE_INIT;
		int had = in_list(old_names, names[i]);

		if (!sql_name_ok(names[i]))
			continue;
		if ((error = th_table_load(&t, repo, root, names[i], err)) == 0 && had)
			error = th_table_load(&old, repo, old_root, names[i], err);
		if (error < 0) {
			/* fall through to cleanup below */
		} else if (had && th_oid_equal(&old.table_tree, &t.table_tree)) {
			/* unchanged */
		} else if (had && th_schema_equal(&old.schema, &t.schema) &&
		           !th_oid_is_zero(&old.rows)) {
			a.schema = &t.schema;
			if ((error = th_snap_table_open(&a.st, snap, names[i], &t.schema, err)) ==
			    0)
				error = th_diff_rows(repo, &t.schema, &old.rows, &t.rows,
				                     apply_change, &a, err);
			th_snap_table_free(a.st);
			a.st = NULL;
		} else {
			error = load_table(snap, repo, &t, names[i], err);
		}
		th_table_dispose(&old);
		th_table_dispose(&t);
		if (error < 0)
			goto cleanup;
	}
	error = th_snap_commit(snap, err);
	snap = NULL;
cleanup:
	th_snap_free(snap);
	th_cells_dispose(&a.cells);
	th_strv_free(old_names);
	th_strv_free(names);
	return error;
}

/* Written without syncs while it was built, the file reaches the disk before its rename: after a
 * power loss a snapshot is whole or missing, never a torn file under its final name. */
static int sync_file(const char *path, th_error *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), error = TH_OK;

	if (fd < 0 || fsync(fd) < 0)
		error = th_error_set(err, TH_ESTORE, "cannot sync '%s': %s", path, strerror(errno));
	if (fd >= 0)
		close(fd);
	return error;
}

/* The most recent commit within `depth` of the history whose tables have a snapshot. */
typedef struct ancestor_search {
	th_repo *repo;
	const char *dir;
	const th_oid *self;
	th_oid root;   /* the found commit's tree */
	th_oid tables; /* its tables/ tree: the snapshot's key */
	th_buf path;
} ancestor_search;

static int ancestor_visit(const th_commit_info *ci, void *payload)
{
	ancestor_search *s = payload;
	th_oid tables;

	if (tables_tree(&tables, s->repo, &ci->tree, NULL) < 0 || th_oid_equal(&tables, s->self))
		return 0;
	th_buf_clear(&s->path);
	if (snapshot_path(&s->path, s->dir, &tables, NULL) < 0)
		return 0;
	if (!file_exists(s->path.ptr))
		return 0;
	s->root = ci->tree;
	s->tables = tables;
	return 1;
}

/* Is `tables` the tables/ tree of main's head? That snapshot is the one most asked for (a query
 * without a ref reads main, and a pull request's branch grows from it), so it is copied, never
 * taken over. Other snapshots an ancestor search finds belong to commits their branch has left
 * behind (the branch moved on, or was merged), and are taken over; if one is asked for again it
 * is built again. In doubt (an error), it is kept. */
static int is_main_head(th_repo *repo, const th_oid *tables)
{
	th_commit_info ci;
	th_oid head, t;
	int error;

	memset(&ci, 0, sizeof(ci));
	error = th_repo_branch_get(&head, repo, "main", NULL);
	if (error == TH_ENOTFOUND)
		return 0;
	if (error < 0 || th_repo_commit_read(&ci, repo, &head, NULL) < 0)
		return 1;
	error = tables_tree(&t, repo, &ci.tree, NULL);
	th_commit_info_dispose(&ci);
	return error < 0 || th_oid_equal(&t, tables);
}

/* Build the snapshot at `path` while holding the cross-process lock. */
static int build(th_snap_origin *origin, const char *path, const char *dir, const resolved *r,
                 const th_query_opts *o, th_error *err)
{
	static atomic_uint seq;
	ancestor_search s;
	th_oid empty;
	int steal_fd = -1;
	th_buf tmp = TH_BUF_INIT;
	int error, found = 0;

	memset(&s, 0, sizeof(s));
	if ((error = th_buf_printf(&tmp, err, "%s.tmp.%ld.%u", path, (long)getpid(),
	                           atomic_fetch_add(&seq, 1))) < 0)
		return error;
	th_repo_empty_tree(&empty);
	if (o->ancestor_depth > 0 && !th_oid_equal(&r->tables, &empty)) {
		s.repo = r->repo;
		s.dir = dir;
		s.self = &r->tables;
		found = th_repo_log(r->repo, &r->commit, o->ancestor_depth + 1, ancestor_visit, &s,
		                    NULL) == 1;
	}
	error = TH_ENOTFOUND;
	if (found) {
		th_error aerr;
		memset(&aerr, 0, sizeof(aerr));
		/* An ancestor that is not main's head is taken over when nobody reads it: a copy
		 * of a large snapshot costs far more than a small change. */
		if (!is_main_head(r->repo, &s.tables) &&
		    th_snap_steal(&steal_fd, s.path.ptr, tmp.ptr, NULL) == TH_OK)
			error = build_advance(tmp.ptr, NULL, r->repo, &s.root, &r->root, &aerr);
		else
			error = build_advance(tmp.ptr, s.path.ptr, r->repo, &s.root, &r->root,
			                      &aerr);
		if (error == TH_OK)
			*origin = TH_SNAP_ADVANCED;
		else
			TH_LOG(TH_LOG_WARN, "snapshot from ancestor failed, building anew: %s",
			       aerr.msg);
	}
	if (error != TH_OK) {
		error = build_scratch(tmp.ptr, r->repo, &r->root, err);
		*origin = TH_SNAP_BUILT;
	}
	if (error == TH_OK)
		error = sync_file(tmp.ptr, err);
	if (error == TH_OK && rename(tmp.ptr, path) < 0)
		error = th_error_set(err, TH_ESTORE, "cannot rename snapshot to '%s': %s", path,
		                     strerror(errno));
	if (error < 0)
		unlink(tmp.ptr);
	if (steal_fd >= 0)
		close(steal_fd); /* after the rename: waiting queries of the old path retry */
	th_buf_dispose(&s.path);
	th_buf_dispose(&tmp);
	return error;
}

/* Threads of this process building a snapshot, by path. */
typedef struct building {
	char *path;
	struct building *next;
} building;

static pthread_mutex_t sf_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t sf_cv = PTHREAD_COND_INITIALIZER;
static building *sf_list;

static int sf_busy(const char *path)
{
	building *b;

	for (b = sf_list; b; b = b->next)
		if (strcmp(b->path, path) == 0)
			return 1;
	return 0;
}

static void sf_done(const char *path)
{
	building **pp, *b;

	pthread_mutex_lock(&sf_mu);
	for (pp = &sf_list; (b = *pp) != NULL; pp = &b->next) {
		if (strcmp(b->path, path) == 0) {
			*pp = b->next;
			free(b->path);
			free(b);
			break;
		}
	}
	pthread_cond_broadcast(&sf_cv);
	pthread_mutex_unlock(&sf_mu);
}

/* --- the cache budget ------------------------------------------------------------------------- */

typedef struct cache_file {
	char *path;
	off_t size;
	time_t used; /* atime: set on each use */
} cache_file;

typedef struct cache_scan {
	cache_file *v;
	size_t n, cap;
	uint64_t total;
} cache_scan;

static void scan_dir(cache_scan *s, const char *dir, int depth, time_t now)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		char path[4096];
		struct stat st;

		if (e->d_name[0] == '.')
			continue;
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) >= sizeof(path) ||
		    lstat(path, &st) < 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			if (depth < 2)
				scan_dir(s, path, depth + 1, now);
			continue;
		}
		if (!S_ISREG(st.st_mode) || depth != 2)
			continue;
		if (strstr(e->d_name, ".tmp.") != NULL) {
			if (now - st.st_mtime > 3600) /* left by a crash */
				unlink(path);
			continue;
		}
		if (strlen(e->d_name) < 7 ||
		    strcmp(e->d_name + strlen(e->d_name) - 7, ".sqlite") != 0)
			continue;
		if (s->n == s->cap) {
			size_t cap = s->cap ? s->cap * 2 : 64;
			cache_file *v = realloc(s->v, cap * sizeof(*v));
			if (v == NULL)
				break;
			s->v = v;
			s->cap = cap;
		}
		if ((s->v[s->n].path = strdup(path)) == NULL)
			break;
		s->v[s->n].size = st.st_size;
		s->v[s->n].used = st.st_atime;
		s->total += (uint64_t)st.st_size;
		s->n++;
	}
	closedir(d);
}

static int by_use(const void *a, const void *b)
{
	const cache_file *x = a, *y = b;

	return x->used < y->used ? -1 : x->used > y->used;
}

/* Delete least recently used snapshots under DIR/cache until they fit `budget`; never `keep`. */
static void cache_evict(const char *datadir, uint64_t budget, const char *keep)
{
	cache_scan s;
	char root[4096];
	size_t i;

	memset(&s, 0, sizeof(s));
	snprintf(root, sizeof(root), "%s/cache", datadir);
	scan_dir(&s, root, 0, time(NULL));
	if (budget > 0 && s.total > budget) {
		qsort(s.v, s.n, sizeof(*s.v), by_use);
		for (i = 0; i < s.n && s.total > budget; i++) {
			if (keep != NULL && strcmp(s.v[i].path, keep) == 0)
				continue;
			if (unlink(s.v[i].path) == 0) {
				s.total -= (uint64_t)s.v[i].size;
				TH_LOG(TH_LOG_INFO, "snapshot evicted path=%s", s.v[i].path);
			}
		}
	}
	for (i = 0; i < s.n; i++)
		free(s.v[i].path);
	free(s.v);
}

/* --- making a snapshot ready ------------------------------------------------------------------ */

static int ensure(th_snap_origin *origin, const char *path, const char *dir, const resolved *r,
                  const th_query_target *t, const th_query_opts *o, th_error *err)
{
	building *b = NULL;
	th_buf lock = TH_BUF_INIT;
	int fd = -1, error = TH_OK, built = 0;

	*origin = TH_SNAP_CACHED;
	if (file_exists(path))
		goto touch;
	pthread_mutex_lock(&sf_mu);
	while (sf_busy(path))
		pthread_cond_wait(&sf_cv, &sf_mu);
	if (file_exists(path)) {
		pthread_mutex_unlock(&sf_mu);
		goto touch;
	}
	if ((b = calloc(1, sizeof(*b))) == NULL || (b->path = strdup(path)) == NULL) {
		pthread_mutex_unlock(&sf_mu);
		free(b);
		return th_error_set(err, TH_ENOMEM, "out of memory");
	}
	b->next = sf_list;
	sf_list = b;
	pthread_mutex_unlock(&sf_mu);

	if ((error = th_mkdir_p(dir, err)) < 0 ||
	    (error = th_buf_printf(&lock, err, "%s.building", path)) < 0)
		goto done;
	if ((fd = open(lock.ptr, O_RDWR | O_CREAT | O_CLOEXEC, 0644)) < 0) {
		error = th_error_set(err, TH_ESTORE, "cannot open '%s': %s", lock.ptr,
		                     strerror(errno));
		goto done;
	}
	while (flock(fd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			error = th_error_set(err, TH_ESTORE, "cannot lock '%s': %s", lock.ptr,
			                     strerror(errno));
			goto done;
		}
	}
	if (!file_exists(path)) {
		error = build(origin, path, dir, r, o, err);
		built = error == TH_OK;
		unlink(lock.ptr); /* under the lock: a waiter on the old file finds `path` */
	}
done:
	if (fd >= 0)
		close(fd);
	sf_done(path);
	th_buf_dispose(&lock);
	if (built) {
		char hex[41];
		th_oid_fmt(hex, &r->tables);
		TH_LOG(TH_LOG_INFO, "snapshot built db=%s/%s tables=%s from=%s", t->owner, t->db,
		       hex, *origin == TH_SNAP_ADVANCED ? "ancestor" : "rows");
		cache_evict(t->datadir, o->cache_budget, path);
	}
	return error;
touch: /* The LRU clock is the atime; the mtime stays the content's (kept connections check it). A
        * failure only ages the file. */
	utimensat(AT_FDCWD, path, (struct timespec[2]){ { 0, UTIME_NOW }, { 0, UTIME_OMIT } }, 0);
	return TH_OK;
}

static int snapshot(th_buf *path_out, th_query_info *info, resolved *r, const th_query_target *t,
                    const th_query_opts *o, th_error *err)
{
	th_buf dir = TH_BUF_INIT;
	th_snap_origin origin = TH_SNAP_CACHED;
	int error;

	if ((error = cache_dir(&dir, t, err)) < 0 ||
	    (error = snapshot_path(path_out, dir.ptr, &r->tables, err)) < 0 ||
	    (error = ensure(&origin, path_out->ptr, dir.ptr, r, t, o, err)) < 0)
		goto cleanup;
	if (info != NULL) {
		th_oid_fmt(info->commit, &r->commit);
		th_oid_fmt(info->tables_tree, &r->tables);
		info->origin = origin;
	}
cleanup:
	th_buf_dispose(&dir);
	return error;
}

int th_query_snapshot(th_buf *path_out, th_query_info *info, const th_query_target *t,
                      const th_query_opts *o, th_error *err)
{
	th_query_opts defaults;
	resolved r;
	int error;

	if (o == NULL) {
		th_query_opts_init(&defaults);
		o = &defaults;
	}
	if ((error = target_resolve(&r, t, err)) < 0)
		return error;
	error = snapshot(path_out, info, &r, t, o, err);
	th_repo_free(r.repo);
	return error;
}

int th_query_run(th_query_info *info, const th_query_target *t, const char *sql,
                 const th_query_opts *o, const th_sql_sink *sink, th_error *err)
{
	th_query_opts defaults;
	th_query_info local;
	th_sql_limits lim;
	th_buf path = TH_BUF_INIT;
	resolved r;
	double t0 = now_ms(), t1;
	int error, attempt;

	if (info == NULL)
		info = &local;
	memset(info, 0, sizeof(*info));
	if (o == NULL) {
		th_query_opts_init(&defaults);
		o = &defaults;
	}
	if (sql == NULL)
		return th_error_set(err, TH_EINVALID, "empty query");
	if ((error = target_resolve(&r, t, err)) < 0)
		return error;
	lim.max_rows = o->max_rows;
	lim.time_ms = o->time_ms;
	lim.heap_bytes = o->heap_bytes;
	/* A snapshot evicted between the check and the open is built again, once. */
	for (attempt = 0; attempt < 2; attempt++) {
		th_buf_clear(&path);
		if ((error = snapshot(&path, info, &r, t, o, err)) < 0)
			break;
		t1 = now_ms();
		info->build_ms = t1 - t0;
		error = th_snap_query(&info->truncated, path.ptr, sql, &lim, sink, err);
		info->query_ms = now_ms() - t1;
		if (error != TH_ENOTFOUND)
			break;
	}
	th_repo_free(r.repo);
	th_buf_dispose(&path);
	return error;
}

/* --- DoltHub's JSON ------------------------------------------------------------------------- */

/* A JSON string of s[0..len), with bytes that are not UTF-8 replaced by U+FFFD. */
static int put_json_str(th_buf *b, const char *s, size_t len, th_error *err)
{
	th_buf clean = TH_BUF_INIT;
	size_t bad, i = 0;
	int error;

	if (th_utf8_valid(s, len, &bad))
		return th_buf_put_json_string(b, s, len, err);
	while (i < len) {
		if ((error = th_buf_put(&clean, s + i, bad, err)) < 0 ||
		    (error = th_buf_puts(&clean, "\xef\xbf\xbd", err)) < 0)
			goto cleanup;
		i += bad + 1;
		if (i >= len || th_utf8_valid(s + i, len - i, &bad)) {
			if (i < len && (error = th_buf_put(&clean, s + i, len - i, err)) < 0)
				goto cleanup;
			break;
		}
	}
	error = th_buf_put_json_string(b, clean.ptr ? clean.ptr : "", clean.size, err);
cleanup:
	th_buf_dispose(&clean);
	return error;
}

static int put_json_cstr(th_buf *b, const char *s, th_error *err)
{
	return put_json_str(b, s ? s : "", s ? strlen(s) : 0, err);
}

typedef struct json_sink {
	th_buf schema; /* the members of "schema" */
	th_buf rows;   /* the members of "rows" */
	th_buf keys;   /* each column name as a JSON string followed by ':' and a NUL */
	size_t *key_at;
	size_t ncols;
	uint64_t nrows;
} json_sink;

static int json_columns(void *payload, size_t n, const char *const *names, const char *const *types,
                        th_error *err)
{
	json_sink *j = payload;
	size_t i;
	int error;

	if ((j->key_at = calloc(n + 1, sizeof(*j->key_at))) == NULL)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	j->ncols = n;
	for (i = 0; i < n; i++) {
		j->key_at[i] = j->keys.size;
		if ((i && (error = th_buf_putc(&j->schema, ',', err)) < 0) ||
		    (error = th_buf_puts(&j->schema, "{\"columnName\":", err)) < 0 ||
		    (error = put_json_cstr(&j->schema, names[i], err)) < 0 ||
		    (error = th_buf_puts(&j->schema, ",\"columnType\":", err)) < 0 ||
		    (error = put_json_cstr(&j->schema, types[i], err)) < 0 ||
		    (error = th_buf_putc(&j->schema, '}', err)) < 0 ||
		    (error = put_json_cstr(&j->keys, names[i], err)) < 0 ||
		    (error = th_buf_putc(&j->keys, ':', err)) < 0 ||
		    (error = th_buf_putc(&j->keys, '\0', err)) < 0)
			return error;
	}
	return TH_OK;
}

static int json_row(void *payload, const th_cell *cells, size_t n, th_error *err)
{
	json_sink *j = payload;
	size_t i;
	int error;

	if ((j->nrows && (error = th_buf_putc(&j->rows, ',', err)) < 0) ||
	    (error = th_buf_putc(&j->rows, '{', err)) < 0)
		return error;
	for (i = 0; i < n && i < j->ncols; i++) {
		if ((i && (error = th_buf_putc(&j->rows, ',', err)) < 0) ||
		    (error = th_buf_puts(&j->rows, j->keys.ptr + j->key_at[i], err)) < 0)
			return error;
		if (cells[i].is_null)
			error = th_buf_puts(&j->rows, "null", err);
		else
			error = put_json_str(&j->rows, cells[i].s, cells[i].len, err);
		if (error < 0)
			return error;
	}
	j->nrows++;
	return th_buf_putc(&j->rows, '}', err);
}

static int json_head(th_buf *out, const char *status, const char *message, const th_query_target *t,
                     const char *sql, th_error *err)
{
	int error;

	if ((error = th_buf_puts(out, "{\"query_execution_status\":", err)) < 0 ||
	    (error = put_json_cstr(out, status, err)) < 0 ||
	    (error = th_buf_puts(out, ",\"query_execution_message\":", err)) < 0 ||
	    (error = put_json_cstr(out, message, err)) < 0 ||
	    (error = th_buf_puts(out, ",\"repository_owner\":", err)) < 0 ||
	    (error = put_json_cstr(out, t->owner, err)) < 0 ||
	    (error = th_buf_puts(out, ",\"repository_name\":", err)) < 0 ||
	    (error = put_json_cstr(out, t->db, err)) < 0 ||
	    (error = th_buf_puts(out, ",\"commit_ref\":", err)) < 0 ||
	    (error = put_json_cstr(out, target_ref(t), err)) < 0 ||
	    (error = th_buf_puts(out, ",\"sql_query\":", err)) < 0)
		return error;
	return put_json_cstr(out, sql, err);
}

static int json_error(th_buf *out, const th_query_target *t, const char *sql, int code,
                      const char *msg)
{
	int error;

	if ((error = json_head(out, "Error", msg, t, sql, NULL)) < 0 ||
	    (error = th_buf_puts(out, ",\"status\":\"Error\",\"message\":", NULL)) < 0 ||
	    (error = put_json_cstr(out, msg, NULL)) < 0 ||
	    (error = th_buf_printf(out, NULL, ",\"code\":\"%s\"}", th_code_name(code))) < 0)
		return error;
	return TH_OK;
}

/* Without a query: the tables at the ref, as MySQL's SHOW TABLES names its column. */
static int json_tables(json_sink *j, const th_query_target *t, th_error *err)
{
	resolved r;
	char **names = NULL, col[80];
	const char *cols[1], *types[1] = { "text" };
	size_t i;
	int error;

	if ((error = target_resolve(&r, t, err)) < 0)
		return error;
	snprintf(col, sizeof(col), "Tables_in_%s", t->db);
	cols[0] = col;
	if ((error = th_table_names(&names, r.repo, &r.root, err)) < 0 ||
	    (error = json_columns(j, 1, cols, types, err)) < 0)
		goto cleanup;
	for (i = 0; names[i] != NULL; i++) {
		th_cell c = { names[i], strlen(names[i]), 0 };
		if ((error = json_row(j, &c, 1, err)) < 0)
			goto cleanup;
	}
cleanup:
	th_strv_free(names);
	th_repo_free(r.repo);
	return error;
}

int th_query_json(th_buf *out, th_query_info *info, const th_query_target *t, const char *sql,
                  const th_query_opts *o, th_error *err)
{
	th_sql_sink sink;
	th_query_info local;
	json_sink j;
	th_error qerr;
	const char *status = "Success";
	char message[128] = "";
	int error, listing = sql == NULL || sql[0] == '\0';
	size_t start = out->size;

	if (info == NULL)
		info = &local;
	memset(info, 0, sizeof(*info));
	memset(&j, 0, sizeof(j));
	memset(&qerr, 0, sizeof(qerr));
	sink.columns = json_columns;
	sink.row = json_row;
	sink.payload = &j;
	if (listing)
		error = json_tables(&j, t, &qerr);
	else
		error = th_query_run(info, t, sql, o, &sink, &qerr);
	if (error == TH_OK) {
		if (info->truncated) {
			status = "RowLimit";
			snprintf(message, sizeof(message),
			         "the result was cut at %llu rows (the row limit)",
			         (unsigned long long)j.nrows);
		}
		if ((error = json_head(out, status, message, t, listing ? "SHOW TABLES" : sql,
		                       &qerr)) < 0 ||
		    (error = th_buf_puts(out, ",\"schema\":[", &qerr)) < 0 ||
		    (error = th_buf_put(out, j.schema.ptr, j.schema.size, &qerr)) < 0 ||
		    (error = th_buf_puts(out, "],\"rows\":[", &qerr)) < 0 ||
		    (error = th_buf_put(out, j.rows.ptr, j.rows.size, &qerr)) < 0 ||
		    (error = th_buf_puts(out, "]}", &qerr)) < 0)
			out->size = start;
	}
	if (error != TH_OK) {
		if (err != NULL)
			*err = qerr;
		if (out->ptr != NULL) {
			out->size = start;
			out->ptr[start] = '\0';
		}
		json_error(out, t, listing ? "SHOW TABLES" : sql, error, qerr.msg);
	}
	th_buf_dispose(&j.schema);
	th_buf_dispose(&j.rows);
	th_buf_dispose(&j.keys);
	free(j.key_at);
	return error;
}

/* --- tables as CSV ------------------------------------------------------------------------- */

struct th_csv_export {
	th_repo *repo;
	th_table table;
	th_row_iter *it;
	th_cells cells;
	int header_done;
	int done;
};

int th_csv_export_open(th_csv_export **out, const th_query_target *t, const char *table,
                       th_error *err)
{
	th_csv_export *x;
	resolved r;
	int error;

	if (table == NULL || !th_table_name_valid(table))
		return th_error_set(err, TH_EINVALID, "bad table name '%s'", table ? table : "");
	if ((error = target_resolve(&r, t, err)) < 0)
		return error;
	if ((x = calloc(1, sizeof(*x))) == NULL) {
		th_repo_free(r.repo);
		return th_error_set(err, TH_ENOMEM, "out of memory");
	}
	x->repo = r.repo; /* calloc: table and cells start empty, as TH_TABLE_INIT, TH_CELLS_INIT */
	error = th_table_load(&x->table, x->repo, &r.root, table, err);
	if (error == TH_ENOTFOUND)
		error = th_error_set(err, TH_ENOTFOUND, "table '%s' not found at '%s'", table,
		                     target_ref(t));
	if (error == TH_OK && !th_oid_is_zero(&x->table.rows))
		error = th_row_iter_new(&x->it, x->repo, &x->table, err);
	if (error < 0) {
		th_csv_export_free(x);
		return error;
	}
	*out = x;
	return TH_OK;
}

int th_csv_export_read(th_csv_export *x, th_buf *out, size_t want, th_error *err)
{
	const th_schema *s = &x->table.schema;
	th_row row;
	size_t i;
	int error;

	if (!x->header_done) {
		for (i = 0; i < s->ncols; i++)
			if ((i && (error = th_buf_putc(out, ',', err)) < 0) ||
			    (error = th_csv_write_field(out, s->cols[i].name,
			                                strlen(s->cols[i].name), 0, ',', err)) < 0)
				return error;
		if ((error = th_buf_putc(out, '\n', err)) < 0)
			return error;
		x->header_done = 1;
	}
	while (!x->done && out->size < want) {
		if (x->it == NULL || (error = th_row_iter_next(x->it, &row, err)) == 0) {
			x->done = 1;
			break;
		}
		if (error < 0 ||
		    (error = th_row_decode(&x->cells, s, row.line, row.linelen, err)) < 0)
			return error;
		for (i = 0; i < x->cells.n; i++)
			if ((i && (error = th_buf_putc(out, ',', err)) < 0) ||
			    (error = th_csv_write_field(out, x->cells.c[i].s, x->cells.c[i].len,
			                                x->cells.c[i].is_null, ',', err)) < 0)
				return error;
		if ((error = th_buf_putc(out, '\n', err)) < 0)
			return error;
	}
	return x->done ? 0 : 1;
}

void th_csv_export_free(th_csv_export *x)
{
	if (x == NULL)
		return;
	th_row_iter_free(x->it);
	th_cells_dispose(&x->cells);
	th_table_dispose(&x->table);
	th_repo_free(x->repo);
	free(x);
}

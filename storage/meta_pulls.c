/* meta_pulls.c: pull requests, their comments and their reviews in the SQLite metadata backend
 * (tables pulls, pull_comments, pull_reviews).
 *
 * A pull's id counts from 1 within its database and comes from that database's row in
 * pull_counters, bumped by an upsert in the transaction that inserts the pull: an id is never given
 * twice, whatever happened to the pulls since (MAX + 1 would hand out a removed pull's id again).
 * A note's id counts from 1 within its pull (MAX + 1 inside the inserting BEGIN IMMEDIATE
 * transaction). The unique partial index pulls_open_pair allows one Open pull per branch pair;
 * find_or_create looks for it and inserts in one transaction, and the index refuses any second one.
 * The resource files are the SQL backends' (storage/meta_sql.h): SQLite and PostgreSQL.
 * Only an Open pull changes state (set_state's UPDATE says `AND state = 'Open'`).
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "meta_sql.h"

#define PULL_COLS                                                                                  \
	"db_id, pull_id, title, description, author, from_branch, to_branch, state, "              \
	"merge_commit, created_at, updated_at"

static const th_msql_stmt pull_db_exists = { MS_PULL_DB_EXISTS, "read database",
	                                     "SELECT 1 FROM databases WHERE id = ?1", NULL };
static const th_msql_stmt pull_next_id = {
	MS_PULL_NEXT_ID, "next pull id",
	"INSERT INTO pull_counters(db_id, last_pull_id) VALUES (?1, 1) ON CONFLICT (db_id) DO "
	"UPDATE SET last_pull_id = last_pull_id + 1 RETURNING last_pull_id",
	/* PostgreSQL: the existing row's column named by its table (EXCLUDED has one too) */
	"INSERT INTO pull_counters(db_id, last_pull_id) VALUES (?1, 1) ON CONFLICT (db_id) DO "
	"UPDATE SET last_pull_id = pull_counters.last_pull_id + 1 RETURNING last_pull_id"
};
static const th_msql_stmt pull_insert = {
	MS_PULL_INSERT, "insert pull request",
	"INSERT INTO pulls(db_id, pull_id, title, description, author, from_branch, to_branch, "
	"state, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'Open', ?8, ?8)",
	NULL
};
static const th_msql_stmt pull_get = { MS_PULL_GET, "read pull request",
	                               "SELECT " PULL_COLS
	                               " FROM pulls WHERE db_id = ?1 AND pull_id = ?2",
	                               NULL };
static const th_msql_stmt pull_find_open = {
	MS_PULL_FIND_OPEN, "find pull request",
	"SELECT pull_id FROM pulls WHERE db_id = ?1 AND state = 'Open' AND from_branch = ?2 AND "
	"to_branch = ?3 ORDER BY pull_id DESC LIMIT 1",
	NULL
};
static const th_msql_stmt pull_list = {
	MS_PULL_LIST, "list pull requests",
	"SELECT " PULL_COLS " FROM pulls WHERE db_id = ?1 AND (?2 IS NULL OR state = ?2) "
	"ORDER BY pull_id DESC LIMIT ?3 OFFSET ?4",
	NULL
};
static const th_msql_stmt pull_search = {
	MS_PULL_SEARCH, "search pull requests",
	"SELECT " PULL_COLS " FROM pulls p WHERE p.db_id = ?1 AND (?2 IS NULL OR p.state = ?2) "
	"AND (?3 IS NULL OR instr(lower(p.title), lower(?3)) > 0 OR "
	"instr(lower(p.author), lower(?3)) > 0) AND (?4 = 0 OR EXISTS (SELECT 1 FROM "
	"pull_reviews r WHERE r.db_id = p.db_id AND r.pull_id = p.pull_id)) AND (?5 = 0 OR "
	"EXISTS (SELECT 1 FROM pull_reviewers v WHERE v.db_id = p.db_id AND v.pull_id = "
	"p.pull_id)) ORDER BY p.pull_id DESC LIMIT ?6 OFFSET ?7",
	/* PostgreSQL has strpos where SQLite has instr */
	"SELECT " PULL_COLS " FROM pulls p WHERE p.db_id = $1 AND ($2::text IS NULL OR p.state = "
	"$2) AND ($3::text IS NULL OR strpos(lower(p.title), lower($3)) > 0 OR "
	"strpos(lower(p.author), lower($3)) > 0) AND ($4 = 0 OR EXISTS (SELECT 1 FROM "
	"pull_reviews r WHERE r.db_id = p.db_id AND r.pull_id = p.pull_id)) AND ($5 = 0 OR "
	"EXISTS (SELECT 1 FROM pull_reviewers v WHERE v.db_id = p.db_id AND v.pull_id = "
	"p.pull_id)) ORDER BY p.pull_id DESC LIMIT $6 OFFSET $7"
};
static const th_msql_stmt pull_mark_merged = {
	MS_PULL_MARK_MERGED, "mark pull request merged",
	"UPDATE pulls SET state = 'Merged', merge_commit = ?3, updated_at = ?4 WHERE db_id = ?1 "
	"AND pull_id = ?2 AND state = 'Open'",
	NULL
};
static const th_msql_stmt pull_update = {
	MS_PULL_UPDATE, "update pull request",
	"UPDATE pulls SET title = COALESCE(?3, title), description = COALESCE(?4, description), "
	"updated_at = ?5 WHERE db_id = ?1 AND pull_id = ?2",
	NULL
};
static const th_msql_stmt pull_set_state = {
	MS_PULL_SET_STATE, "update pull request",
	"UPDATE pulls SET state = ?3, merge_commit = ?4, updated_at = ?5 WHERE db_id = ?1 AND "
	"pull_id = ?2 AND state = 'Open'",
	NULL
};
static const th_msql_stmt pull_state = { MS_PULL_STATE, "read pull request",
	                                 "SELECT state FROM pulls WHERE db_id = ?1 AND "
	                                 "pull_id = ?2",
	                                 NULL };
static const th_msql_stmt note_pull_exists = {
	MS_NOTE_PULL_EXISTS, "read pull request",
	"SELECT 1 FROM pulls WHERE db_id = ?1 AND pull_id = ?2", NULL
};
static const th_msql_stmt comment_next_id = {
	MS_COMMENT_NEXT_ID, "next comment id",
	"SELECT COALESCE(MAX(id), 0) + 1 FROM pull_comments WHERE db_id = ?1 AND pull_id = ?2", NULL
};
static const th_msql_stmt comment_insert = {
	MS_COMMENT_INSERT, "insert comment",
	"INSERT INTO pull_comments(db_id, pull_id, id, author, body, created_at) VALUES (?1, ?2, "
	"?3, ?4, ?5, ?6)",
	NULL
};
static const th_msql_stmt comment_list = {
	MS_COMMENT_LIST, "list comments",
	"SELECT id, author, body, created_at, NULL FROM pull_comments WHERE db_id = ?1 AND "
	"pull_id = ?2 ORDER BY id",
	NULL
};
static const th_msql_stmt review_next_id = {
	MS_REVIEW_NEXT_ID, "next review id",
	"SELECT COALESCE(MAX(id), 0) + 1 FROM pull_reviews WHERE db_id = ?1 AND pull_id = ?2", NULL
};
static const th_msql_stmt review_insert = {
	MS_REVIEW_INSERT, "insert review",
	"INSERT INTO pull_reviews(db_id, pull_id, id, author, comment, created_at, status) VALUES "
	"(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	NULL
};
static const th_msql_stmt review_list = {
	MS_REVIEW_LIST, "list reviews",
	"SELECT id, author, comment, created_at, status FROM pull_reviews WHERE db_id = ?1 AND "
	"pull_id = ?2 ORDER BY id",
	NULL
};

static int read_pull(void *item, const th_mrow *st, th_error *err)
{
	th_pull_info *out = item, p;

	memset(&p, 0, sizeof(p));
	p.db_id = th_msql__int(st, 0);
	p.pull_id = th_msql__int(st, 1);
	th_msql__copy(p.author, sizeof(p.author), st, 4);
	p.state = th_pull_state_parse(th_msql__text(st, 7));
	th_msql__copy(p.merge_commit, sizeof(p.merge_commit), st, 8);
	p.created_at = th_msql__int(st, 9);
	p.updated_at = th_msql__int(st, 10);
	if (th_msql__dup(&p.title, st, 2, 0, err) < 0 ||
	    th_msql__dup(&p.description, st, 3, 0, err) < 0 ||
	    th_msql__dup(&p.from_branch, st, 5, 0, err) < 0 ||
	    th_msql__dup(&p.to_branch, st, 6, 0, err) < 0) {
		th_pull_info_dispose(&p);
		return TH_ENOMEM;
	}
	*out = p;
	return TH_OK;
}

static void dispose_pull(void *item)
{
	th_pull_info_dispose(item);
}

/* The first column of a row as an int64 (ctx). */
static int read_int(void *ctx, const th_mrow *st, th_error *err)
{
	(void)err;
	*(int64_t *)ctx = th_msql__int(st, 0);
	return TH_OK;
}

struct pull_new {
	int64_t db_id;
	const char *title, *description, *author, *from_branch, *to_branch;
	int64_t id;  /* out */
	int created; /* out */
};

/* Insert pull `p` with the database's next id. Called in a transaction. */
static int pull_insert_tx(th_msql *s, struct pull_new *p, th_error *err)
{
	int64_t open_id = 0;
	int n;

	if ((n = th_msql__run_locked(s, &pull_db_exists, NULL, NULL, err, "i", p->db_id)) < 0)
		return n;
	if (n == 0)
		return th_error_set(err, TH_ENOTFOUND, "database not found");
	/* The open pull of the pair is looked for first (the transaction excludes other writers;
	 * pulls_open_pair guards the rest): after a failed statement PostgreSQL runs no other one
	 * in the same transaction. */
	if ((n = th_msql__run_locked(s, &pull_find_open, read_int, &open_id, err, "iss", p->db_id,
	                             p->from_branch, p->to_branch)) < 0)
		return n;
	if (n > 0)
		return th_error_set(err, TH_EEXISTS,
		                    "pull request #%" PRId64 " from '%.200s' into '%.200s' is "
		                    "already open",
		                    open_id, p->from_branch, p->to_branch);
	if ((n = th_msql__run_locked(s, &pull_next_id, read_int, &p->id, err, "i", p->db_id)) < 0)
		return n;
	n = th_msql__run_locked(s, &pull_insert, NULL, NULL, err, "iisssssi", p->db_id, p->id,
	                        p->title, p->description, p->author, p->from_branch, p->to_branch,
	                        th_now_ms());
	return n < 0 ? n : TH_OK;
}

static int pull_create_tx(th_msql *s, void *ctx, th_error *err)
{
	return pull_insert_tx(s, ctx, err);
}

int th_msql__pull_create(int64_t *pull_id_out, th_meta *m, int64_t db_id, const char *title,
                         const char *description, const char *author, const char *from_branch,
                         const char *to_branch, th_error *err)
{
	struct pull_new p = { db_id, title, description, author, from_branch, to_branch, 0, 0 };
	int error;

	if ((error = th_msql__tx((th_msql *)m, pull_create_tx, &p, err)) < 0)
		return error;
	*pull_id_out = p.id;
	return TH_OK;
}

static int pull_find_or_create_tx(th_msql *s, void *ctx, th_error *err)
{
	struct pull_new *p = ctx;
	int n;

	if ((n = th_msql__run_locked(s, &pull_find_open, read_int, &p->id, err, "iss", p->db_id,
	                             p->from_branch, p->to_branch)) != 0)
		return n < 0 ? n : TH_OK;
	p->created = 1;
	return pull_insert_tx(s, p, err);
}

int th_msql__pull_find_or_create(int64_t *pull_id_out, int *created_out, th_meta *m, int64_t db_id,
                                 const char *title, const char *description, const char *author,
                                 const char *from_branch, const char *to_branch, th_error *err)
{
	struct pull_new p = { db_id, title, description, author, from_branch, to_branch, 0, 0 };
	int error;

	if ((error = th_msql__tx((th_msql *)m, pull_find_or_create_tx, &p, err)) < 0)
		return error;
	*pull_id_out = p.id;
	if (created_out)
		*created_out = p.created;
	return TH_OK;
}

int th_msql__pull_get(th_pull_info *out, th_meta *m, int64_t db_id, int64_t pull_id, th_error *err)
{
	th_pull_info p;
	int n;

	if ((n = th_msql__run((th_msql *)m, &pull_get, read_pull, &p, err, "ii", db_id, pull_id)) <
	    0)
		return n;
	if (n == 0)
		return th_error_set(err, TH_ENOTFOUND, "pull request #%" PRId64 " not found",
		                    pull_id);
	*out = p;
	return TH_OK;
}

int th_msql__pull_find_open(int64_t *pull_id_out, th_meta *m, int64_t db_id,
                            const char *from_branch, const char *to_branch, th_error *err)
{
	int64_t id = 0;
	int n;

	if ((n = th_msql__run((th_msql *)m, &pull_find_open, read_int, &id, err, "iss", db_id,
	                      from_branch, to_branch)) < 0)
		return n;
	if (n == 0)
		return th_error_set(err, TH_ENOTFOUND, "no open pull request from '%s' into '%s'",
		                    from_branch, to_branch);
	*pull_id_out = id;
	return TH_OK;
}

int th_msql__pull_list(th_pull_list *out, int *more, th_meta *m, int64_t db_id, th_pull_state state,
                       int64_t offset, size_t limit, th_error *err)
{
	void *items = NULL;
	size_t n = 0;
	int error;

	if ((error = th_msql__list(&items, &n, more, (th_msql *)m, &pull_list, sizeof(th_pull_info),
	                           limit, read_pull, dispose_pull, err, "inii", db_id,
	                           state ? th_pull_state_name(state) : NULL, (int64_t)limit + 1,
	                           offset)) < 0)
		return error;
	out->items = items;
	out->n = n;
	return TH_OK;
}

int th_msql__pull_search(th_pull_list *out, int *more, th_meta *m, int64_t db_id,
                         const th_pull_filter *f, int64_t offset, size_t limit, th_error *err)
{
	void *items = NULL;
	size_t n = 0;
	int error;

	if ((error = th_msql__list(&items, &n, more, (th_msql *)m, &pull_search,
	                           sizeof(th_pull_info), limit, read_pull, dispose_pull, err,
	                           "innddii", db_id, f->state ? th_pull_state_name(f->state) : NULL,
	                           f->query, f->reviewed != 0, f->assigned != 0, (int64_t)limit + 1,
	                           offset)) < 0)
		return error;
	out->items = items;
	out->n = n;
	return TH_OK;
}

int th_msql__pull_update(th_meta *m, int64_t db_id, int64_t pull_id, const char *title,
                         const char *description, th_error *err)
{
	int n;

	if ((n = th_msql__run((th_msql *)m, &pull_update, NULL, NULL, err, "iinni", db_id, pull_id,
	                      title, description, th_now_ms())) < 0)
		return n;
	if (n == 0)
		return th_error_set(err, TH_ENOTFOUND, "pull request #%" PRId64 " not found",
		                    pull_id);
	return TH_OK;
}

static int read_state(void *ctx, const th_mrow *st, th_error *err)
{
	char *cur = ctx;
	size_t i;

	(void)err;
	th_msql__copy(cur, 16, st, 0);
	for (i = 0; cur[i]; i++)
		cur[i] = (char)(cur[i] >= 'A' && cur[i] <= 'Z' ? cur[i] + 32 : cur[i]);
	return TH_OK;
}

int th_msql__pull_set_state(th_meta *m, int64_t db_id, int64_t pull_id, th_pull_state state,
                            const char *merge_commit, th_error *err)
{
	th_msql *s = (th_msql *)m;
	char cur[16];
	int n;

	if ((n = th_msql__lock(s, err)) < 0)
		return n;
	n = th_msql__run_locked(s, &pull_set_state, NULL, NULL, err, "iissi", db_id, pull_id,
	                        th_pull_state_name(state),
	                        state == TH_PULL_MERGED && merge_commit ? merge_commit : "",
	                        th_now_ms());
	/* Nothing changed: the pull is not Open, or there is none. */
	if (n == 0 && (n = th_msql__run_locked(s, &pull_state, read_state, cur, err, "ii", db_id,
	                                       pull_id)) >= 0)
		n = n ? th_error_set(err, TH_ECONFLICT, "pull request #%" PRId64 " is already %s",
		                     pull_id, cur)
		      : th_error_set(err, TH_ENOTFOUND, "pull request #%" PRId64 " not found",
		                     pull_id);
	n = th_msql__unlock_settle(s, n, err);
	return n < 0 ? n : TH_OK;
}

struct merged_args {
	int64_t db_id, pull_id;
	const char *commit;
	const th_event_new *ev;
};

static int mark_merged_tx(th_msql *s, void *ctx, th_error *err)
{
	struct merged_args *a = ctx;
	char cur[16];
	int n;

	if ((n = th_msql__run_locked(s, &pull_mark_merged, NULL, NULL, err, "iisi", a->db_id,
	                             a->pull_id, a->commit, th_now_ms())) < 0)
		return n;
	if (n == 0) {
		if ((n = th_msql__run_locked(s, &pull_state, read_state, cur, err, "ii", a->db_id,
		                             a->pull_id)) < 0)
			return n;
		return n ? th_error_set(err, TH_ECONFLICT,
		                        "pull request #%" PRId64 " is already %s", a->pull_id, cur)
		         : th_error_set(err, TH_ENOTFOUND, "pull request #%" PRId64 " not found",
		                        a->pull_id);
	}
	return th_msql__event_locked(s, a->ev, err);
}

int th_msql__pull_mark_merged(th_meta *m, int64_t db_id, int64_t pull_id, const char *merge_commit,
                              const th_event_new *ev, th_error *err)
{
	struct merged_args a = { db_id, pull_id, merge_commit, ev };

	return th_msql__tx((th_msql *)m, mark_merged_tx, &a, err);
}

struct note_new {
	int64_t db_id, pull_id;
	const char *author, *body;
	th_review_status status;
	int64_t id; /* out */
};

static int note_add_tx(th_msql *s, void *ctx, th_error *err)
{
	struct note_new *a = ctx;
	int64_t now = th_now_ms();
	int n;

	if ((n = th_msql__run_locked(s, &note_pull_exists, NULL, NULL, err, "ii", a->db_id,
	                             a->pull_id)) < 0)
		return n;
	if (n == 0)
		return th_error_set(err, TH_ENOTFOUND, "pull request #%" PRId64 " not found",
		                    a->pull_id);
	if ((n = th_msql__run_locked(s, a->status ? &review_next_id : &comment_next_id, read_int,
	                             &a->id, err, "ii", a->db_id, a->pull_id)) < 0)
		return n;
	if (a->status)
		n = th_msql__run_locked(s, &review_insert, NULL, NULL, err, "iiissis", a->db_id,
		                        a->pull_id, a->id, a->author, a->body, now,
		                        th_review_status_name(a->status));
	else
		n = th_msql__run_locked(s, &comment_insert, NULL, NULL, err, "iiissi", a->db_id,
		                        a->pull_id, a->id, a->author, a->body, now);
	return n < 0 ? n : TH_OK;
}

int th_msql__note_add(int64_t *id_out, th_meta *m, int64_t db_id, int64_t pull_id,
                      const char *author, th_review_status status, const char *body, th_error *err)
{
	struct note_new a = { db_id, pull_id, author, body, status, 0 };
	int error;

	if ((error = th_msql__tx((th_msql *)m, note_add_tx, &a, err)) < 0)
		return error;
	if (id_out)
		*id_out = a.id;
	return TH_OK;
}

static int read_note(void *item, const th_mrow *st, th_error *err)
{
	th_pull_note *out = item, n;

	memset(&n, 0, sizeof(n));
	n.id = th_msql__int(st, 0);
	th_msql__copy(n.author, sizeof(n.author), st, 1);
	n.created_at = th_msql__int(st, 3);
	if (!th_msql__null(st, 4))
		n.status = th_review_status_parse(th_msql__text(st, 4));
	if (th_msql__dup(&n.body, st, 2, 0, err) < 0)
		return TH_ENOMEM;
	*out = n;
	return TH_OK;
}

static void dispose_note(void *item)
{
	free(((th_pull_note *)item)->body);
}

int th_msql__note_list(th_pull_note_list *out, th_meta *m, int64_t db_id, int64_t pull_id,
                       int reviews, th_error *err)
{
	void *items = NULL;
	size_t n = 0;
	int error;

	if ((error = th_msql__list(&items, &n, NULL, (th_msql *)m,
	                           reviews ? &review_list : &comment_list, sizeof(th_pull_note), 0,
	                           read_note, dispose_note, err, "ii", db_id, pull_id)) < 0)
		return error;
	out->items = items;
	out->n = n;
	return TH_OK;
}

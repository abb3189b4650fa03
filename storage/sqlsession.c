/* sqlsession.c: opening a SQL write session on a snapshot, its sandbox, and running statements in
 * it (see include/tablehub/sqlsession.h).
 *
 * The connection is opened through the copy-on-write VFS (sqlsession_cow.c) on two descriptors:
 * the snapshot, opened and share-locked here first (as a query does, so that th_snap_steal does
 * not take it over while the session reads it), and an unlinked overlay file in the caller's
 * temporary directory. It runs with journal_mode=OFF: the session's one transaction is never
 * committed and a failed statement fails the whole write, so nothing is ever rolled back, and
 * nothing is written twice.
 *
 * The fences are those of queries, opened for writing user tables: the statement's first words
 * (VACUUM, which no authorizer sees, and CREATE TRIGGER, which a statement splitter may have cut
 * in its body), an authorizer, SQLITE_LIMIT_ATTACHED 0, defensive mode (no writes to
 * sqlite_schema), triggers and views off, extensions off, and limits on time (a progress handler
 * per statement), heap (a budget of the wrapped allocator, sqlcache_heap.c) and lengths.
 */
#define _GNU_SOURCE /* O_TMPFILE */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tablehub/value.h"
#include "sqlsession_internal.h"

#define CACHE_PRAGMA "PRAGMA cache_size=-16384" /* KiB of the session's page cache */

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int th_sqls__put_ident(th_buf *b, const char *name, th_error *err)
{
	const char *p;
	int error;

	if ((error = th_buf_putc(b, '"', err)) < 0)
		return error;
	for (p = name; *p; p++) {
		if ((error = th_buf_putc(b, *p, err)) < 0)
			return error;
		if (*p == '"' && (error = th_buf_putc(b, '"', err)) < 0)
			return error;
	}
	return th_buf_putc(b, '"', err);
}

/* --- the sandbox ------------------------------------------------------------------------------ */

static int on_progress(void *p)
{
	th_sqls *s = p;

	if (s->deadline_ms > 0 && now_ms() > s->deadline_ms) {
		s->timed_out = 1;
		return 1;
	}
	return 0;
}

static const char *const allowed_pragmas[] = {
	"table_info",    "table_xinfo", "table_list",       "index_list",
	"index_info",    "index_xinfo", "foreign_key_list", "collation_list",
	"function_list", "module_list", "pragma_list",      NULL,
};

static int deny(th_sqls *s, const char *fmt, ...) TH_PRINTF(2, 3);
static int deny(th_sqls *s, const char *fmt, ...)
{
	va_list ap;

	if (s->reason[0] == '\0') {
		va_start(ap, fmt);
		vsnprintf(s->reason, sizeof(s->reason), fmt, ap);
		va_end(ap);
	}
	return SQLITE_DENY;
}

static int note_ddl(th_sqls *s, const char *name)
{
	char *copy;

	if (name == NULL || th_sqls__ddl_touched(s, name))
		return SQLITE_OK;
	if (s->nddl == s->capddl) {
		size_t cap = s->capddl ? s->capddl * 2 : 8;
		char **v = realloc(s->ddl, cap * sizeof(*v));
		if (v == NULL)
			return deny(s, "out of memory");
		s->ddl = v;
		s->capddl = cap;
	}
	if ((copy = strdup(name)) == NULL)
		return deny(s, "out of memory");
	s->ddl[s->nddl++] = copy;
	return SQLITE_OK;
}

int th_sqls__ddl_touched(const th_sqls *s, const char *name)
{
	size_t i;

	for (i = 0; i < s->nddl; i++)
		if (strcasecmp(s->ddl[i], name) == 0)
			return 1;
	return 0;
}

#define NOT_WRITE "the statements of a write may change only the rows and columns of tables"

static int authorize(void *p, int action, const char *a1, const char *a2, const char *dbname,
                     const char *trigger)
{
	th_sqls *s = p;
	size_t i;

	(void)trigger;
	/* ALTER TABLE ... RENAME reads and rewrites the (empty) temp schema too. */
	if (dbname != NULL && strcmp(dbname, "temp") == 0 && a1 != NULL &&
	    (strcmp(a1, "sqlite_temp_master") == 0 || strcmp(a1, "sqlite_temp_schema") == 0) &&
	    (action == SQLITE_READ || action == SQLITE_UPDATE))
		return SQLITE_OK;
	/* (ALTER TABLE ... DROP COLUMN passes the column's name where the database's would be.) */
	if (dbname != NULL && strcmp(dbname, "main") != 0 && action != SQLITE_FUNCTION &&
	    action != SQLITE_PRAGMA && action != SQLITE_ALTER_TABLE)
		return deny(s, "only the database's own tables may be used (not '%s')", dbname);
	switch (action) {
	case SQLITE_SELECT:
	case SQLITE_READ:
	case SQLITE_RECURSIVE:
		return SQLITE_OK;
	case SQLITE_FUNCTION:
		if (a2 != NULL && (strcasecmp(a2, "load_extension") == 0 ||
		                   strcasecmp(a2, "fts3_tokenizer") == 0))
			return deny(s, "function %s() is not allowed", a2);
		return SQLITE_OK;
	case SQLITE_INSERT:
	case SQLITE_UPDATE:
	case SQLITE_DELETE:
		/* SQLite's own bookkeeping of CREATE and ALTER, and AUTOINCREMENT's counters;
		 * defensive mode keeps statements from writing sqlite_schema themselves. */
		if (a1 != NULL && strncasecmp(a1, "sqlite_", 7) == 0 &&
		    strcasecmp(a1, "sqlite_master") != 0 && strcasecmp(a1, "sqlite_schema") != 0 &&
		    strcasecmp(a1, "sqlite_sequence") != 0)
			return deny(s, "table '%s' belongs to SQLite and cannot be changed", a1);
		return SQLITE_OK;
	case SQLITE_CREATE_TABLE:
		if (a1 == NULL || !th_table_name_valid(a1))
			return deny(s, "bad table name '%.64s': use 1-64 of [A-Za-z0-9_-]",
			            a1 ? a1 : "");
		return note_ddl(s, a1);
	case SQLITE_DROP_TABLE:
		return note_ddl(s, a1);
	case SQLITE_ALTER_TABLE:
		if (a1 == NULL || strcmp(a1, "main") != 0)
			return deny(s, "only the database's own tables may be altered");
		return note_ddl(s, a2);
	case SQLITE_PRAGMA:
		for (i = 0; a1 != NULL && allowed_pragmas[i] != NULL; i++)
			if (strcasecmp(a1, allowed_pragmas[i]) == 0)
				return SQLITE_OK;
		return deny(s, "PRAGMA %s is not allowed in a write", a1 ? a1 : "");
	case SQLITE_ATTACH:
		return deny(s, "ATTACH is not allowed: a write changes only its own database");
	case SQLITE_DETACH:
		return deny(s, "DETACH is not allowed: a write changes only its own database");
	case SQLITE_TRANSACTION:
	case SQLITE_SAVEPOINT:
		return deny(s, "transactions are not allowed: the statements of a write already "
		               "run as one transaction");
	case SQLITE_CREATE_INDEX:
	case SQLITE_DROP_INDEX:
		return deny(s, "indexes are not allowed: %s", NOT_WRITE);
	case SQLITE_CREATE_TRIGGER:
	case SQLITE_DROP_TRIGGER:
		return deny(s, "triggers are not allowed: %s", NOT_WRITE);
	case SQLITE_CREATE_VIEW:
	case SQLITE_DROP_VIEW:
		return deny(s, "views are not allowed: %s", NOT_WRITE);
	case SQLITE_CREATE_VTABLE:
	case SQLITE_DROP_VTABLE:
		return deny(s, "virtual tables are not allowed: %s", NOT_WRITE);
	case SQLITE_CREATE_TEMP_TABLE:
	case SQLITE_CREATE_TEMP_INDEX:
	case SQLITE_CREATE_TEMP_TRIGGER:
	case SQLITE_CREATE_TEMP_VIEW:
	case SQLITE_DROP_TEMP_TABLE:
	case SQLITE_DROP_TEMP_INDEX:
	case SQLITE_DROP_TEMP_TRIGGER:
	case SQLITE_DROP_TEMP_VIEW:
		return deny(s, "temporary objects are not allowed: %s", NOT_WRITE);
	case SQLITE_ANALYZE:
		return deny(s, "ANALYZE is not allowed: %s", NOT_WRITE);
	case SQLITE_REINDEX:
		return deny(s, "REINDEX is not allowed: %s", NOT_WRITE);
	default:
		return deny(s, "this statement is not allowed: %s", NOT_WRITE);
	}
}

/* The first two words of `sql` after blanks and comments, upper-cased. */
static void first_words(char w1[32], char w2[32], const char *sql, const char *end)
{
	char *w[2] = { w1, w2 };
	int k;

	w1[0] = w2[0] = '\0';
	for (k = 0; k < 2; k++) {
		size_t n = 0;
		for (;;) {
			while (sql < end && (isspace((unsigned char)*sql) || *sql == ';'))
				sql++;
			if (end - sql >= 2 && sql[0] == '-' && sql[1] == '-') {
				while (sql < end && *sql != '\n')
					sql++;
			} else if (end - sql >= 2 && sql[0] == '/' && sql[1] == '*') {
				sql += 2;
				while (end - sql >= 2 && !(sql[0] == '*' && sql[1] == '/'))
					sql++;
				sql = end - sql >= 2 ? sql + 2 : end;
			} else {
				break;
			}
		}
		while (sql < end && n < 31 && isalpha((unsigned char)*sql)) {
			w[k][n++] = (char)toupper((unsigned char)*sql);
			sql++;
		}
		w[k][n] = '\0';
	}
}

/* Why a statement is refused by its first words before SQLite sees it, or NULL. */
static const char *refuse_words(const char *w1, const char *w2)
{
	if (strcmp(w1, "VACUUM") == 0)
		return "VACUUM is not allowed: " NOT_WRITE;
	if (strcmp(w1, "CREATE") == 0 && strcmp(w2, "TRIGGER") == 0)
		return "triggers are not allowed: " NOT_WRITE;
	if (strcmp(w1, "CREATE") == 0 && (strcmp(w2, "TEMP") == 0 || strcmp(w2, "TEMPORARY") == 0))
		return "temporary objects are not allowed: " NOT_WRITE;
	return NULL;
}

/* --- opening ---------------------------------------------------------------------------------- */

static int open_overlay(int *out, const char *tmpdir, th_error *err)
{
	char path[4096];
	int fd;

	if (tmpdir == NULL || tmpdir[0] == '\0')
		tmpdir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	fd = open(tmpdir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
		snprintf(path, sizeof(path), "%s/th-session-XXXXXX", tmpdir);
		if ((fd = mkstemp(path)) >= 0)
			unlink(path);
	}
	if (fd < 0)
		return th_error_set(err, TH_ESTORE, "cannot make the write's scratch file: %s",
		                    strerror(errno));
	*out = fd;
	return TH_OK;
}

/* Open and share-lock the snapshot, checking that the path still names it (it was not taken
 * over between the open and the lock). */
static int open_base(int *out, const char *path, th_error *err)
{
	struct stat st, now;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return th_error_set(err, errno == ENOENT ? TH_ENOTFOUND : TH_ESTORE,
		                    "cannot open snapshot: %s", strerror(errno));
	while (flock(fd, LOCK_SH) < 0) {
		if (errno != EINTR) {
			int e = errno;
			close(fd);
			return th_error_set(err, TH_ESTORE, "cannot lock snapshot: %s",
			                    strerror(e));
		}
	}
	if (fstat(fd, &st) < 0 || stat(path, &now) < 0 || now.st_ino != st.st_ino ||
	    now.st_dev != st.st_dev) {
		close(fd);
		return th_error_set(err, TH_ENOTFOUND, "the snapshot was replaced");
	}
	*out = fd;
	return TH_OK;
}

static int setup_connection(th_sqls *s, th_error *err)
{
	static const char *const pragmas =
	        "PRAGMA locking_mode=EXCLUSIVE; PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; "
	        "PRAGMA temp_store=MEMORY; " CACHE_PRAGMA "; BEGIN";
	char uri[128];
	int64_t len_limit;

	snprintf(uri, sizeof(uri), "file:/proc/self/fd/%d?cow_base=%d&cow_over=%d", s->base_fd,
	         s->base_fd, s->over_fd);
	if (sqlite3_open_v2(uri, &s->db,
	                    SQLITE_OPEN_READWRITE | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX |
	                            SQLITE_OPEN_PRIVATECACHE,
	                    TH_SQLSESSION_VFS) != SQLITE_OK)
		return th_sqlcache__error(err, s->db, "cannot open the write's database");
	/* The pragmas first: defensive mode refuses journal_mode=OFF. */
	if (sqlite3_exec(s->db, pragmas, NULL, NULL, NULL) != SQLITE_OK)
		return th_sqlcache__error(err, s->db, "cannot set up the write's database");
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, NULL);
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_ENABLE_TRIGGER, 0, NULL);
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_ENABLE_VIEW, 0, NULL);
	sqlite3_limit(s->db, SQLITE_LIMIT_ATTACHED, 0);
	len_limit = s->lim.heap_bytes == 0 || s->lim.heap_bytes / 2 > 1000000000
	                    ? 1000000000
	                    : (int64_t)(s->lim.heap_bytes / 2);
	sqlite3_limit(s->db, SQLITE_LIMIT_LENGTH, (int)len_limit);
	return th_sqls__tabs_load(s, err);
}

int th_sqls_open(th_sqls **out, const char *snapshot, const char *tmpdir, const th_sql_limits *lim,
                 th_error *err)
{
	th_sqls *s;
	int error;

	if ((error = th_sqlsession__cow_register(err)) < 0)
		return error;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	s->base_fd = s->over_fd = -1;
	if (lim != NULL)
		s->lim = *lim;
	if ((error = open_base(&s->base_fd, snapshot, err)) < 0 ||
	    (error = open_overlay(&s->over_fd, tmpdir, err)) < 0)
		goto fail;
	s->budget = th_sqlcache__budget_acquire(s->lim.heap_bytes);
	th_sqlcache__budget_enter(s->budget);
	error = setup_connection(s, err);
	th_sqlcache__budget_enter(NULL);
	if (error < 0)
		goto fail;
	sqlite3_preupdate_hook(s->db, th_sqls__on_preupdate, s);
	sqlite3_set_authorizer(s->db, authorize, s);
	sqlite3_progress_handler(s->db, 1000, on_progress, s);
	*out = s;
	return TH_OK;
fail:
	th_sqls_free(s);
	return error;
}

void th_sqls_free(th_sqls *s)
{
	size_t i;

	if (s == NULL)
		return;
	if (s->db != NULL) {
		th_sqlcache__budget_enter(s->budget);
		sqlite3_close_v2(
		        s->db); /* nothing was committed: the changes go with the overlay */
		th_sqlcache__budget_enter(NULL);
	}
	th_sqlcache__budget_release(s->budget);
	th_sqls__tabs_free(s);
	for (i = 0; i < s->nddl; i++)
		free(s->ddl[i]);
	free(s->ddl);
	if (s->over_fd >= 0)
		close(s->over_fd);
	if (s->base_fd >= 0)
		close(s->base_fd); /* and with it the shared lock */
	free(s);
}

void th_sqls__begin_internal(th_sqls *s)
{
	if (s->internal++ > 0)
		return;
	th_sqlcache__budget_enter(s->budget);
	sqlite3_set_authorizer(s->db, NULL, NULL);
	s->deadline_ms = 0;
}

void th_sqls__end_internal(th_sqls *s)
{
	if (--s->internal > 0)
		return;
	sqlite3_set_authorizer(s->db, authorize, s);
	th_sqlcache__budget_enter(NULL);
}

/* --- running statements ----------------------------------------------------------------------- */

uint64_t th_sqls_statements(const th_sqls *s)
{
	return s->statements;
}

uint64_t th_sqls_changes(const th_sqls *s)
{
	return s->changes;
}

/* Where text[off] is, counting from (line, column) at text[0]. */
static void place(uint64_t *line, uint32_t *column, const char *text, size_t off)
{
	size_t i;

	for (i = 0; i < off; i++) {
		if (text[i] == '\n') {
			(*line)++;
			*column = 1;
		} else if (((unsigned char)text[i] & 0xc0) != 0x80) {
			(*column)++; /* columns count characters, not bytes */
		}
	}
}

/* The offset of the first character of the statement at text[0..len): past blanks and
 * comments. */
static size_t statement_start(const char *text, size_t len)
{
	size_t i = 0;

	for (;;) {
		while (i < len && (isspace((unsigned char)text[i]) || text[i] == ';'))
			i++;
		if (len - i >= 2 && text[i] == '-' && text[i + 1] == '-') {
			while (i < len && text[i] != '\n')
				i++;
		} else if (len - i >= 2 && text[i] == '/' && text[i + 1] == '*') {
			i += 2;
			while (len - i >= 2 && !(text[i] == '*' && text[i + 1] == '/'))
				i++;
			i = len - i >= 2 ? i + 2 : len;
		} else {
			return i;
		}
	}
}

static int failed(th_sqls *s, th_error *err, int rc, const char *text, size_t off, uint64_t line,
                  uint32_t column)
{
	char why[400];
	int code = TH_EINVALID;

	if (s->timed_out) {
		code = TH_ELIMIT;
		if (s->lim.time_ms % 1000 == 0)
			snprintf(why, sizeof(why), "exceeded the time limit of %u s",
			         s->lim.time_ms / 1000);
		else
			snprintf(why, sizeof(why), "exceeded the time limit of %u ms",
			         s->lim.time_ms);
	} else if (th_sqlcache__budget_exceeded(s->budget)) {
		code = TH_ELIMIT;
		snprintf(why, sizeof(why), "exceeded the memory limit of %llu MiB",
		         (unsigned long long)((s->lim.heap_bytes + (1 << 20) - 1) >> 20));
	} else if (s->reason[0]) {
		snprintf(why, sizeof(why), "%s", s->reason);
	} else {
		switch (rc & 0xff) {
		case SQLITE_NOMEM:
			code = TH_ENOMEM;
			break;
		case SQLITE_IOERR:
		case SQLITE_CORRUPT:
		case SQLITE_NOTADB:
		case SQLITE_CANTOPEN:
		case SQLITE_FULL:
			code = TH_ESTORE;
			break;
		default:
			break;
		}
		snprintf(why, sizeof(why), "%s", sqlite3_errmsg(s->db));
	}
	place(&line, &column, text, off);
	s->failed = 1;
	return th_error_set_at(err, code, line, column, "statement %llu (line %llu, column %u): %s",
	                       (unsigned long long)s->statements + 1, (unsigned long long)line,
	                       column, why);
}

/* Prepare and run the statement at text[*pos..len); *pos moves past it. *ran is 0 when only
 * blanks or comments were left. */
static int run_one(th_sqls *s, const char *text, size_t len, size_t *pos, int *ran, uint64_t line,
                   uint32_t column, th_error *err)
{
	const char *p = text + *pos, *tail = NULL;
	size_t start = *pos + statement_start(p, len - *pos);
	sqlite3_stmt *st = NULL;
	char w1[32], w2[32];
	const char *why;
	int rc, off;

	*ran = 0;
	s->reason[0] = '\0';
	s->timed_out = 0;
	first_words(w1, w2, p, text + len);
	if ((why = refuse_words(w1, w2)) != NULL) {
		snprintf(s->reason, sizeof(s->reason), "%s", why);
		return failed(s, err, SQLITE_ERROR, text, start, line, column);
	}
	s->deadline_ms = s->lim.time_ms > 0 ? now_ms() + s->lim.time_ms : 0;
	rc = sqlite3_prepare_v3(s->db, p, (int)(len - *pos), 0, &st, &tail);
	if (rc != SQLITE_OK) {
		off = sqlite3_error_offset(s->db);
		return failed(s, err, rc, text, off >= 0 ? *pos + (size_t)off : start, line,
		              column);
	}
	*pos = tail != NULL ? (size_t)(tail - text) : len;
	if (st == NULL)
		return TH_OK;
	*ran = 1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		; /* rows of a SELECT or RETURNING go nowhere */
	if (rc != SQLITE_DONE) {
		rc = failed(s, err, rc, text, start, line, column);
		sqlite3_finalize(st);
		return rc;
	}
	s->changes += (uint64_t)sqlite3_changes64(s->db);
	s->statements++;
	sqlite3_finalize(st);
	return TH_OK;
}

int th_sqls_exec(th_sqls *s, const char *text, size_t len, uint64_t line, uint32_t column,
                 th_error *err)
{
	size_t pos = 0;
	int ran, error = TH_OK;

	if (s->failed)
		return th_error_set(err, TH_EINVALID, "the write already failed");
	if (len > INT32_MAX)
		return th_error_set(err, TH_ETOOBIG, "SQL text over 2 GiB");
	th_sqlcache__budget_enter(s->budget);
	while (pos < len && error == TH_OK)
		error = run_one(s, text, len, &pos, &ran, line, column, err);
	s->deadline_ms = 0;
	th_sqlcache__budget_enter(NULL);
	return error;
}

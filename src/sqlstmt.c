/* sqlstmt.c: the reader of SQL files (fileType Sql): th_reader_sql (see reader.h), the file split
 * into its statements, streamed.
 *
 * A file of SQL statements (a dump: CREATE TABLE, then INSERTs) is not rows of cells, so this
 * reader's rows are its statements: after the header ["statement", "column"], each row holds one
 * statement's text (up to and including its ';', comments before it included) and the column on
 * its first line where it starts; the row's line is that line. The SQL write engine
 * (src/sqlwrite.c) runs them one by one, so a dump of any size is held one statement at a time,
 * and an error is placed in the file.
 *
 * A statement ends at a ';' outside quotes ('', "", ``, []) and comments (--, / * * /), as
 * sqlite3_complete decides, except inside the body of a CREATE TRIGGER, which this splitter cuts
 * at its first ';' (triggers are refused by the write anyway, by name). What is left at the end
 * of the file without a ';' is the last statement. A statement must be valid UTF-8 without NUL
 * bytes and at most 16 MiB long; errors name the line and the column (in characters) of the
 * offending byte. A UTF-8 byte order mark at the start is skipped.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tablehub/buf.h"
#include "tablehub/reader.h"
#include "tablehub/sqlwrite.h"
#include "tablehub/text.h"

#define BLOCK (64u << 10)
#define MAX_STATEMENT (16u << 20)

extern const th_reader_type th_reader_sql;

enum { S_NORMAL, S_SQUOTE, S_DQUOTE, S_BQUOTE, S_BRACKET, S_LINE, S_BLOCK };

typedef struct th_sqlr {
	th_reader base; /* first: the reader interface */
	int fd;
	int eof;
	uint64_t bytes;
	char *buf; /* unread input from `start` on: the statement in progress */
	size_t len, cap;
	size_t start; /* where the statement in progress begins (or blanks before it) */
	size_t pos;   /* how far it was scanned */
	int state;
	char prev;     /* the byte before pos, in S_NORMAL and S_BLOCK */
	int in_stmt;   /* a non-blank byte was seen since `start` */
	uint64_t line; /* position of buf[pos] */
	uint32_t col;
	uint64_t st_line; /* position of the statement's first byte */
	uint32_t st_col;
	int header_sent, started, failed;
	th_error error;
	/* what next() hands out */
	th_buf text;
	char colbuf[16];
	const char *cells[2];
	size_t lens[2];
	int have; /* a statement is in `text`, waiting behind the header */
	uint64_t have_line;
	uint32_t have_col;
} th_sqlr;

static int sql_open(th_reader **out, int fd, const th_reader_opts *opts, th_error *err)
{
	th_sqlr *r = calloc(1, sizeof(*r));

	(void)opts;
	if (r == NULL)
		return th_error_set(err, TH_ENOMEM, "out of memory opening the SQL reader");
	r->base.type = &th_reader_sql;
	r->fd = fd;
	r->line = 1;
	r->col = 1;
	*out = &r->base;
	return TH_OK;
}

static void sql_close(th_reader *rd)
{
	th_sqlr *r = (th_sqlr *)rd;

	free(r->buf);
	th_buf_dispose(&r->text);
	free(r);
}

static uint64_t sql_bytes(const th_reader *rd)
{
	return ((const th_sqlr *)rd)->bytes;
}

static void sql_error_pos(const th_reader *rd, uint64_t *line, uint32_t *column)
{
	const th_sqlr *r = (const th_sqlr *)rd;

	*line = r->failed ? r->error.line : 0;
	*column = r->failed ? r->error.column : 0;
}

static int fail_at(th_sqlr *r, th_code code, uint64_t line, uint32_t column, const char *what)
{
	if (!r->failed) {
		th_error_set_at(&r->error, code, line, column, "line %llu, column %u: %s",
		                (unsigned long long)line, (unsigned)column, what);
		r->failed = 1;
	}
	return code;
}

/* Read the next block onto the end of the buffer, dropping what was handed out. */
static int refill(th_sqlr *r)
{
	ssize_t n;

	if (r->start > 0) {
		memmove(r->buf, r->buf + r->start, r->len - r->start);
		r->len -= r->start;
		r->pos -= r->start;
		r->start = 0;
	}
	if (r->len + BLOCK > r->cap) {
		size_t cap = r->cap ? r->cap * 2 : BLOCK * 2;
		char *p;
		while (cap < r->len + BLOCK)
			cap *= 2;
		if ((p = realloc(r->buf, cap)) == NULL)
			return fail_at(r, TH_ENOMEM, r->line, r->col, "out of memory reading SQL");
		r->buf = p;
		r->cap = cap;
	}
	do
		n = read(r->fd, r->buf + r->len, BLOCK);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		char msg[128];
		snprintf(msg, sizeof(msg), "cannot read the SQL input: %s", strerror(errno));
		r->failed = 1;
		th_error_set(&r->error, TH_ESTORE, "%s", msg);
		return TH_ESTORE;
	}
	if (n == 0) {
		r->eof = 1;
		return TH_OK;
	}
	r->bytes += (uint64_t)n;
	if (!r->started) {
		r->started = 1;
		if (n >= 3 && memcmp(r->buf + r->len, "\xef\xbb\xbf", 3) == 0) {
			r->start = r->pos = 3; /* skipped: never part of a statement */
		}
	}
	r->len += (size_t)n;
	return TH_OK;
}

/* Step the splitter over byte c (at buf[pos]); 1 when it ends a statement. */
static int step(th_sqlr *r, char c)
{
	switch (r->state) {
	case S_NORMAL:
		if (c == ';') {
			r->prev = 0;
			return 1;
		}
		if (c == '\'')
			r->state = S_SQUOTE;
		else if (c == '"')
			r->state = S_DQUOTE;
		else if (c == '`')
			r->state = S_BQUOTE;
		else if (c == '[')
			r->state = S_BRACKET;
		else if (c == '-' && r->prev == '-')
			r->state = S_LINE;
		else if (c == '*' && r->prev == '/')
			r->state = S_BLOCK;
		r->prev = r->state == S_NORMAL ? c : 0;
		return 0;
	case S_SQUOTE: /* a doubled quote ends and restarts the string: the same */
		if (c == '\'')
			r->state = S_NORMAL;
		return 0;
	case S_DQUOTE:
		if (c == '"')
			r->state = S_NORMAL;
		return 0;
	case S_BQUOTE:
		if (c == '`')
			r->state = S_NORMAL;
		return 0;
	case S_BRACKET:
		if (c == ']')
			r->state = S_NORMAL;
		return 0;
	case S_LINE:
		if (c == '\n')
			r->state = S_NORMAL;
		return 0;
	default: /* S_BLOCK */
		if (c == '/' && r->prev == '*') {
			r->state = S_NORMAL;
			r->prev = 0;
		} else {
			r->prev = c;
		}
		return 0;
	}
}

/* Hand buf[start..end) out as the statement: checked, copied into r->text. */
static int take(th_sqlr *r, size_t end)
{
	const char *s = r->buf + r->start;
	size_t len = end - r->start, bad, i;
	uint64_t line = r->st_line;
	uint32_t col = r->st_col;
	const char *nul = memchr(s, '\0', len);

	if (!th_utf8_valid(s, len, &bad) || nul != NULL) {
		size_t at = nul != NULL && (th_utf8_valid(s, len, &bad) || (size_t)(nul - s) < bad)
		                    ? (size_t)(nul - s)
		                    : bad;
		for (i = 0; i < at; i++) {
			if (s[i] == '\n') {
				line++;
				col = 1;
			} else if (((unsigned char)s[i] & 0xc0) != 0x80) {
				col++;
			}
		}
		return fail_at(r, TH_EINVALID, line, col,
		               s[at] == '\0' ? "a NUL byte in the SQL" : "invalid UTF-8");
	}
	th_buf_clear(&r->text);
	if (th_buf_put(&r->text, s, len, NULL) < 0 || th_buf_putc(&r->text, '\0', NULL) < 0)
		return fail_at(r, TH_ENOMEM, line, col, "out of memory reading SQL");
	r->text.size--; /* the NUL is not part of the text */
	r->have = 1;
	r->have_line = r->st_line;
	r->have_col = r->st_col;
	r->start = end;
	r->in_stmt = 0;
	return TH_OK;
}

/* Scan on to the end of the next statement (into r->text, r->have set), or the end of input. */
static int scan(th_sqlr *r)
{
	int error;

	for (;;) {
		while (r->pos < r->len) {
			char c = r->buf[r->pos];
			int ends;

			if (!r->in_stmt) {
				if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' ||
				    c == '\v') {
					r->start = r->pos + 1;
				} else {
					r->in_stmt = 1;
					r->st_line = r->line;
					r->st_col = r->col;
				}
			}
			ends = r->in_stmt && step(r, c);
			r->pos++;
			if (c == '\n') {
				r->line++;
				r->col = 1;
			} else if (((unsigned char)c & 0xc0) != 0x80) {
				r->col++;
			}
			if (ends)
				return take(r, r->pos);
			if (r->in_stmt && r->pos - r->start > MAX_STATEMENT)
				return fail_at(r, TH_EINVALID, r->st_line, r->st_col,
				               "a statement longer than 16 MiB");
		}
		if (r->eof) {
			if (r->in_stmt)
				return take(r, r->len);
			r->start = r->len;
			return TH_OK;
		}
		if ((error = refill(r)) < 0)
			return error;
	}
}

static int sql_next(th_reader *rd, th_reader_row *row, th_error *err)
{
	static const char *const header[] = { "statement", "column" };
	static const size_t header_lens[] = { 9, 6 };
	th_sqlr *r = (th_sqlr *)rd;

	if (!r->have && !r->failed)
		scan(r);
	if (r->failed) {
		if (err)
			*err = r->error;
		return r->error.code;
	}
	if (!r->have)
		return 0;
	if (!r->header_sent) {
		r->header_sent = 1;
		row->n = 2;
		row->cells = header;
		row->lens = header_lens;
		row->line = r->have_line;
		return 1;
	}
	r->have = 0;
	snprintf(r->colbuf, sizeof(r->colbuf), "%u", (unsigned)r->have_col);
	r->cells[0] = r->text.ptr;
	r->lens[0] = r->text.size;
	r->cells[1] = r->colbuf;
	r->lens[1] = strlen(r->colbuf);
	row->n = 2;
	row->cells = r->cells;
	row->lens = r->lens;
	row->line = r->have_line;
	return 1;
}

const th_reader_type th_reader_sql = {
	sql_open, sql_next, sql_error_pos, sql_bytes, sql_close,
};

int th_format_is_sql(const th_format *f)
{
	return f != NULL && f->reader == &th_reader_sql;
}

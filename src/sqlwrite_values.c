/* sqlwrite_values.c: SQLite's types and values in tablehub's terms, for the SQL write engine (see
 * include/tablehub/sqlwrite.h for the rules).
 *
 * A value becomes the text its column's type stores (value.h): integers in decimal, reals as the
 * shortest text that reads back as the same double (an integral one without a fraction: 404, not
 * 404.0), booleans as true/false, dates and datetimes and text as they are. SQLite's affinity has
 * already turned numeric text into numbers where the column asks for them, so what is left that
 * does not fit (text in an integer column, 2.5 in a boolean one, a blob that is not UTF-8 text) is
 * refused, naming the table, the column and the value.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tablehub/text.h"
#include "sqlwrite_impl.h"

/* --- declared types ---------------------------------------------------------------------- */

static int has(const char *upper, const char *word)
{
	return strstr(upper, word) != NULL;
}

th_type th_sqlwrite__decl_type(const char *decl)
{
	char up[64];
	size_t i;

	if (decl == NULL)
		return 0;
	while (*decl == ' ')
		decl++;
	if (*decl == '\0')
		return 0;
	for (i = 0; decl[i] && i + 1 < sizeof(up); i++)
		up[i] = (char)(decl[i] >= 'a' && decl[i] <= 'z' ? decl[i] - 32 : decl[i]);
	up[i] = '\0';
	/* CREATE TABLE ... AS SELECT declares "NUM" for every column of NUMERIC affinity: dates,
	 * booleans and numbers alike. The values decide. */
	if (strcmp(up, "NUM") == 0)
		return 0;
	if (has(up, "BOOL"))
		return TH_TYPE_BOOLEAN;
	if (has(up, "DATETIME") || has(up, "TIMESTAMP"))
		return TH_TYPE_DATETIME;
	if (has(up, "DATE"))
		return TH_TYPE_DATE;
	if (has(up, "INT"))
		return TH_TYPE_INTEGER;
	if (has(up, "CHAR") || has(up, "CLOB") || has(up, "TEXT"))
		return TH_TYPE_TEXT;
	if (has(up, "REAL") || has(up, "FLOA") || has(up, "DOUB") || has(up, "DEC") ||
	    has(up, "NUM"))
		return TH_TYPE_REAL;
	return TH_TYPE_TEXT;
}

/* --- values --------------------------------------------------------------------------------- */

/* The shortest text of d that reads back as d; integral values without a fraction. 0 when d is
 * not finite. */
static int real_text(char out[40], double d)
{
	int prec;

	if (!isfinite(d))
		return 0;
	if (d == 0) {
		strcpy(out, "0");
		return 1;
	}
	if (d == floor(d) && fabs(d) < 9007199254740992.0) { /* 2^53: exactly an integer */
		snprintf(out, 40, "%.0f", d);
		return 1;
	}
	for (prec = 15; prec <= 17; prec++) {
		snprintf(out, 40, "%.*g", prec, d);
		if (strtod(out, NULL) == d)
			break;
	}
	return 1;
}

unsigned th_sqlwrite__classify(const th_sqlv *v)
{
	char num[40];

	switch (v->type) {
	case TH_SQLV_NULL:
		return TH_TYPEMASK_ALL;
	case TH_SQLV_INTEGER:
		snprintf(num, sizeof(num), "%lld", (long long)v->i);
		return th_type_classify(num, strlen(num));
	case TH_SQLV_REAL:
		if (!real_text(num, v->d))
			return TH_TYPEBIT(TH_TYPE_TEXT);
		return th_type_classify(num, strlen(num));
	case TH_SQLV_TEXT:
		return th_type_classify(v->s, v->len);
	default:
		return TH_TYPEBIT(TH_TYPE_TEXT);
	}
}

void th_sqlwrite__row_dispose(th_sqlwrite__row *r)
{
	free(r->cells);
	free(r->offs);
	th_buf_dispose(&r->text);
	memset(r, 0, sizeof(*r));
}

/* A short printable form of a value for messages. */
static void describe(char out[96], const th_sqlv *v)
{
	char num[40];

	switch (v->type) {
	case TH_SQLV_INTEGER:
		snprintf(out, 96, "%lld", (long long)v->i);
		break;
	case TH_SQLV_REAL:
		if (real_text(num, v->d))
			snprintf(out, 96, "%s", num);
		else
			snprintf(out, 96, "%s", isnan(v->d) ? "NaN" : v->d > 0 ? "Inf" : "-Inf");
		break;
	case TH_SQLV_TEXT:
		snprintf(out, 96, "'%.*s%s'", v->len > 60 ? 60 : (int)v->len, v->s,
		         v->len > 60 ? "..." : "");
		break;
	case TH_SQLV_BLOB:
		snprintf(out, 96, "a blob of %zu bytes", v->len);
		break;
	default:
		snprintf(out, 96, "NULL");
	}
}

/* Append the text of v for type t to `text`. Returns 1, 0 when t cannot hold v, or -1 when out
 * of memory. */
static int value_text(th_buf *text, th_type t, const th_sqlv *v)
{
	char num[40];
	unsigned mask;
	size_t bad;

	switch (v->type) {
	case TH_SQLV_INTEGER:
		if (t == TH_TYPE_BOOLEAN) {
			if (v->i != 0 && v->i != 1)
				return 0;
			return th_buf_puts(text, v->i ? "true" : "false", NULL) < 0 ? -1 : 1;
		}
		if (t != TH_TYPE_INTEGER && t != TH_TYPE_REAL && t != TH_TYPE_TEXT)
			return 0;
		snprintf(num, sizeof(num), "%lld", (long long)v->i);
		return th_buf_puts(text, num, NULL) < 0 ? -1 : 1;
	case TH_SQLV_REAL:
		if (!real_text(num, v->d))
			return 0;
		if (t == TH_TYPE_BOOLEAN) {
			if (v->d != 0 && v->d != 1)
				return 0;
			return th_buf_puts(text, v->d != 0 ? "true" : "false", NULL) < 0 ? -1 : 1;
		}
		if (t == TH_TYPE_INTEGER &&
		    !(th_type_classify(num, strlen(num)) & TH_TYPEBIT(TH_TYPE_INTEGER)))
			return 0;
		if (t != TH_TYPE_INTEGER && t != TH_TYPE_REAL && t != TH_TYPE_TEXT)
			return 0;
		return th_buf_puts(text, num, NULL) < 0 ? -1 : 1;
	case TH_SQLV_TEXT:
	case TH_SQLV_BLOB:
		if (!th_utf8_valid(v->s, v->len, &bad))
			return 0;
		if (t == TH_TYPE_TEXT)
			return th_buf_put(text, v->s, v->len, NULL) < 0 ? -1 : 1;
		if (v->type == TH_SQLV_BLOB)
			return 0;
		mask = th_type_classify(v->s, v->len);
		if (!(mask & TH_TYPEBIT(t)))
			return 0;
		if (t == TH_TYPE_BOOLEAN)
			return th_buf_puts(text,
			                   (v->s[0] == 't' || v->s[0] == 'T') ? "true" : "false",
			                   NULL) < 0
			               ? -1
			               : 1;
		return th_buf_put(text, v->s, v->len, NULL) < 0 ? -1 : 1;
	default:
		return 0;
	}
}

int th_sqlwrite__cells(th_sqlwrite__row *r, const th_schema *s, const char *table, const th_sqlv *v,
                       const size_t *cols, size_t n, th_error *err)
{
	size_t i, k;

	if (r->ncols < s->ncols) {
		th_cell *c = realloc(r->cells, s->ncols * sizeof(*c));
		size_t *o = c ? realloc(r->offs, s->ncols * sizeof(*o)) : NULL;
		if (c != NULL)
			r->cells = c;
		if (o == NULL)
			return th_error_set(err, TH_ENOMEM, "out of memory");
		r->offs = o;
		r->ncols = s->ncols;
	}
	th_buf_clear(&r->text);
	for (i = 0; i < s->ncols; i++) {
		r->cells[i].s = NULL;
		r->cells[i].len = 0;
		r->cells[i].is_null = 1;
		r->offs[i] = SIZE_MAX;
	}
	for (k = 0; k < n; k++) {
		const th_column *col;
		size_t start = r->text.size;
		int rc;

		i = cols ? cols[k] : k;
		col = &s->cols[i];
		if (v[k].type == TH_SQLV_NULL) {
			size_t j;
			for (j = 0; j < s->npk; j++)
				if (s->pk[j] == i)
					return th_error_set(
					        err, TH_EINVALID,
					        "table '%s': the primary-key column '%s' "
					        "holds NULL",
					        table, col->name);
			continue;
		}
		if ((rc = value_text(&r->text, col->type, &v[k])) < 0)
			return th_error_set(err, TH_ENOMEM, "out of memory");
		if (rc == 0) {
			char what[96];
			describe(what, &v[k]);
			return th_error_set(err, TH_EINVALID,
			                    "table '%s': column '%s' is %s and cannot hold %s",
			                    table, col->name, th_type_name(col->type), what);
		}
		if (th_buf_putc(&r->text, '\0', NULL) < 0)
			return th_error_set(err, TH_ENOMEM, "out of memory");
		r->offs[i] = start;
		r->cells[i].len = r->text.size - 1 - start;
		r->cells[i].is_null = 0;
	}
	/* The text buffer has stopped growing: point the cells into it. */
	for (i = 0; i < s->ncols; i++)
		if (r->offs[i] != SIZE_MAX)
			r->cells[i].s = r->text.ptr + r->offs[i];
	return TH_OK;
}

int th_sqlwrite__cells_equal_one(th_type t, const th_cell *a, const th_cell *b)
{
	if (a->len == b->len && memcmp(a->s, b->s, a->len) == 0)
		return 1;
	if (t == TH_TYPE_REAL) { /* reals are doubles: texts of one double are one value */
		char *ea, *eb;
		double x = strtod(a->s, &ea), y = strtod(b->s, &eb);
		return *ea == '\0' && *eb == '\0' && x == y;
	}
	if (t == TH_TYPE_BOOLEAN)
		return (a->s[0] == 't' || a->s[0] == 'T') == (b->s[0] == 't' || b->s[0] == 'T');
	return 0;
}

int th_sqlwrite__cells_equal(const th_schema *s, const th_cell *a, const th_cell *b)
{
	size_t i;

	for (i = 0; i < s->ncols; i++) {
		if (a[i].is_null != b[i].is_null)
			return 0;
		if (!a[i].is_null && !th_sqlwrite__cells_equal_one(s->cols[i].type, &a[i], &b[i]))
			return 0;
	}
	return 1;
}

int th_sqlwrite__resolve(void *payload, const th_row *old, const th_edit *e, th_buf *line_out,
                         th_error *err)
{
	th_sqlwrite__resolver *r = payload;
	const th_schema *s = r->schema;
	size_t i;
	int error;

	if ((old->linelen == e->linelen && memcmp(old->line, e->line, e->linelen) == 0) ||
	    th_row_decode(&r->a, s, old->line, old->linelen, NULL) < 0)
		return th_buf_put(line_out, e->line, e->linelen, err);
	if ((error = th_row_decode(&r->b, s, e->line, e->linelen, err)) < 0)
		return error;
	for (i = 0; i < s->ncols; i++)
		if (!r->a.c[i].is_null && !r->b.c[i].is_null &&
		    th_sqlwrite__cells_equal_one(s->cols[i].type, &r->a.c[i], &r->b.c[i]))
			r->b.c[i] = r->a.c[i];
	return th_row_encode(line_out, s, r->b.c, err);
}

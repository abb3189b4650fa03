/* fuzz_row.c: libFuzzer target for row lines (src/row.c) and keys (src/key.c).
 *
 * The input is decoded as a row line against a few fixed schemas (one column of each type, mixed
 * composite keys, keyless). When a line decodes and its cells are valid for their column types
 * (what th_row_encode expects), encoding them again and decoding the result must give the same
 * cells and the same key: a line that survives the round trip changed would corrupt a table on
 * its next write. Keys and printable keys are computed for every decoded row.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tablehub/table.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAXCOLS 4

static const struct fz_schema {
	size_t ncols;
	th_type types[MAXCOLS];
	size_t npk;
	size_t pk[MAXCOLS];
} schemas[] = {
	{ 1, { TH_TYPE_INTEGER }, 1, { 0 } },
	{ 1, { TH_TYPE_REAL }, 1, { 0 } },
	{ 1, { TH_TYPE_BOOLEAN }, 1, { 0 } },
	{ 1, { TH_TYPE_DATE }, 1, { 0 } },
	{ 1, { TH_TYPE_DATETIME }, 1, { 0 } },
	{ 1, { TH_TYPE_TEXT }, 1, { 0 } },
	{ 1, { TH_TYPE_TEXT }, 0, { 0 } },
	{ 2, { TH_TYPE_TEXT, TH_TYPE_REAL }, 1, { 1 } },
	{ 3, { TH_TYPE_DATETIME, TH_TYPE_TEXT, TH_TYPE_INTEGER }, 0, { 0 } },
	{ 4, { TH_TYPE_INTEGER, TH_TYPE_REAL, TH_TYPE_BOOLEAN, TH_TYPE_DATE }, 2, { 3, 0 } },
	{ 4,
	  { TH_TYPE_TEXT, TH_TYPE_INTEGER, TH_TYPE_DATETIME, TH_TYPE_BOOLEAN },
	  4,
	  { 2, 0, 3, 1 } },
};
#define NSCHEMAS (sizeof(schemas) / sizeof(schemas[0]))

static th_schema built[NSCHEMAS];
static th_column cols[NSCHEMAS][MAXCOLS];
static size_t pks[NSCHEMAS][MAXCOLS];
static char *const names[MAXCOLS] = { "a", "b", "c", "d" };

static void build_schemas(void)
{
	for (size_t i = 0; i < NSCHEMAS; i++) {
		for (size_t j = 0; j < schemas[i].ncols; j++) {
			cols[i][j].name = names[j];
			cols[i][j].type = schemas[i].types[j];
			cols[i][j].nullable = 1;
		}
		memcpy(pks[i], schemas[i].pk, sizeof(pks[i]));
		built[i].ncols = schemas[i].ncols;
		built[i].cols = cols[i];
		built[i].npk = schemas[i].npk;
		built[i].pk = pks[i];
	}
}

/* May th_row_encode be given these cells? Each non-NULL one must be valid for its type. */
static int typed_ok(const th_schema *s, const th_cells *c)
{
	for (size_t i = 0; i < s->ncols; i++) {
		if (!c->c[i].is_null &&
		    !(th_type_classify(c->c[i].s, c->c[i].len) & TH_TYPEBIT(s->cols[i].type)))
			return 0;
	}
	return 1;
}

/* Is this real written without the zero before its point (".5", "-.5"), which th_row_encode
 * adds? */
static int real_zero(const th_cell *c)
{
	return (c->len > 1 && c->s[0] == '.') || (c->len > 2 && c->s[0] == '-' && c->s[1] == '.');
}

static void check_same(const th_schema *s, const th_cells *a, const th_cells *b)
{
	if (a->n != b->n)
		abort();
	for (size_t i = 0; i < s->ncols; i++) {
		const th_cell *x = &a->c[i], *y = &b->c[i];
		if (x->is_null != y->is_null || (x->s == NULL) != (y->s == NULL))
			abort();
		if (x->is_null)
			continue;
		/* A real without its leading zero gets it back: ".5" as "0.5", "-.5" as "-0.5". */
		if (s->cols[i].type == TH_TYPE_REAL && real_zero(x)) {
			size_t neg = x->s[0] == '-';

			if (y->len != x->len + 1 || memcmp(y->s, x->s, neg) != 0 ||
			    y->s[neg] != '0' ||
			    memcmp(y->s + neg + 1, x->s + neg, x->len - neg) != 0)
				abort();
			continue;
		}
		if (x->len != y->len)
			abort();
		/* A boolean is stored lowercased: "TRUE" comes back as "true". */
		if (s->cols[i].type == TH_TYPE_BOOLEAN ? strncasecmp(x->s, y->s, x->len) != 0
		                                       : memcmp(x->s, y->s, x->len) != 0)
			abort();
	}
}

static void check_cells(const th_cells *c)
{
	for (size_t i = 0; i < c->n; i++) {
		if (c->c[i].is_null ? c->c[i].s != NULL || c->c[i].len != 0
		                    : c->c[i].s == NULL || c->c[i].s[c->c[i].len] != '\0')
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	th_cells cells = TH_CELLS_INIT, again = TH_CELLS_INIT;
	th_buf line = TH_BUF_INIT, key = TH_BUF_INIT, key2 = TH_BUF_INIT, fmt = TH_BUF_INIT;
	th_error err;

	if (!ready) {
		build_schemas();
		ready = 1;
	}
	for (size_t k = 0; k < NSCHEMAS; k++) {
		const th_schema *s = &built[k];
		int rc;

		rc = th_row_decode(&cells, s, (const char *)data, size, &err);
		if (rc != TH_OK) {
			if (rc != TH_EINVALID || cells.n != 0)
				abort();
			continue;
		}
		if (cells.n != s->ncols)
			abort();
		check_cells(&cells);
		th_buf_clear(&key);
		th_buf_clear(&fmt);
		rc = th_row_key(&key, s, cells.c, &err);
		if (rc != TH_OK && rc != TH_EINVALID)
			abort();
		if (th_key_format(&fmt, s, cells.c, &err) != TH_OK)
			abort();
		if (!typed_ok(s, &cells))
			continue;
		/* Typed cells always have a key, and survive encode + decode unchanged. */
		if (rc != TH_OK)
			abort();
		th_buf_clear(&line);
		if (th_row_encode(&line, s, cells.c, &err) != TH_OK)
			abort();
		if (th_row_decode(&again, s, line.ptr, line.size, &err) != TH_OK)
			abort();
		check_cells(&again);
		check_same(s, &cells, &again);
		th_buf_clear(&key2);
		if (th_row_key(&key2, s, again.c, &err) != TH_OK ||
		    th_key_cmp((const unsigned char *)key.ptr, key.size,
		               (const unsigned char *)key2.ptr, key2.size) != 0)
			abort();
	}
	th_cells_dispose(&cells);
	th_cells_dispose(&again);
	th_buf_dispose(&line);
	th_buf_dispose(&key);
	th_buf_dispose(&key2);
	th_buf_dispose(&fmt);
	return 0;
}

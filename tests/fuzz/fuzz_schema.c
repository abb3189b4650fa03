/* fuzz_schema.c: libFuzzer target for schema.json (src/schema.c).
 *
 * Whatever th_schema_from_json accepts must be a schema the rest of the code can rely on (valid
 * column names, known types, primary-key indices in range), and must survive th_schema_to_json and
 * th_schema_from_json unchanged: a table whose schema.json we write but cannot read back is lost.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tablehub/table.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_equal(const th_schema *a, const th_schema *b)
{
	if (a->ncols != b->ncols || a->npk != b->npk)
		abort();
	for (size_t i = 0; i < a->ncols; i++) {
		if (strcmp(a->cols[i].name, b->cols[i].name) != 0 ||
		    a->cols[i].type != b->cols[i].type ||
		    a->cols[i].nullable != b->cols[i].nullable)
			abort();
	}
	for (size_t i = 0; i < a->npk; i++) {
		if (a->pk[i] != b->pk[i])
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	th_schema s = TH_SCHEMA_INIT, back = TH_SCHEMA_INIT, copy = TH_SCHEMA_INIT;
	th_buf json = TH_BUF_INIT;
	th_error err;
	uint64_t rows = 1;
	int rc;

	rc = th_schema_rows_from_json(&rows, (const char *)data, size);
	if (rc != TH_OK && (rc != TH_EINVALID || rows != 0))
		abort();

	rc = th_schema_from_json(&s, (const char *)data, size, &err);
	if (rc != TH_OK) {
		if (rc != TH_EINVALID || s.ncols != 0 || s.cols != NULL)
			abort();
		return 0;
	}
	if (s.ncols == 0 || s.npk > s.ncols)
		abort();
	for (size_t i = 0; i < s.ncols; i++) {
		if (!th_column_name_valid(s.cols[i].name) ||
		    strcmp(th_type_name(s.cols[i].type), "unknown") == 0 ||
		    th_schema_find(&s, s.cols[i].name) != (int)i)
			abort();
	}
	for (size_t i = 0; i < s.npk; i++) {
		if (s.pk[i] >= s.ncols)
			abort();
	}
	if (th_schema_to_json_rows(&json, &s, rows, &err) != TH_OK)
		abort();
	if (th_schema_from_json(&back, json.ptr, json.size, &err) != TH_OK)
		abort();
	check_equal(&s, &back);
	{
		uint64_t again = 0;
		if (th_schema_rows_from_json(&again, json.ptr, json.size) != TH_OK || again != rows)
			abort();
	}
	if (th_schema_copy(&copy, &s, &err) != TH_OK)
		abort();
	check_equal(&s, &copy);
	th_schema_dispose(&s);
	th_schema_dispose(&back);
	th_schema_dispose(&copy);
	th_buf_dispose(&json);
	return 0;
}

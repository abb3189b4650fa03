/* schema.c: table schemas and their schema.json form (see include/tablehub/table.h).
 *
 * schema.json is written by hand rather than with cJSON_Print so the bytes are deterministic and
 * read well in `git show`: two-space indent, one column a line, a trailing newline. The same
 * schema always produces the same blob, so an unchanged schema keeps its object id across
 * commits. Reading goes through cJSON and validates everything a later step relies on (known
 * types, unique column names, primary-key columns that exist); unknown keys are ignored so newer
 * writers can add fields.
 */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tablehub/text.h"
#include "tablehub/value.h"

static int put_schema(th_buf *out, const th_schema *s, const uint64_t *rows, th_error *err)
{
	size_t i;
	int error;

	if ((error = th_buf_printf(out, err, "{\n  \"format\": %d,\n  \"columns\": [",
	                           TH_TABLE_FORMAT)) < 0)
		return error;
	for (i = 0; i < s->ncols; i++) {
		const th_column *c = &s->cols[i];
		if ((error = th_buf_puts(
		             out, i ? ",\n    { \"name\": " : "\n    { \"name\": ", err)) < 0 ||
		    (error = th_buf_put_json_string(out, c->name, strlen(c->name), err)) < 0 ||
		    (error = th_buf_printf(out, err, ", \"type\": \"%s\", \"nullable\": %s }",
		                           th_type_name(c->type), c->nullable ? "true" : "false")) <
		            0)
			return error;
	}
	if ((error = th_buf_puts(
	             out, s->ncols ? "\n  ],\n  \"primaryKey\": [" : "],\n  \"primaryKey\": [",
	             err)) < 0)
		return error;
	for (i = 0; i < s->npk; i++) {
		const char *name = s->cols[s->pk[i]].name;
		if ((error = th_buf_puts(out, i ? ", " : " ", err)) < 0 ||
		    (error = th_buf_put_json_string(out, name, strlen(name), err)) < 0)
			return error;
	}
	if ((error = th_buf_puts(out, s->npk ? " ]" : "]", err)) < 0)
		return error;
	if (rows &&
	    (error = th_buf_printf(out, err, ",\n  \"rows\": %llu", (unsigned long long)*rows)) < 0)
		return error;
	return th_buf_puts(out, "\n}\n", err);
}

int th_schema_to_json(th_buf *out, const th_schema *s, th_error *err)
{
	return put_schema(out, s, NULL, err);
}

int th_schema_to_json_rows(th_buf *out, const th_schema *s, uint64_t rows, th_error *err)
{
	return put_schema(out, s, &rows, err);
}

int th_schema_from_json(th_schema *out, const char *json, size_t len, th_error *err)
{
	th_schema s = TH_SCHEMA_INIT;
	cJSON *root, *item, *cols, *pk;
	size_t i, j;
	int error = TH_EINVALID;

	if ((root = cJSON_ParseWithLength(json, len)) == NULL || !cJSON_IsObject(root)) {
		th_error_set(err, TH_EINVALID, "schema.json is not a JSON object");
		goto cleanup;
	}
	item = cJSON_GetObjectItemCaseSensitive(root, "format");
	if (!cJSON_IsNumber(item) || item->valuedouble != TH_TABLE_FORMAT) {
		th_error_set(err, TH_EINVALID, "schema.json: unsupported or missing format");
		goto cleanup;
	}
	cols = cJSON_GetObjectItemCaseSensitive(root, "columns");
	if (!cJSON_IsArray(cols) || cJSON_GetArraySize(cols) == 0) {
		th_error_set(err, TH_EINVALID,
		             "schema.json: \"columns\" must be a non-empty array");
		goto cleanup;
	}
	s.ncols = (size_t)cJSON_GetArraySize(cols);
	if ((s.cols = calloc(s.ncols, sizeof(*s.cols))) == NULL) {
		s.ncols = 0;
		error = th_error_set(err, TH_ENOMEM, "out of memory reading a schema");
		goto cleanup;
	}
	i = 0;
	cJSON_ArrayForEach(item, cols)
	{
		cJSON *name = cJSON_GetObjectItemCaseSensitive(item, "name");
		cJSON *type = cJSON_GetObjectItemCaseSensitive(item, "type");
		cJSON *nullable = cJSON_GetObjectItemCaseSensitive(item, "nullable");
		th_column *c = &s.cols[i++];

		if (!cJSON_IsString(name) || !th_column_name_valid(name->valuestring)) {
			th_error_set(err, TH_EINVALID, "schema.json: column %zu has no valid name",
			             i);
			goto cleanup;
		}
		if (!cJSON_IsString(type) || (c->type = th_type_parse(type->valuestring)) == 0) {
			th_error_set(err, TH_EINVALID,
			             "schema.json: column '%s' has an unknown type",
			             name->valuestring);
			goto cleanup;
		}
		if (nullable != NULL && !cJSON_IsBool(nullable)) {
			th_error_set(err, TH_EINVALID,
			             "schema.json: column '%s': \"nullable\" must be a boolean",
			             name->valuestring);
			goto cleanup;
		}
		c->nullable = nullable == NULL || cJSON_IsTrue(nullable);
		if ((c->name = strdup(name->valuestring)) == NULL) {
			error = th_error_set(err, TH_ENOMEM, "out of memory reading a schema");
			goto cleanup;
		}
		for (j = 0; j + 1 < i; j++) {
			if (strcmp(s.cols[j].name, c->name) == 0) {
				th_error_set(err, TH_EINVALID, "schema.json: duplicate column '%s'",
				             c->name);
				goto cleanup;
			}
		}
	}
	pk = cJSON_GetObjectItemCaseSensitive(root, "primaryKey");
	if (pk != NULL && !cJSON_IsArray(pk)) {
		th_error_set(err, TH_EINVALID, "schema.json: \"primaryKey\" must be an array");
		goto cleanup;
	}
	if (pk != NULL && cJSON_GetArraySize(pk) > 0) {
		if ((s.pk = calloc((size_t)cJSON_GetArraySize(pk), sizeof(*s.pk))) == NULL) {
			error = th_error_set(err, TH_ENOMEM, "out of memory reading a schema");
			goto cleanup;
		}
		cJSON_ArrayForEach(item, pk)
		{
			int idx = cJSON_IsString(item) ? th_schema_find(&s, item->valuestring) : -1;
			if (idx < 0) {
				th_error_set(err, TH_EINVALID,
				             "schema.json: primary key column '%s' does not exist",
				             cJSON_IsString(item) ? item->valuestring : "?");
				goto cleanup;
			}
			for (j = 0; j < s.npk; j++) {
				if (s.pk[j] == (size_t)idx) {
					th_error_set(
					        err, TH_EINVALID,
					        "schema.json: primary key column '%s' repeated",
					        item->valuestring);
					goto cleanup;
				}
			}
			s.pk[s.npk++] = (size_t)idx;
		}
	}
	*out = s;
	s = (th_schema)TH_SCHEMA_INIT;
	error = TH_OK;

cleanup:
	cJSON_Delete(root);
	th_schema_dispose(&s);
	return error;
}

int th_schema_rows_from_json(uint64_t *rows, const char *json, size_t len)
{
	cJSON *root = cJSON_ParseWithLength(json, len), *item;
	int error = TH_OK;

	*rows = 0;
	if (root == NULL || !cJSON_IsObject(root)) {
		error = TH_EINVALID;
		goto cleanup;
	}
	item = cJSON_GetObjectItemCaseSensitive(root, "rows");
	if (item == NULL)
		goto cleanup;
	if (!cJSON_IsNumber(item) || !(item->valuedouble >= 0) || item->valuedouble > 1.8e19 ||
	    item->valuedouble != (double)(uint64_t)item->valuedouble) {
		error = TH_EINVALID;
		goto cleanup;
	}
	*rows = (uint64_t)item->valuedouble;

cleanup:
	cJSON_Delete(root);
	return error;
}

int th_schema_copy(th_schema *out, const th_schema *s, th_error *err)
{
	th_schema c = TH_SCHEMA_INIT;
	size_t i;

	if (s->ncols && (c.cols = calloc(s->ncols, sizeof(*c.cols))) == NULL)
		goto oom;
	for (i = 0; i < s->ncols; i++, c.ncols++) {
		c.cols[i] = s->cols[i];
		if ((c.cols[i].name = strdup(s->cols[i].name)) == NULL)
			goto oom;
	}
	if (s->npk) {
		if ((c.pk = malloc(s->npk * sizeof(*c.pk))) == NULL)
			goto oom;
		memcpy(c.pk, s->pk, s->npk * sizeof(*c.pk));
		c.npk = s->npk;
	}
	*out = c;
	return TH_OK;
oom:
	th_schema_dispose(&c);
	return th_error_set(err, TH_ENOMEM, "out of memory copying a schema");
}

void th_schema_dispose(th_schema *s)
{
	size_t i;

	if (s == NULL)
		return;
	for (i = 0; i < s->ncols; i++)
		free(s->cols[i].name);
	free(s->cols);
	free(s->pk);
	s->cols = NULL;
	s->pk = NULL;
	s->ncols = s->npk = 0;
}

int th_schema_find(const th_schema *s, const char *name)
{
	size_t i;

	for (i = 0; i < s->ncols; i++) {
		if (s->cols[i].name && strcmp(s->cols[i].name, name) == 0)
			return (int)i;
	}
	return -1;
}

int th_table_name_valid(const char *name)
{
	/* The rules of owner and database names; SQLite reserves "sqlite_" for itself, and a table
	 * so named could not be queried. */
	return th_name_valid(name) && strncasecmp(name, "sqlite_", 7) != 0;
}

int th_column_name_valid(const char *name)
{
	const unsigned char *s = (const unsigned char *)name;
	size_t len, i;

	if (name == NULL || (len = strlen(name)) == 0 || len > TH_COLUMN_NAME_MAX ||
	    !th_utf8_valid(name, len, NULL))
		return 0;
	for (i = 0; i < len; i++) {
		/* C0 controls, DEL, and the C1 controls U+0080..U+009F (encoded c2 80..c2 9f) */
		if (s[i] < 0x20 || s[i] == 0x7f ||
		    (s[i] == 0xc2 && s[i + 1] >= 0x80 && s[i + 1] <= 0x9f))
			return 0;
	}
	return 1;
}

/* test_api_openapi.c: the OpenAPI document (api/openapi.json, embedded in the binary) and the
 * route tables agree, so no route is added, removed or changed without its description.
 *
 * Every route of every table in api_route_tables (the web pages' table aside: HTML, not API) must
 * be an operation of the document, the same method on the same path with ":name" written
 * "{name}", and every operation of the document must be such a route. Each operation's path
 * parameters are exactly the path's {names}; each has a unique operationId, a 2xx response and
 * security stated. The running server serves the same bytes at /api/openapi.json. tests/openapi/
 * then validates the document with an OpenAPI validator and checks live answers against it.
 */
#include "../harness.h"
#include "server.h"
#include "../../api/api.h"

static cJSON *doc;

/* ":owner" and "*branch" segments to "{owner}", "{branch}", into out. */
static void openapi_path(char *out, size_t outsz, const char *pattern)
{
	size_t n = 0;

	for (const char *p = pattern; *p && n + 3 < outsz; p++) {
		if ((*p == ':' || *p == '*') && (p == pattern || p[-1] == '/')) {
			size_t len = strcspn(p + 1, "/");
			n += (size_t)snprintf(out + n, outsz - n, "{%.*s}", (int)len, p + 1);
			p += len;
		} else {
			out[n++] = *p;
		}
	}
	out[n] = '\0';
}

static void lower(char *out, const char *s)
{
	while ((*out++ = (char)((*s >= 'A' && *s <= 'Z') ? *s + 32 : *s)))
		s++;
}

/* A parameter, resolving a $ref into components/parameters. */
static const cJSON *param_of(const cJSON *p)
{
	const char *r = cJSON_GetStringValue(cJSON_GetObjectItem(p, "$ref"));
	const char *pre = "#/components/parameters/";

	if (r == NULL)
		return p;
	if (strncmp(r, pre, strlen(pre)) != 0)
		return NULL;
	return cJSON_GetObjectItem(
	        cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "components"), "parameters"),
	        r + strlen(pre));
}

/* The operation's path parameters are exactly the {names} of the path. */
static int path_params_agree(const char *path, const cJSON *operation)
{
	const cJSON *p;
	int in_path = 0, in_doc = 0, ok = 1;

	for (const char *s = path; (s = strchr(s, '{')) != NULL; s++) {
		char name[64];
		int found = 0;
		snprintf(name, sizeof(name), "%.*s", (int)strcspn(s + 1, "}"), s + 1);
		in_path++;
		cJSON_ArrayForEach(p, cJSON_GetObjectItem(operation, "parameters"))
		{
			const cJSON *q = param_of(p);
			if (q &&
			    strcmp(nz(cJSON_GetStringValue(cJSON_GetObjectItem(q, "in"))),
			           "path") == 0 &&
			    strcmp(nz(cJSON_GetStringValue(cJSON_GetObjectItem(q, "name"))),
			           name) == 0)
				found = 1;
		}
		if (!found) {
			fprintf(stderr, "  %s: no path parameter '%s' documented\n", path, name);
			ok = 0;
		}
	}
	cJSON_ArrayForEach(p, cJSON_GetObjectItem(operation, "parameters"))
	{
		const cJSON *q = param_of(p);
		if (q == NULL) {
			fprintf(stderr, "  %s: a parameter $ref leads nowhere\n", path);
			ok = 0;
		} else if (strcmp(nz(cJSON_GetStringValue(cJSON_GetObjectItem(q, "in"))), "path") ==
		           0) {
			in_doc++;
		}
	}
	if (in_doc != in_path) {
		fprintf(stderr, "  %s: %d path parameters documented, the path has %d\n", path,
		        in_doc, in_path);
		ok = 0;
	}
	return ok;
}

static void test_every_route_is_documented(void)
{
	const cJSON *paths = cJSON_GetObjectItem(doc, "paths");
	int routes = 0;

	for (size_t t = 0; api_route_tables[t] != NULL; t++) {
		if (api_route_tables[t] == api_web_routes)
			continue;
		for (const api_route *r = api_route_tables[t]; r->method != NULL; r++) {
			char path[512], method[16];
			const cJSON *operation;
			openapi_path(path, sizeof(path), r->pattern);
			lower(method, r->method);
			operation = cJSON_GetObjectItem(cJSON_GetObjectItem(paths, path), method);
			routes++;
			if (operation == NULL) {
				fprintf(stderr, "  not in api/openapi.json: %s %s\n", r->method,
				        path);
				CHECK(operation != NULL);
				continue;
			}
			CHECK(path_params_agree(path, operation));
		}
	}
	CHECK(routes > 40);
}

static int route_exists(const char *path, const char *method)
{
	for (size_t t = 0; api_route_tables[t] != NULL; t++) {
		if (api_route_tables[t] == api_web_routes)
			continue;
		for (const api_route *r = api_route_tables[t]; r->method != NULL; r++) {
			char p[512], m[16];
			openapi_path(p, sizeof(p), r->pattern);
			lower(m, r->method);
			if (strcmp(p, path) == 0 && strcmp(m, method) == 0)
				return 1;
		}
	}
	return 0;
}

static void test_every_operation_is_a_route(void)
{
	const cJSON *path, *operation;
	cJSON *ids = cJSON_CreateObject();

	cJSON_ArrayForEach(path, cJSON_GetObjectItem(doc, "paths"))
	{
		cJSON_ArrayForEach(operation, path)
		{
			const char *id =
			        cJSON_GetStringValue(cJSON_GetObjectItem(operation, "operationId"));
			const cJSON *resp = cJSON_GetObjectItem(operation, "responses"), *r;
			int ok2xx = 0;
			if (!route_exists(path->string, operation->string)) {
				fprintf(stderr, "  no route for %s %s\n", operation->string,
				        path->string);
				CHECK(0);
			}
			CHECK(id != NULL);
			if (id != NULL) {
				if (cJSON_GetObjectItem(ids, id) != NULL)
					fprintf(stderr, "  operationId '%s' used twice\n", id);
				CHECK(cJSON_GetObjectItem(ids, id) == NULL);
				cJSON_AddTrueToObject(ids, id);
			}
			cJSON_ArrayForEach(r, resp)
			{
				ok2xx |= r->string[0] == '2';
			}
			CHECK(ok2xx);
			CHECK(cJSON_IsArray(cJSON_GetObjectItem(operation, "security")));
		}
	}
	cJSON_Delete(ids);
}

static void test_served(void)
{
	char *d = t_mkdtemp(), *body = NULL;
	t_server s;

	if (t_server_start(&s, d, 0, NULL) < 0) {
		CHECK(0);
		t_rmdir(d);
		return;
	}
	CHECK(t_sh(&body,
	           "curl -s -H 'Accept-Encoding: identity' 'http://127.0.0.1:%d/api/openapi.json'",
	           s.port) == 0);
	CHECK(body != NULL && strlen(body) == api_openapi_json_len &&
	      memcmp(body, api_openapi_json, api_openapi_json_len) == 0);
	free(body);
	t_server_stop(&s, SIGTERM);
	t_rmdir(d);
}

int main(void)
{
	doc = cJSON_ParseWithLength((const char *)api_openapi_json, api_openapi_json_len);
	CHECK(doc != NULL);
	if (doc == NULL)
		TH_TEST_END();
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(doc, "openapi")), "3.1.0");
	RUN(test_every_route_is_documented);
	RUN(test_every_operation_is_a_route);
	RUN(test_served);
	cJSON_Delete(doc);
	TH_TEST_END();
}

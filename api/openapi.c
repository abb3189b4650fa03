/* openapi.c: GET /api/openapi.json, the OpenAPI 3.1 description of every route of the server (the
 * web pages aside), for API explorers and generated clients.
 *
 * The document is api/openapi.json, kept beside the route tables and embedded at build time
 * (openapi_embed.cmake). It cannot drift from them unseen: tests/api/test_api_openapi.c walks
 * every route table (api_route_tables) and fails when a route, a method or a path parameter is
 * missing from the document or the document names one no table has; tests/openapi/ validates the
 * document with @apidevtools/swagger-parser and checks one answer of every route against the
 * schema documented for its status.
 */
#include "api.h"

const api_route api_openapi_routes[] = { { "GET", "/api/openapi.json", api_openapi_get, 0 },
	                                 { NULL, NULL, NULL, 0 } };

int api_openapi_get(th_req *req, th_error *err)
{
	return api_reply_text(req, MHD_HTTP_OK, (const char *)api_openapi_json,
	                      api_openapi_json_len, err);
}

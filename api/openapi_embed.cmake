# openapi_embed.cmake: turn api/openapi.json into a C file (cmake -DIN=... -DOUT=... -P this), so
# the binary serves the document without a file beside it. A byte array, not a string literal:
# C11 compilers need not take literals over 4095 bytes (-Wpedantic says so).
file(READ "${IN}" hex HEX)
string(LENGTH "${hex}" n)
math(EXPR len "${n} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n" bytes "${bytes}")
file(WRITE "${OUT}" "/* Generated from api/openapi.json by api/openapi_embed.cmake: do not edit. */\n"
  "#include <stddef.h>\n"
  "extern const unsigned char api_openapi_json[];\n"
  "extern const size_t api_openapi_json_len;\n"
  "const unsigned char api_openapi_json[] = {\n${bytes}0x00 };\n"
  "const size_t api_openapi_json_len = ${len};\n")

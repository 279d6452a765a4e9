// atrium-load: MessagePack values as JSON lines, through the server's own transcoder
// (src/json/messagepack.hpp), for the few messages atrium-load reads whole under
// --encoding msgpack (decode.c).
#include <string>
#include <vector>

#include "json/messagepack.hpp"

extern "C" const char *msgpack_to_json_lines(const char *p, size_t n, size_t *out_len) {
  static std::string lines;
  std::vector<std::string> values;
  if (!atrium::json::msgpack_to_json(std::string_view(p, n), values)) return nullptr;
  lines.clear();
  for (const std::string &v : values) {
    if (!lines.empty()) lines.push_back('\n');
    lines += v;
  }
  *out_len = lines.size();
  return lines.data();
}

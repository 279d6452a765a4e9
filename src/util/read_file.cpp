#include "util/read_file.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace atrium {

Result<std::string> read_file(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return make_error(ErrorCode::not_found, std::strerror(errno));
  std::string text;
  char buf[16384];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
  const bool failed = std::ferror(f) != 0;
  const int err = errno;
  std::fclose(f);
  if (failed) return make_error(ErrorCode::internal, std::strerror(err));
  return text;
}

}  // namespace atrium

// Static files under --public: URL path -> file inside the public directory.
#include "net/static_files.hpp"

#include <climits>
#include <cstdlib>
#include <sys/stat.h>

namespace atrium::net {

namespace {

std::string real_path(const std::string& path) {
  char buf[PATH_MAX];
  if (!::realpath(path.c_str(), buf)) return {};
  return buf;
}

bool is_directory(const std::string& path) {
  struct stat st{};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool is_regular_file(const std::string& path) {
  struct stat st{};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// Refuses "..", "." and dot-files (.env, .git) in any segment, and NUL bytes.
bool safe_url_path(std::string_view path) {
  if (path.empty() || path.front() != '/' || path.find('\0') != std::string_view::npos)
    return false;
  std::size_t start = 1;
  while (start <= path.size()) {
    std::size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    if (end > start && path[start] == '.') return false;
    start = end + 1;
  }
  return true;
}

}  // namespace

StaticFiles::StaticFiles(const std::string& public_dir) {
  if (public_dir.empty() || !is_directory(public_dir)) return;
  root_ = real_path(public_dir);
}

std::optional<StaticFile> StaticFiles::resolve(std::string_view url_path) const {
  if (root_.empty() || !safe_url_path(url_path)) return std::nullopt;
  std::string path = root_;
  path.append(url_path);
  if (path.back() == '/') path.append("index.html");
  else if (is_directory(path)) path.append("/index.html");
  // Clean URLs: /inspect serves inspect.html.
  if (!is_regular_file(path) && url_path.find('.') == std::string_view::npos) path.append(".html");
  if (!is_regular_file(path)) return std::nullopt;
  // A symlink inside the public directory must not lead out of it.
  const std::string real = real_path(path);
  if (real.size() <= root_.size() || real.compare(0, root_.size(), root_) != 0 ||
      real[root_.size()] != '/')
    return std::nullopt;
  return StaticFile{real, content_type_for(real)};
}

const char* StaticFiles::content_type_for(std::string_view name) noexcept {
  struct Type { std::string_view ext; const char* type; };
  static constexpr Type kTypes[] = {
      {".html", "text/html; charset=utf-8"},  {".htm", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"}, {".mjs", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},    {".json", "application/json"},
      {".map", "application/json"},           {".svg", "image/svg+xml"},
      {".png", "image/png"},                  {".jpg", "image/jpeg"},
      {".jpeg", "image/jpeg"},                {".gif", "image/gif"},
      {".webp", "image/webp"},                {".ico", "image/x-icon"},
      {".txt", "text/plain; charset=utf-8"},  {".md", "text/markdown; charset=utf-8"},
      {".lua", "text/plain; charset=utf-8"},  {".wasm", "application/wasm"},
      {".woff2", "font/woff2"},               {".woff", "font/woff"},
  };
  for (const Type& t : kTypes)
    if (name.size() > t.ext.size() && name.substr(name.size() - t.ext.size()) == t.ext)
      return t.type;
  return "application/octet-stream";
}

}  // namespace atrium::net

// Static files under --public, served at "/": maps a URL path to a regular file inside the
// public directory (never outside it, never a dot-file) and names its content type.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace atrium::net {

struct StaticFile {
  std::string path;            // absolute, inside the public directory
  const char* content_type;
};

class StaticFiles {
 public:
  // An empty or missing directory serves nothing (resolve() always misses).
  explicit StaticFiles(const std::string& public_dir);

  bool enabled() const noexcept { return !root_.empty(); }
  const std::string& root() const noexcept { return root_; }

  // url_path is percent-decoded and free of "/../" (libwebsockets sanitizes it); this
  // checks again anyway. "/" and "/dir/" give index.html.
  std::optional<StaticFile> resolve(std::string_view url_path) const;

  static const char* content_type_for(std::string_view file_name) noexcept;

 private:
  std::string root_;           // realpath of the public directory, or empty
};

}  // namespace atrium::net

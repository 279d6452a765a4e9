// Finding lua/ and public/ at run time: installed, or in the checkout the binary was built from.
#include "cli/data_dirs.hpp"

#include <cstdlib>
#include <initializer_list>
#include <sys/stat.h>
#include <unistd.h>

#ifndef ATRIUM_SOURCE_PUBLIC_DIR
#define ATRIUM_SOURCE_PUBLIC_DIR ""
#endif
#ifndef ATRIUM_INSTALL_PUBLIC_DIR
#define ATRIUM_INSTALL_PUBLIC_DIR ""
#endif
#ifndef ATRIUM_SOURCE_WEB_DIR
#define ATRIUM_SOURCE_WEB_DIR ""
#endif
#ifndef ATRIUM_INSTALL_WEB_DIR
#define ATRIUM_INSTALL_WEB_DIR ""
#endif

namespace atrium::cli {

namespace {

bool is_directory(const std::string& path) {
  struct stat st{};
  return !path.empty() && ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// <dir of /proc/self/exe>/../share/atrium/<what>, or "" when the link cannot be read.
std::string beside_executable(const char* what) {
  char buf[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return {};
  std::string exe(buf, static_cast<std::size_t>(n));
  const std::size_t slash = exe.rfind('/');
  if (slash == std::string::npos) return {};
  return exe.substr(0, slash) + "/../share/atrium/" + what;
}

}  // namespace

std::string find_lua_dir() {
  if (const char* env = std::getenv("ATRIUM_LUA_PATH"); env && *env) return env;
  for (const std::string& dir : {beside_executable("lua"), std::string(ATRIUM_SOURCE_LUA_DIR)})
    if (is_directory(dir)) return dir;
  return ATRIUM_INSTALL_LUA_DIR;
}

namespace {

std::optional<std::string> first_directory(std::initializer_list<std::string> dirs) {
  for (const std::string& dir : dirs)
    if (is_directory(dir)) return dir;
  return std::nullopt;
}

}  // namespace

std::optional<std::string> find_public_dir() {
  return first_directory({beside_executable("public"), ATRIUM_SOURCE_PUBLIC_DIR,
                          ATRIUM_INSTALL_PUBLIC_DIR});
}

std::optional<std::string> find_web_dir() {
  return first_directory({beside_executable("web"), ATRIUM_SOURCE_WEB_DIR, ATRIUM_INSTALL_WEB_DIR});
}

}  // namespace atrium::cli

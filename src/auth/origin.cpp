#include "auth/origin.hpp"

#include <cctype>

namespace atrium::auth {

namespace {

struct Parts {
  std::string scheme, host, port;  // lower-cased; port "" when the default
  bool ok = false;
};

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// "https://Host.example:443" -> {https, host.example, ""}. An origin has no path, query,
// user info or fragment: anything with one is not an origin and matches nothing.
Parts split(std::string_view origin) {
  Parts p;
  const std::size_t sep = origin.find("://");
  if (sep == std::string_view::npos || sep == 0) return p;
  p.scheme = lower(origin.substr(0, sep));
  std::string_view rest = origin.substr(sep + 3);
  if (rest.empty() || rest.find_first_of("/?#@ \t") != std::string_view::npos) return p;
  std::string_view host = rest;
  // [v6]:port, or host:port
  const std::size_t bracket = rest.rfind(']');
  const std::size_t colon = rest.rfind(':');
  if (colon != std::string_view::npos && (bracket == std::string_view::npos || colon > bracket)) {
    host = rest.substr(0, colon);
    p.port = std::string(rest.substr(colon + 1));
    if (p.port.empty()) return p;
    for (char c : p.port)
      if (c < '0' || c > '9') return p;
  }
  if (host.empty()) return p;
  p.host = lower(host);
  if ((p.scheme == "https" && p.port == "443") || (p.scheme == "http" && p.port == "80")) p.port.clear();
  p.ok = true;
  return p;
}

bool matches(const Parts& origin, std::string_view entry) {
  const Parts want = split(entry);
  if (!want.ok || want.scheme != origin.scheme || want.port != origin.port) return false;
  if (want.host.rfind("*.", 0) == 0) {
    const std::string_view suffix = std::string_view(want.host).substr(1);  // ".example.com"
    return origin.host.size() > suffix.size() &&
           origin.host.compare(origin.host.size() - suffix.size(), suffix.size(), suffix) == 0;
  }
  return want.host == origin.host;
}

}  // namespace

bool origin_allowed(std::string_view origin, const std::vector<std::string>& allowed) {
  if (origin == "null") {
    for (const std::string& a : allowed)
      if (a == "null") return true;
    return false;
  }
  const Parts o = split(origin);
  if (!o.ok || o.host.find('*') != std::string::npos) return false;
  for (const std::string& a : allowed)
    if (matches(o, a)) return true;
  return false;
}

}  // namespace atrium::auth

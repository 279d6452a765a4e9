// --allowed-origins: which browser pages may open a WebSocket or write through the HTTP
// API. A cross-site page carries the user's cookies along (cross-site WebSocket
// hijacking); its Origin header is what tells it apart.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace atrium::auth {

// `allowed` holds exact origins ("https://app.example.com", "http://127.0.0.1:8080") and
// patterns whose host begins with "*." ("https://*.example.com": any subdomain, at any
// depth, not example.com itself). Scheme and host compare without case; the port must be
// the same (none means the scheme's default, written or not). "null" (a sandboxed page,
// a file) matches only an entry "null".
bool origin_allowed(std::string_view origin, const std::vector<std::string>& allowed);

}  // namespace atrium::auth

// --allowed-origins matching (auth/origin.hpp): exact origins, *.domain patterns, ports,
// case, and the look-alikes a cross-site page would try.
#include <doctest/doctest.h>

#include "auth/origin.hpp"

using atrium::auth::origin_allowed;

TEST_CASE("origins: exact entries match scheme, host and port, without case; default ports are the same") {
  const std::vector<std::string> allowed = {"https://app.example.com", "http://127.0.0.1:8080"};
  CHECK(origin_allowed("https://app.example.com", allowed));
  CHECK(origin_allowed("HTTPS://App.Example.COM", allowed));
  CHECK(origin_allowed("https://app.example.com:443", allowed));
  CHECK(origin_allowed("http://127.0.0.1:8080", allowed));
  CHECK_FALSE(origin_allowed("http://app.example.com", allowed));        // scheme
  CHECK_FALSE(origin_allowed("https://app.example.com:8443", allowed));  // port
  CHECK_FALSE(origin_allowed("http://127.0.0.1", allowed));
  CHECK_FALSE(origin_allowed("https://app.example.com.evil.example", allowed));
  CHECK_FALSE(origin_allowed("https://evilapp.example.com", allowed));
  CHECK_FALSE(origin_allowed("https://app.example.com/", allowed));       // not an origin
  CHECK_FALSE(origin_allowed("https://user@app.example.com", allowed));
  CHECK_FALSE(origin_allowed("", allowed));
  CHECK_FALSE(origin_allowed("null", allowed));
  CHECK(origin_allowed("null", {"null"}));
}

TEST_CASE("origins: *.domain matches subdomains at any depth, never the domain itself or look-alikes") {
  const std::vector<std::string> allowed = {"https://*.example.com"};
  CHECK(origin_allowed("https://a.example.com", allowed));
  CHECK(origin_allowed("https://a.b.example.com", allowed));
  CHECK_FALSE(origin_allowed("https://example.com", allowed));
  CHECK_FALSE(origin_allowed("https://evilexample.com", allowed));
  CHECK_FALSE(origin_allowed("https://a.example.com.evil", allowed));
  CHECK_FALSE(origin_allowed("http://a.example.com", allowed));
  CHECK_FALSE(origin_allowed("https://a.example.com:444", allowed));
  CHECK_FALSE(origin_allowed("https://*.example.com", allowed));  // a literal star is no host
}

TEST_CASE("origins: IPv6 hosts and ports") {
  const std::vector<std::string> allowed = {"http://[::1]:8080"};
  CHECK(origin_allowed("http://[::1]:8080", allowed));
  CHECK_FALSE(origin_allowed("http://[::1]", allowed));
  CHECK_FALSE(origin_allowed("http://[::1]:80800", allowed));
}

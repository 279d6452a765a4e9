// RFC 6901 JSON Pointer: escaping and splitting.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "state/json_pointer.hpp"

using atrium::state::append_index;
using atrium::state::append_token;
using atrium::state::split_pointer;

TEST_CASE("tokens escape '~' as ~0 and '/' as ~1") {
  std::string p;
  append_token(p, "a/b~c");
  CHECK(p == "/a~1b~0c");
  append_token(p, "");
  CHECK(p == "/a~1b~0c/");
  append_token(p, "~1");                            // a literal "~1" must not read as "/"
  CHECK(p == "/a~1b~0c//~01");
  append_index(p, 0);
  append_index(p, 1234567);
  CHECK(p == "/a~1b~0c//~01/0/1234567");
}

TEST_CASE("splitting a pointer gives back the tokens that were escaped into it") {
  const std::vector<std::string> keys = {"", "/", "~", "~0", "~1", "a/b", "é/ü", "0", "-",
                                         " space ", "x~/y"};
  std::string p;
  for (const auto& k : keys) append_token(p, k);
  std::vector<std::string> tokens;
  REQUIRE(split_pointer(p, tokens));
  CHECK(tokens == keys);
}

TEST_CASE("the empty pointer is the whole document and \"/\" is the empty key") {
  std::vector<std::string> tokens = {"stale"};
  REQUIRE(split_pointer("", tokens));
  CHECK(tokens.empty());
  REQUIRE(split_pointer("/", tokens));
  CHECK(tokens == std::vector<std::string>{""});
  REQUIRE(split_pointer("/a//b/", tokens));
  CHECK(tokens == std::vector<std::string>{"a", "", "b", ""});
}

TEST_CASE("a pointer without a leading slash or with a bad escape is refused") {
  std::vector<std::string> tokens;
  CHECK_FALSE(split_pointer("a", tokens));
  CHECK_FALSE(split_pointer("/a~", tokens));
  CHECK_FALSE(split_pointer("/a~2", tokens));
  CHECK_FALSE(split_pointer("/~x/b", tokens));
  REQUIRE(split_pointer("/~01", tokens));           // decoded once, left to right
  CHECK(tokens == std::vector<std::string>{"~1"});
}

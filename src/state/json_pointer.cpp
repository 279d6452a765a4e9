// RFC 6901 JSON Pointer: escaping tokens into a pointer and splitting one back.
#include "state/json_pointer.hpp"

#include <algorithm>
#include <charconv>

namespace atrium::state {

void append_token(std::string& pointer, std::string_view token) {
  pointer.push_back('/');
  // Most keys hold neither character: copy them in one go. A plain loop: find_first_of
  // with a set costs several times as much on keys this short (callgrind, the arena bench).
  bool plain = true;
  for (const char c : token) plain &= c != '~' && c != '/';
  if (plain) {
    pointer.append(token);
    return;
  }
  for (const char c : token) {
    if (c == '~') {
      pointer.append("~0", 2);
    } else if (c == '/') {
      pointer.append("~1", 2);
    } else {
      pointer.push_back(c);
    }
  }
}

void append_index(std::string& pointer, std::size_t index) {
  char buf[24];
  buf[0] = '/';
  const auto r = std::to_chars(buf + 1, buf + sizeof buf, index);
  pointer.append(buf, static_cast<std::size_t>(r.ptr - buf));
}

bool unescape_token(std::string_view token, std::string& out) {
  for (std::size_t i = 0; i < token.size(); ++i) {
    const char c = token[i];
    if (c != '~') {
      out.push_back(c);
      continue;
    }
    // "~01" is "~1" and not "/": each escape is decoded once, left to right.
    if (i + 1 == token.size()) return false;
    const char e = token[++i];
    if (e != '0' && e != '1') return false;
    out.push_back(e == '0' ? '~' : '/');
  }
  return true;
}

bool split_pointer(std::string_view pointer, std::vector<std::string>& tokens) {
  tokens.clear();
  if (pointer.empty()) return true;               // the whole document
  if (pointer.front() != '/') return false;
  for (std::size_t start = 1;;) {
    const std::size_t end = std::min(pointer.find('/', start), pointer.size());
    std::string token;
    if (!unescape_token(pointer.substr(start, end - start), token)) return false;
    tokens.push_back(std::move(token));
    if (end == pointer.size()) return true;
    start = end + 1;
  }
}

}  // namespace atrium::state

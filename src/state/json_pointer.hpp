// RFC 6901 JSON Pointer tokens.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace atrium::state {

// Appends "/" + token with "~" -> "~0" and "/" -> "~1".
void append_token(std::string& pointer, std::string_view token);
void append_index(std::string& pointer, std::size_t index);

// Appends one escaped token ("a~1b") to `out` unescaped ("a/b"); false on a "~" not
// followed by 0 or 1.
bool unescape_token(std::string_view token, std::string& out);

// Splits "/a~1b/0" into {"a/b", "0"}; false when the pointer is not "" and does not
// start with "/" or holds a "~" not followed by 0 or 1.
bool split_pointer(std::string_view pointer, std::vector<std::string>& tokens);

}  // namespace atrium::state

// Shared by the libFuzzer targets (tests/fuzz/README.md): a check that survives NDEBUG and
// tells libFuzzer about the failure by aborting (it then saves the input as a crash).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#define FUZZ_CHECK(cond, ...)                                                       \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "FUZZ_CHECK failed at %s:%d: %s\n", __FILE__, __LINE__, \
                   #cond);                                                          \
      std::fprintf(stderr, "  " __VA_ARGS__);                                       \
      std::fprintf(stderr, "\n");                                                   \
      std::abort();                                                                 \
    }                                                                               \
  } while (0)

namespace atrium::fuzz {

inline std::string_view as_text(const unsigned char* data, std::size_t size) {
  return std::string_view(reinterpret_cast<const char*>(data), size);
}

// At most `n` bytes of `s`, for messages.
inline std::string head(std::string_view s, std::size_t n = 300) {
  return std::string(s.substr(0, n)) + (s.size() > n ? "..." : "");
}

}  // namespace atrium::fuzz

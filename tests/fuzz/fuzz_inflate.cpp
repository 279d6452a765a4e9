// libFuzzer target: permessage-deflate's codecs (net/permessage_deflate.hpp) on any bytes.
// As a client's compressed message, inflating never passes the cap, and a message refused
// for size is refused at every smaller cap; the same bytes compressed by the server's
// deflater inflate back to themselves; and an inflater that just refused something reads
// the next message right.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_common.hpp"
#include "net/permessage_deflate.hpp"

using namespace atrium;
using net::MessageInflater;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static MessageInflater inflater;
  static net::MessageDeflater deflater;
  const std::string_view bytes = fuzz::as_text(data, size);
  const std::size_t cap = 1 + (size ? data[0] : 0) * 64;  // 1..16321
  std::string out;
  const MessageInflater::Result r = inflater.inflate(bytes, cap, out);
  FUZZ_CHECK(out.size() <= cap + 1, "inflated %zu bytes past a cap of %zu", out.size(), cap);
  if (r == MessageInflater::Result::ok) {
    FUZZ_CHECK(out.size() <= cap, "ok with %zu bytes over a cap of %zu", out.size(), cap);
    if (!out.empty()) {
      std::string again;
      FUZZ_CHECK(inflater.inflate(bytes, out.size() - 1, again) == MessageInflater::Result::too_large,
                 "a cap one byte short was not too small");
    }
  }
  std::string compressed, back;
  FUZZ_CHECK(deflater.compress(bytes, compressed), "the deflater failed");
  FUZZ_CHECK(inflater.inflate(compressed, bytes.size(), back) == MessageInflater::Result::ok && back == bytes,
             "compressed %zu bytes did not inflate back", bytes.size());
  return 0;
}

#include "util/shared_frame.hpp"

namespace atrium {

// An alternate may have a compressed form of its own; a compressed form has neither
// (set_compressed). References never come back round (shared_frame.hpp), so this ends.
void SharedFrame::destroy(Buf* b) noexcept {
  Buf* alt = b->alt;
  Buf* zip = b->zip;
  std::free(b);
  if (alt && --alt->refs == 0) destroy(alt);
  if (zip && --zip->refs == 0) std::free(zip);
}

}  // namespace atrium

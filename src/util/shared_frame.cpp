#include "util/shared_frame.hpp"

namespace atrium {

void SharedFrame::destroy(Buf* b) noexcept {
  Buf* alt = b->alt;   // an alternate has none of its own (set_alternate)
  std::free(b);
  if (alt && --alt->refs == 0) std::free(alt);
}

}  // namespace atrium

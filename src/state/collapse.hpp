// Repeated ops on one path inside one patch interval say more than the last of them:
// five `replace /turn` in 50 ms are one `replace /turn`. Runs before compaction
// (compact.hpp), which merges many ops under one member by their bytes; this one merges
// ops on the same member, whatever their size.
#pragma once

#include <vector>

#include "state/op.hpp"

namespace atrium::state {

// Collapses, in place, each run of ops on one object member's path that nothing else
// touches in between (no op on an ancestor of the path, none under it): the run becomes
// its last op, at the last op's place, as
//   add ... then replace/add v  ->  add v          (the member was absent before the run)
//   replace/remove ... then add/replace v  ->  replace v
//   add ... then remove          ->  nothing       (absent before, absent after)
//   replace ... then remove      ->  remove
// This relies on what the engine's differ guarantees: an `add` of an object member means
// the member was absent. Paths with a token that may index an array (all digits, or "-")
// are never collapsed: two inserts at /list/0 are two items, and an insert before an item
// moves it. Applying the result to the state before the interval gives the same state as
// applying `ops`.
void collapse_repeated_ops(std::vector<Op>& ops);

}  // namespace atrium::state

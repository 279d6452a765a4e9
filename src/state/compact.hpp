// Fewer bytes for a patch frame. A patch interval can gather many ops under one object
// member (1,000 players each moving once: 1,000 replaces under /players). When those ops
// cost more bytes than that member's value as it is now, one op carrying the value says
// the same thing, and every member of the room receives the smaller frame.
#pragma once

#include <string>
#include <vector>

#include "json/value.hpp"
#include "state/op.hpp"

namespace atrium::state {

// Writes `ops` as write_ops() does. `ops` are the changes of one patch interval, in order,
// taking the state of the previous patch to `now`. Where the ops under one object member
// (not under an array item, not beside an op on one of its ancestors) would take more
// bytes than one op setting that member to its value in `now`, that one op is written in
// place of the first of them and the others are left out. Applying the result to the
// previous state gives `now`, as applying `ops` does.
void write_compact_ops(const std::vector<Op>& ops, const json::Value& now, std::string& out);

}  // namespace atrium::state

// RFC 6902 operations as the engine produces them: add, remove, replace.
#pragma once

#include <string>
#include <vector>

#include "json/value.hpp"
#include "util/result.hpp"

namespace atrium::state {

enum class OpKind : unsigned char { add, remove, replace };

struct Op {
  OpKind kind;
  std::string path;         // RFC 6901 JSON Pointer, already escaped ("/a~1b/0")
  json::Value value;        // unused for remove
};

// Appends the ops as comma-separated JSON objects with no surrounding brackets, so the
// ops of several hooks can be concatenated into one patch: {"op":"add","path":...},...
void write_ops(const std::vector<Op>& ops, std::string& out);
void write_op(const Op& op, std::string& out);  // one of them

// Applies ops in order to `doc`. Fails (bad_request) on a path that does not resolve;
// `doc` may then be partly changed. The engine uses it to keep each mirror current.
Status apply_patch(json::Value& doc, const std::vector<Op>& ops);

}  // namespace atrium::state

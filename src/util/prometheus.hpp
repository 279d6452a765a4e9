// One metric in Prometheus' text format, for GET /metrics: its # HELP and # TYPE lines
// (left out when `help` is empty: a further sample of a labelled metric already named),
// then the sample.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace atrium {

inline void append_metric(std::string& out, std::string_view name, std::string_view type,
                          std::string_view help, std::uint64_t value, std::string_view labels = {}) {
  if (!help.empty()) {
    out.append("# HELP ").append(name).append(" ").append(help).append("\n");
    out.append("# TYPE ").append(name).append(" ").append(type).append("\n");
  }
  out.append(name);
  if (!labels.empty()) out.append("{").append(labels).append("}");
  out.append(" ").append(std::to_string(value)).append("\n");
}

}  // namespace atrium

// `atrium replay`: argument handling around engine::replay (engine/replay.cpp).
#include "cli/replay.hpp"

#include <cstdio>

#include "cli/data_dirs.hpp"
#include "engine/replay.hpp"

namespace atrium::cli {

namespace {

const char kUsage[] =
    "usage: atrium replay FILE [--verify] [--out OUT] [--log]\n"
    "\n"
    "Runs a record (atrium serve --record FILE) again in a fresh engine, under its recorded\n"
    "clocks, seeds and script texts.\n"
    "\n"
    "  --verify   compare every output line with the record's; stop at the first that\n"
    "             differs and name its input and record line (the default without --out)\n"
    "  --out OUT  write the replay's output entries to OUT, one per line\n"
    "  --log      print the engine's log lines to stderr\n";

}  // namespace

int run_replay(const std::vector<std::string>& args) {
  std::string file;
  engine::ReplayOptions options;
  bool verify = false;
  bool log = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (a == "--verify") {
      verify = true;
    } else if (a == "--log") {
      log = true;
    } else if (a == "--out" && i + 1 < args.size()) {
      options.out_path = args[++i];
    } else if (a.rfind("--out=", 0) == 0) {
      options.out_path = a.substr(6);
    } else if (!a.empty() && a[0] != '-' && file.empty()) {
      file = a;
    } else {
      std::fprintf(stderr, "atrium replay: unexpected \"%s\"\n\n%s", a.c_str(), kUsage);
      return 2;
    }
  }
  if (file.empty()) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  options.verify = verify || options.out_path.empty();
  options.lua_dir = find_lua_dir();
  if (log) options.on_log = [](std::string_view line) { std::fprintf(stderr, "%.*s\n", static_cast<int>(line.size()), line.data()); };
  auto report = engine::replay(file, options);
  if (!report) {
    std::fprintf(stderr, "atrium replay: %s\n", report.error().message.c_str());
    return 1;
  }
  const std::string text = engine::describe(report.value());
  std::fputs(text.c_str(), report.value().identical ? stdout : stderr);
  return report.value().identical || !options.verify ? 0 : 1;
}

}  // namespace atrium::cli

// The `atrium` executable: picks the subcommand. Exit codes: 0 ok, 1 failure, 2 bad usage.
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "cli/check.hpp"
#include "cli/replay.hpp"
#include "cli/serve.hpp"

namespace {

const char kUsage[] =
    "usage: atrium <command> [options]\n"
    "\n"
    "commands:\n"
    "  serve      serve the rooms in --rooms over WebSocket and HTTP (atrium serve --help)\n"
    "  check      load and lint room scripts: atrium check [DIR]\n"
    "  new        write a starter room script: atrium new NAME [--dir DIR]\n"
    "  replay     run a record of serve --record again and compare: atrium replay FILE --verify\n"
    "\n"
    "  --help     this text\n"
    "  --version  the version\n";

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + (argc > 0 ? 1 : 0), argv + argc);
  try {
    if (args.empty()) {
      std::fputs(kUsage, stderr);
      return 2;
    }
    const std::string& command = args.front();
    if (command == "--help" || command == "-h" || command == "help") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (command == "--version" || command == "-V" || command == "version") {
      std::printf("atrium %s\n", ATRIUM_VERSION);
      return 0;
    }
    if (command == "serve") return atrium::cli::run_serve({args.begin() + 1, args.end()});
    if (command == "check") return atrium::cli::run_check({args.begin() + 1, args.end()});
    if (command == "new") return atrium::cli::run_new({args.begin() + 1, args.end()});
    if (command == "replay") return atrium::cli::run_replay({args.begin() + 1, args.end()});
    std::fprintf(stderr, "atrium: unknown command \"%s\" (see atrium --help)\n", command.c_str());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "atrium: fatal: %s\n", e.what());
    return 1;
  }
}

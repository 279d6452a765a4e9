#include "cli/check.hpp"

#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "cli/data_dirs.hpp"
#include "engine/engine.hpp"

namespace atrium::cli {

namespace fs = std::filesystem;

namespace {

const char kCheckUsage[] =
    "usage: atrium check [DIR]\n"
    "  Loads every DIR/*.lua (default: rooms) as atrium serve would and prints each problem\n"
    "  as file:line: message. Exits 0 when there is none, 1 otherwise.\n";

const char kNewUsage[] =
    "usage: atrium new NAME [--dir DIR]\n"
    "  Writes DIR/NAME.lua (default DIR: rooms), a commented starter room script.\n";

bool valid_name(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) return false;
  return true;
}

std::string starter(const std::string& name) {
  return "-- rooms/" + name + ".lua: " + name + " rooms (" + name + ":<instance>). Started by `atrium new`:\n"
         "-- edit freely; the server reloads it on save. The API: docs/rooms.md.\n"
         "local Room = {\n"
         "  defaultState = { online = 0, log = atrium.array() },  -- public: members get it as patches\n"
         "  defaultMeta = { joins = 0 },                          -- private: never leaves the server\n"
         "  options = { maxMembers = 0, patchRate = 50 },\n"
         "}\n"
         "\n"
         "function Room:onCreate(ctx)          -- ctx of the first join, or nil from server code\n"
         "end\n"
         "\n"
         "function Room:onJoin(ctx)            -- return false, \"reason\" to refuse the join\n"
         "  self.meta.joins = self.meta.joins + 1\n"
         "  self.state.online = self.state.online + 1\n"
         "end\n"
         "\n"
         "function Room:onLeave(ctx)           -- ctx.reason: leave | disconnect | kicked | closed\n"
         "  self.state.online = self.state.online - 1\n"
         "end\n"
         "\n"
         "Room.actions = {}                    -- the only functions clients may call\n"
         "\n"
         "function Room.actions.say(self, ctx, text)\n"
         "  if type(text) ~= \"string\" or #text == 0 or #text > 200 then\n"
         "    error(\"say(text) takes 1 to 200 bytes of text\")\n"
         "  end\n"
         "  local line = { from = ctx.userId or ctx.client, text = text, at = atrium.now() }\n"
         "  table.insert(self.state.log, line)\n"
         "  if #self.state.log > 50 then table.remove(self.state.log, 1) end\n"
         "  self:emit(\"said\", line)\n"
         "  return #self.state.log              -- the call's reply result\n"
         "end\n"
         "\n"
         "return Room\n";
}

}  // namespace

int run_check(const std::vector<std::string>& args) {
  if (args.size() > 1 || (args.size() == 1 && (args[0] == "--help" || args[0] == "-h"))) {
    std::fputs(kCheckUsage, args.size() == 1 ? stdout : stderr);
    return args.size() == 1 ? 0 : 2;
  }
  const std::string dir = args.empty() ? "rooms" : args[0];
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    std::fprintf(stderr, "atrium check: %s is not a directory\n", dir.c_str());
    return 2;
  }
  engine::EngineConfig config;
  config.rooms_dir = dir;
  config.lua_dir = find_lua_dir();
  config.on_log = [](engine::LogLevel, std::string_view) {};
  engine::Engine engine(config);
  if (Status s = engine.start(); !s) {
    std::fprintf(stderr, "atrium check: %s\n", s.error().message.c_str());
    return 1;
  }
  int problems = 0, scripts = 0;
  const json::Value status = engine.status();
  for (const json::Value& t : status.get_array("types")->items()) {
    ++scripts;
    if (const std::string* error = t.get_string("error")) {
      std::printf("%s\n", error->c_str());
      ++problems;
    }
    for (const json::Value& w : t.get_array("warnings")->items()) {
      std::printf("%s\n", w.as_string().c_str());
      ++problems;
    }
  }
  std::printf("checked %d room script%s in %s: %d problem%s\n", scripts, scripts == 1 ? "" : "s",
              dir.c_str(), problems, problems == 1 ? "" : "s");
  return problems ? 1 : 0;
}

int run_new(const std::vector<std::string>& args) {
  std::string name, dir = "rooms";
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--help" || args[i] == "-h") {
      std::fputs(kNewUsage, stdout);
      return 0;
    }
    if (args[i] == "--dir" && i + 1 < args.size()) {
      dir = args[++i];
    } else if (args[i].rfind("--dir=", 0) == 0) {
      dir = args[i].substr(6);
    } else if (name.empty() && args[i][0] != '-') {
      name = args[i];
    } else {
      std::fputs(kNewUsage, stderr);
      return 2;
    }
  }
  if (!valid_name(name)) {
    std::fprintf(stderr, "atrium new: NAME must be 1..64 of [A-Za-z0-9_-] (it becomes the room TYPE)\n");
    return 2;
  }
  std::error_code ec;
  fs::create_directories(dir, ec);
  const fs::path path = fs::path(dir) / (name + ".lua");
  if (fs::exists(path, ec)) {
    std::fprintf(stderr, "atrium new: %s exists; not overwriting it\n", path.c_str());
    return 1;
  }
  std::ofstream out(path, std::ios::binary);
  out << starter(name);
  if (!out) {
    std::fprintf(stderr, "atrium new: cannot write %s\n", path.c_str());
    return 1;
  }
  std::printf("wrote %s: join it as %s:<instance>\n", path.c_str(), name.c_str());
  return 0;
}

}  // namespace atrium::cli

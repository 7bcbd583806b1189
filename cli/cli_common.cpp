// SPDX-License-Identifier: MPL-2.0
#include "cli_common.hpp"

#include <unistd.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <iterator>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "skit/supervisor/pipeline_compiler.hpp"

namespace skit::cli {

std::atomic<bool> g_cancel{false};
std::atomic<unsigned> g_reload{0};

namespace {
constexpr const char* kTextPattern = "%^%L%$ %H:%M:%S.%e [%n] %v";
// %J: the message escaped as a JSON string body (a quote or a backslash in an FFmpeg line
// must not break the line's JSON).
constexpr const char* kJsonPattern =
    R"({"ts":"%Y-%m-%dT%H:%M:%S.%f","level":"%l","logger":"%n","msg":"%J"})";
bool g_level_from_env = false;

class JsonMessageFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm& /*tm*/,
              spdlog::memory_buf_t& dest) override {
    static constexpr char kHex[] = "0123456789abcdef";
    for (const char c : std::string_view(msg.payload.data(), msg.payload.size())) {
      switch (c) {
        case '"': dest.append(std::string_view("\\\"")); break;
        case '\\': dest.append(std::string_view("\\\\")); break;
        case '\n': dest.append(std::string_view("\\n")); break;
        case '\r': dest.append(std::string_view("\\r")); break;
        case '\t': dest.append(std::string_view("\\t")); break;
        default:
          if (static_cast<unsigned char>(c) < 0x20) {
            const char esc[] = {'\\', 'u', '0', '0', kHex[(c >> 4) & 0xF], kHex[c & 0xF]};
            dest.append(std::string_view(esc, sizeof esc));
          } else {
            dest.push_back(c);
          }
      }
    }
  }
  [[nodiscard]] std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JsonMessageFlag>();
  }
};
}  // namespace

void setup_logging() {
  auto logger = spdlog::stderr_color_mt("skit");
  spdlog::set_default_logger(logger);
  set_log_format("auto");
  spdlog::set_level(spdlog::level::warn);
  const char* level = std::getenv("SKIT_LOG");
  if (level == nullptr || *level == '\0') {
    return;
  }
  static constexpr std::array<const char*, 7> kLevels = {"trace", "debug", "info",    "warn",
                                                          "error", "critical", "off"};
  for (const char* name : kLevels) {
    if (std::string_view(level) == name) {
      spdlog::set_level(spdlog::level::from_str(level));
      g_level_from_env = true;
      return;
    }
  }
  if (std::string_view(level) == "warning") {
    spdlog::set_level(spdlog::level::warn);
    g_level_from_env = true;
    return;
  }
  spdlog::warn("SKIT_LOG={} is not a log level (trace, debug, info, warn, error, critical, off): "
               "using warn",
               level);
}

void set_log_format(const std::string& format) {
  const bool json = format == "json" || (format == "auto" && isatty(STDERR_FILENO) == 0);
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  formatter->add_flag<JsonMessageFlag>('J').set_pattern(json ? kJsonPattern : kTextPattern);
  spdlog::set_formatter(std::move(formatter));
}

bool log_level_from_env() { return g_level_from_env; }

std::string self_executable() {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("skit") : p.string();
}

Result<std::string> read_document(const std::string& path) {
  if (path == "-") {
    std::string text((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    return text;
  }
  return supervisor::read_text_file(path);
}

std::string human_bytes(std::uint64_t b) {
  char buf[32];
  if (b >= (1ULL << 30)) {
    std::snprintf(buf, sizeof buf, "%.2f GiB", static_cast<double>(b) / (1ULL << 30));
  } else if (b >= (1ULL << 20)) {
    std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(b) / (1 << 20));
  } else {
    std::snprintf(buf, sizeof buf, "%.1f KiB", static_cast<double>(b) / 1024);
  }
  return buf;
}

std::string media_clock(double seconds) {
  const long tenths = std::lround(std::max(0.0, seconds) * 10);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%02ld:%02ld:%02ld.%ld", tenths / 36000, tenths / 600 % 60,
                tenths / 10 % 60, tenths % 10);
  return buf;
}

CLI::Validator integer_in(long long lo, long long hi) {
  const std::string range = std::to_string(lo) + " to " + std::to_string(hi);
  return CLI::Validator(
      [lo, hi, range](std::string& value) -> std::string {
        long long v = 0;
        std::size_t used = 0;
        try {
          v = std::stoll(value, &used);
        } catch (const std::exception&) {
          used = 0;
        }
        if (used == 0 || used != value.size() || v < lo || v > hi) {
          return "must be an integer from " + range + " (got '" + value + "')";
        }
        return {};
      },
      "INT in " + range);
}

int parse_command_line(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::cout << app.help();
    return 0;
  } catch (const CLI::CallForAllHelp&) {
    std::cout << app.help("", CLI::AppFormatMode::All);
    return 0;
  } catch (const CLI::CallForVersion& e) {
    std::cout << e.what() << "\n";
    return 0;
  } catch (const CLI::ParseError& e) {
    // The subcommand the error belongs to, for its help pointer.
    std::string where = app.get_name();
    for (const CLI::App* sub = &app; sub != nullptr;) {
      const auto chosen = sub->get_subcommands();
      if (chosen.empty()) {
        break;
      }
      sub = chosen.front();
      where += " " + sub->get_name();
    }
    if (e.get_name() == "CallForHelp") {
      return 0;
    }
    std::fprintf(stderr, "%s: %s\n(see %s --help)\n", where.c_str(), e.what(), where.c_str());
    return 2;
  }
  return -1;
}

}  // namespace skit::cli

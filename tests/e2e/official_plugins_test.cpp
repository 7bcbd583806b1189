// SPDX-License-Identifier: MPL-2.0
// The official plugins (plugins/) through the real `skit serve`, each in a sandboxed worker of
// its own: the shipped speech-to-text sample. (silero_vad passed here and was killed by the
// sandbox once in a fresh-clone run: a system call of onnxruntime's to find; espeak_tts
// in a sandboxed worker is not there yet: espeak-ng 1.51 builds a PulseAudio client even for
// synchronous output, whose system calls the worker sandbox refuses.)
#include <gtest/gtest.h>

#include <sstream>

#include "audio_measure.hpp"
#include "session_clients.hpp"

namespace skit::testing {
namespace {

// The plugins the build made: <build>/plugins/native (SKIT_BINARY is <build>/cli/skit).
const fs::path kPluginsDir = fs::path(SKIT_BINARY).parent_path().parent_path() / "plugins";
const fs::path kSamples = kRepo / "samples" / "pipelines" / "oneshot" / "plugins";

class OfficialPlugins : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::exists(kPluginsDir / "native" / "libskit_espeak_tts.so")) << kPluginsDir;
    const std::string root = dir_.path().string();
    server_ = std::make_unique<SkitServer>(session_config(
        "plugins:\n"
        "  directory: '" + kPluginsDir.string() + "'\n"
        "security:\n"
        "  allowed_file_paths: ['" + root + "/**', 'samples/**']\n"
        "  allowed_write_paths: ['" + root + "/**']\n"));
    ASSERT_TRUE(server_->up()) << server_->log();
  }

  Response process(const fs::path& pipeline, const std::string& media) {
    return Curl(dir_, {"-H", "Authorization: Bearer " + kOperatorToken, "-F",
                       "config=@" + pipeline.string(), "-F", "media=@" + media,
                       server_->url("/api/v1/process")})
        .finish();
  }

  static std::vector<json> ndjson(const std::string& body) {
    std::vector<json> out;
    std::istringstream lines(body);
    std::string line;
    while (std::getline(lines, line)) {
      if (!line.empty()) {
        out.push_back(json::parse(line, nullptr, false));
      }
    }
    return out;
  }

  TempDir dir_;
  std::unique_ptr<SkitServer> server_;
};

TEST_F(OfficialPlugins, AllFiveAreListed) {
  const Response r = http_call(server_->http_port(), http::verb::get, "/api/v1/plugins", kViewerToken);
  ASSERT_EQ(r.status, 200) << r.body;
  std::set<std::string> kinds;
  for (const auto& p : json::parse(r.body)) {
    kinds.insert(p["kind"].get<std::string>());
  }
  for (const char* k : {"plugin::native::gain", "plugin::native::espeak_tts",
                        "plugin::native::pocketsphinx_stt", "plugin::native::apertium_translate",
                        "plugin::native::silero_vad"}) {
    EXPECT_TRUE(kinds.contains(k)) << k << " missing from " << r.body << "\n" << server_->log();
  }
}

TEST_F(OfficialPlugins, TheSpeechToTextSampleHearsGoForwardTenMeters) {
  const std::string ogg = dir_.file("goforward.ogg");
  ASSERT_TRUE(ffmpeg({"-f", "s16le", "-ar", "16000", "-ac", "1", "-i",
                      "/usr/share/pocketsphinx/test/data/goforward.raw", "-c:a", "libopus",
                      "-b:a", "96k", ogg}));
  const Response r = process(kSamples / "speech_to_text_pocketsphinx.yml", ogg);
  ASSERT_EQ(r.status, 200) << r.describe();
  std::string heard;
  for (const auto& t : ndjson(r.body)) {
    heard += (heard.empty() ? "" : " ") + t.value("text", "");
  }
  std::printf("pocketsphinx_stt sample on goforward.raw (Opus): \"%s\"\n", heard.c_str());
  EXPECT_EQ(heard, "go forward ten meters") << r.body;
}

}  // namespace
}  // namespace skit::testing

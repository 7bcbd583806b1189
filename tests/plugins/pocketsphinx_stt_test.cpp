// SPDX-License-Identifier: MPL-2.0
// plugin::native::pocketsphinx_stt on the real PocketSphinx with Debian's en-us model:
// `go forward ten meters` exactly, the word error rate on pocketsphinx-testdata's LibriVox
// speech, and an espeak_tts -> pocketsphinx_stt round trip on ten short sentences.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <numbers>
#include <random>

#include "audio_measure.hpp"
#include "plugin_test_common.hpp"

namespace skit::testing {
namespace {

const std::string kTestData = "/usr/share/pocketsphinx/test/data";
constexpr size_t kChunk = 320;  // 20 ms at 16 kHz, the size a pipeline delivers

std::vector<float> read_s16_raw(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<float> x;
  int16_t s = 0;
  while (in.read(reinterpret_cast<char*>(&s), sizeof s)) x.push_back(s / 32768.0f);
  return x;
}

// The words of every Transcription emitted, and the Transcriptions.
struct Heard {
  std::string text;
  std::vector<nlohmann::json> transcriptions;
};
Heard transcribe(PluginInstance& stt, std::span<const float> audio) {
  Heard h;
  for (const auto& p : stt.audio_stream(audio, 16000, kChunk).packets) {
    EXPECT_EQ(p.type, CPacketType_Transcription);
    auto t = p.json();
    h.transcriptions.push_back(t);
    if (!h.text.empty()) h.text += " ";
    h.text += t.value("text", "");
  }
  return h;
}

// Windowed-sinc resampling (Hann, 32 taps a side) for the TTS (22050 Hz) -> STT (16 kHz) hop.
std::vector<float> resample(std::span<const float> x, double from, double to) {
  const double ratio = to / from, cutoff = std::min(1.0, ratio) * 0.95;
  const int half = 32;
  std::vector<float> y(static_cast<size_t>(x.size() * ratio));
  for (size_t n = 0; n < y.size(); ++n) {
    double t = n / ratio;
    long centre = static_cast<long>(std::floor(t));
    double acc = 0;
    for (long k = centre - half + 1; k <= centre + half; ++k) {
      if (k < 0 || k >= static_cast<long>(x.size())) continue;
      double d = t - k;
      double sinc = d == 0 ? 1.0 : std::sin(std::numbers::pi * cutoff * d) / (std::numbers::pi * cutoff * d);
      double w = 0.5 + 0.5 * std::cos(std::numbers::pi * d / half);
      acc += x[k] * cutoff * sinc * w;
    }
    y[n] = static_cast<float>(acc);
  }
  return y;
}

TEST(PocketsphinxSttPlugin, MetadataIsValid) {
  PluginLibrary lib(plugin_path("skit_pocketsphinx_stt"));
  const auto& m = lib.metadata();
  expect_valid_metadata(m, "pocketsphinx_stt");
  ASSERT_NE(m.inputs[0].accepts_types[0].audio_format, nullptr);
  EXPECT_EQ(m.inputs[0].accepts_types[0].audio_format->sample_rate, 16000u);
  EXPECT_EQ(m.outputs[0].produces_type.type_discriminant, CPacketType_Transcription);
}

TEST(PocketsphinxSttPlugin, GoForwardTenMetersExactly) {
  PluginLibrary lib(plugin_path("skit_pocketsphinx_stt"));
  auto stt = lib.create(nlohmann::json::object());
  ASSERT_NE(stt, nullptr);
  auto audio = read_s16_raw(kTestData + "/goforward.raw");
  ASSERT_GT(audio.size(), 16000u);
  Heard h = transcribe(*stt, audio);
  std::printf("pocketsphinx_stt: goforward.raw -> \"%s\"\n", h.text.c_str());
  EXPECT_EQ(h.text, "go forward ten meters");
  ASSERT_EQ(h.transcriptions.size(), 1u);
  const auto& t = h.transcriptions[0];
  EXPECT_EQ(t["language"], "en");
  ASSERT_EQ(t["segments"].size(), 4u);
  int64_t last_end = 0;
  for (const auto& seg : t["segments"]) {
    EXPECT_GE(seg["start_time_ms"].get<int64_t>(), last_end);
    EXPECT_GT(seg["end_time_ms"].get<int64_t>(), seg["start_time_ms"].get<int64_t>());
    EXPECT_LE(seg["end_time_ms"].get<int64_t>(), static_cast<int64_t>(audio.size() / 16));
    EXPECT_GE(seg["confidence"].get<double>(), 0.0);
    EXPECT_LE(seg["confidence"].get<double>(), 1.0);
    last_end = seg["end_time_ms"].get<int64_t>();
  }
  EXPECT_EQ(t["segments"][0]["text"], "go");
  EXPECT_EQ(t["segments"][3]["text"], "meters");
}

TEST(PocketsphinxSttPlugin, LibrivoxWordErrorRate) {
  PluginLibrary lib(plugin_path("skit_pocketsphinx_stt"));
  auto stt = lib.create(nlohmann::json::object());
  ASSERT_NE(stt, nullptr);
  std::ifstream refs(kTestData + "/librivox/transcription");
  std::string line;
  WordErrors total;
  int files = 0;
  while (std::getline(refs, line)) {
    auto open = line.rfind('('), close = line.rfind(')');
    ASSERT_NE(open, std::string::npos);
    std::string id = line.substr(open + 1, close - open - 1);
    std::string ref = line.substr(0, open);
    for (const char* tag : {"<s>", "</s>"})
      if (auto at = ref.find(tag); at != std::string::npos) ref.erase(at, std::strlen(tag));
    auto audio = decode_f32(kTestData + "/librivox/" + id + ".wav", 16000);
    ASSERT_FALSE(audio.samples.empty()) << id;
    Heard h = transcribe(*stt, audio.samples);
    auto e = word_errors(ref, h.text);
    std::printf("  %s: WER %.0f%%\n    ref: %s\n    hyp: %s\n", id.c_str(), 100 * e.rate(),
                ref.c_str(), h.text.c_str());
    total.errors += e.errors;
    total.reference_words += e.reference_words;
    ++files;
  }
  EXPECT_EQ(files, 5);
  std::printf("pocketsphinx_stt: LibriVox WER %.1f%% (%zu errors / %zu words, %d files)\n",
              100 * total.rate(), total.errors, total.reference_words, files);
  // The en-us model with its generic LM on read literature; an honest bound, not a target.
  EXPECT_LT(total.rate(), 0.5);
}

TEST(PocketsphinxSttPlugin, TtsToSttRoundTrip) {
  PluginLibrary tts_lib(plugin_path("skit_espeak_tts"));
  PluginLibrary stt_lib(plugin_path("skit_pocketsphinx_stt"));
  auto tts = tts_lib.create({{"voice", "en-us"}, {"rate", 150}});
  auto stt = stt_lib.create(nlohmann::json::object());
  ASSERT_NE(tts, nullptr);
  ASSERT_NE(stt, nullptr);
  const std::vector<std::string> sentences = {
      "go forward ten meters",
      "turn left at the next corner",
      "the weather is nice today",
      "please open the door",
      "I would like a cup of coffee",
      "the train leaves at seven",
      "call me when you get home",
      "this is a test of the system",
      "we need more time",
      "she reads a book every night"};
  WordErrors total;
  std::mt19937 rng(14);
  std::normal_distribution<float> noise(0.0f, 0.001f);
  for (const auto& s : sentences) {
    auto speech = tts->text(s).audio();
    auto at16k = resample(speech, 22050, 16000);
    // Half a second of pause either side, as between a user's sentences; the voice 6 dB down
    // and a quiet room's noise floor (white, -60 dBFS RMS) under it all: PocketSphinx's
    // acoustic model was trained on recorded speech, never on digital silence.
    std::vector<float> padded(8000, 0.0f);
    for (float v : at16k) padded.push_back(0.5f * v);
    padded.insert(padded.end(), 8000, 0.0f);
    for (float& v : padded) v += noise(rng);
    Heard h = transcribe(*stt, padded);
    auto e = word_errors(s, h.text);
    std::printf("  \"%s\" -> \"%s\" (%zu errors)\n", s.c_str(), h.text.c_str(), e.errors);
    total.errors += e.errors;
    total.reference_words += e.reference_words;
  }
  std::printf("espeak_tts -> pocketsphinx_stt round trip: WER %.1f%% (%zu / %zu words)\n",
              100 * total.rate(), total.errors, total.reference_words);
  EXPECT_LT(total.rate(), 0.40);
}

TEST(PocketsphinxSttPlugin, WrongRateAndBadModelAreRefused) {
  PluginLibrary lib(plugin_path("skit_pocketsphinx_stt"));
  std::string error;
  EXPECT_EQ(lib.create({{"hmm", "/nonexistent/model"}}, &error), nullptr);
  EXPECT_NE(error.find("/nonexistent/model"), std::string::npos) << error;
  auto stt = lib.create(nlohmann::json::object());
  ASSERT_NE(stt, nullptr);
  std::vector<float> audio(4800, 0.0f);
  try {
    stt->audio(audio, 48000, 1);
    FAIL() << "48 kHz accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("needs 16000 Hz mono"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace skit::testing

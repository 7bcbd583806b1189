// SPDX-License-Identifier: MPL-2.0
// The official plugins (plugins/) through the real `skit serve`, each in a sandboxed worker of
// its own: the shipped samples (speech to text, text to speech, voice activity detection, text
// and speech translation) and a text -> speech -> text round trip through a live session.
#include <gtest/gtest.h>

#include <sstream>

#include "audio_measure.hpp"
#include "session_clients.hpp"
#include "word_errors.hpp"

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

  /// pocketsphinx-testdata's "go forward ten meters" as Ogg/Opus ("" if ffmpeg failed).
  std::string goforward_ogg() {
    const std::string ogg = dir_.file("goforward.ogg");
    const bool ok = ffmpeg({"-f", "s16le", "-ar", "16000", "-ac", "1", "-i",
                            "/usr/share/pocketsphinx/test/data/goforward.raw", "-c:a", "libopus",
                            "-b:a", "96k", ogg});
    return ok ? ogg : "";
  }

  /// One second of silence, an espeak-ng sentence, one second of silence, as Ogg/Opus at
  /// 48 kHz ("" if a tool failed): speech starts at 1000 ms.
  std::string vad_speech_ogg() {
    const std::string wav = dir_.file("speech.wav");
    const std::string ogg = dir_.file("speech.ogg");
    if (run_tool({find_tool("espeak-ng"), "-w", wav, "Voice activity detection finds this."})
            .exit_code != 0) {
      return "";
    }
    const bool ok = ffmpeg({"-f", "lavfi", "-i", "anullsrc=r=22050:cl=mono:d=1", "-i", wav, "-f",
                            "lavfi", "-i", "anullsrc=r=22050:cl=mono:d=1", "-filter_complex",
                            "[0][1][2]concat=n=3:v=0:a=1", "-c:a", "libopus", "-ar", "48000", ogg});
    return ok ? ogg : "";
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
  const std::string ogg = goforward_ogg();
  ASSERT_FALSE(ogg.empty());
  const Response r = process(kSamples / "speech_to_text_pocketsphinx.yml", ogg);
  ASSERT_EQ(r.status, 200) << r.describe();
  std::string heard;
  for (const auto& t : ndjson(r.body)) {
    heard += (heard.empty() ? "" : " ") + t.value("text", "");
  }
  std::printf("pocketsphinx_stt sample on goforward.raw (Opus): \"%s\"\n", heard.c_str());
  EXPECT_EQ(heard, "go forward ten meters") << r.body;
}

TEST_F(OfficialPlugins, TheTextToSpeechSampleSpeaksTheText) {
  const std::string txt = dir_.file("story.txt");
  // 17 words: at 165 words a minute, about 6 s of speech.
  write_file(txt, "The quick brown fox jumps over the lazy dog. It was a bright cold day in April.");
  const Response r = process(kSamples / "espeak_tts.yml", txt);
  ASSERT_EQ(r.status, 200) << r.describe() << "\n" << server_->log();
  const std::string ogg = dir_.file("story.ogg");
  write_file(ogg, r.body);
  const Decoded d = decode_f32(ogg);
  std::printf("espeak_tts sample: %.2f s of speech for 17 words, %.1f dBFS RMS\n", d.seconds(),
              rms_db(d.samples));
  EXPECT_GT(d.seconds(), 3.5);
  EXPECT_LT(d.seconds(), 10.0);
  EXPECT_GT(rms_db(d.samples), -35.0) << "the speech is (nearly) silent";
}

TEST_F(OfficialPlugins, TheTextTranslationSampleWritesSpanish) {
  const std::string txt = dir_.file("notes.txt");
  write_file(txt, "The cat is sleeping on the red chair. I would like a cup of coffee.");
  const Response r = process(kSamples / "translate_text_apertium.yml", txt);
  ASSERT_EQ(r.status, 200) << r.describe() << "\n" << server_->log();
  std::vector<std::string> lines;
  for (const auto& t : ndjson(r.body)) {
    lines.push_back(t.is_string() ? t.get<std::string>() : t.dump());
  }
  ASSERT_EQ(lines.size(), 2U) << r.body;
  EXPECT_EQ(lines[0], "El gato está durmiendo en la silla roja.");
  EXPECT_EQ(lines[1], "Me gustaría una taza de café.");
  std::printf("apertium_translate sample: \"%s\" / \"%s\"\n", lines[0].c_str(), lines[1].c_str());
}

TEST_F(OfficialPlugins, TheSpeechTranslationSampleAnswersInSpanishSpeech) {
  const std::string ogg = goforward_ogg();
  ASSERT_FALSE(ogg.empty());
  const Response r = process(kSamples / "speech_to_text_translate_apertium.yml", ogg);
  ASSERT_EQ(r.status, 200) << r.describe() << "\n" << server_->log();
  const std::string webm = dir_.file("spanish.webm");
  write_file(webm, r.body);
  const Decoded d = decode_f32(webm);
  // "ir adelante diez metros" (or close): a second or two of Spanish speech.
  std::printf("speech translation sample: %.2f s of Spanish speech, %.1f dBFS RMS\n", d.seconds(),
              rms_db(d.samples));
  EXPECT_GT(d.seconds(), 0.8);
  EXPECT_LT(d.seconds(), 6.0);
  EXPECT_GT(rms_db(d.samples), -35.0);
}

TEST_F(OfficialPlugins, TheVadSampleFindsSpeechAndItsEnd) {
  const std::string ogg = vad_speech_ogg();
  ASSERT_FALSE(ogg.empty());
  const Response r = process(kSamples / "vad_silero.yml", ogg);
  ASSERT_EQ(r.status, 200) << r.describe() << "\n" << server_->log();
  std::vector<std::string> events;
  double start_ms = -1;
  for (const auto& e : ndjson(r.body)) {
    const json data = e.value("data", json::object());
    events.push_back(data.value("event_type", "?"));
    if (data.value("event_type", "") == "speech_start" && start_ms < 0) {
      start_ms = data.value("timestamp_ms", -1.0);
    }
  }
  std::printf("silero_vad sample: %zu events, speech starts at %.0f ms (placed at 1000 ms)\n",
              events.size(), start_ms);
  ASSERT_GE(events.size(), 2U) << r.body << "\n" << server_->log();
  EXPECT_EQ(events.front(), "speech_start") << r.body;
  EXPECT_EQ(events.back(), "speech_end") << r.body;
  EXPECT_NEAR(start_ms, 1000, 150) << r.body;
}

// A plugin's telemetry callback reaches WebSocket watchers as the session's nodetelemetry
// events: silero_vad in a live session says where the speech starts and ends.
TEST_F(OfficialPlugins, VadTelemetryInASessionReachesTheWebSocket) {
  const std::string ogg = vad_speech_ogg();
  ASSERT_FALSE(ogg.empty());
  WsClient ws(server_->http_port());
  ASSERT_TRUE(ws.open()) << ws.error();
  const json created = ws.request(
      {{"action", "createsession"},
       {"name", "vad-telemetry"},
       {"yaml", "mode: dynamic\n"
                "nodes:\n"
                "  src: {kind: core::file_reader, params: {path: '" + ogg + "'}}\n"
                "  demux: {kind: containers::ogg::demuxer, needs: src}\n"
                "  decode: {kind: audio::opus::decoder, needs: demux}\n"
                "  to16k: {kind: audio::resampler, params: {target_sample_rate: 16000, channels: 1}, needs: decode}\n"
                "  vad: {kind: plugin::native::silero_vad, needs: to16k}\n"
                "  sink: {kind: core::sink, needs: vad}\n"}});
  ASSERT_EQ(created.value("action", ""), "sessioncreated") << created.dump() << server_->log();
  const std::string id = created["session_id"];
  const auto is_vad = [&](const std::string& type) {
    return [&, type](const json& e) {
      return e.value("event", "") == "nodetelemetry" && e.value("session_id", "") == id &&
             e.value("node_id", "") == "vad" && e["data"].is_object() &&
             e["data"].value("event_type", "") == type;
    };
  };
  const json start = ws.wait_event(is_vad("vad.speech_start"), 30s);
  const json end = ws.wait_event(is_vad("vad.speech_end"), 30s);
  ASSERT_FALSE(start.is_null()) << "no vad.speech_start telemetry\n" << server_->log();
  ASSERT_FALSE(end.is_null()) << "no vad.speech_end telemetry";
  std::printf("silero_vad telemetry in a session: %s / %s\n", start["data"].dump().c_str(),
              end["data"].dump().c_str());
  EXPECT_EQ(start.value("type_id", ""), "core::telemetry/event@1");
  EXPECT_NEAR(start["data"].value("timestamp_ms", -1.0), 1000, 150) << start.dump();
  EXPECT_GT(end["data"].value("timestamp_ms", -1.0), start["data"].value("timestamp_ms", -1.0));
  const json destroyed = ws.request({{"action", "destroysession"}, {"session_id", id}});
  EXPECT_EQ(destroyed.value("action", ""), "sessiondestroyed") << destroyed.dump();
}

// Ten short sentences spoken by espeak_tts and heard by pocketsphinx_stt, each plugin in a
// sandboxed worker of its own, in a dynamic session that writes what it heard to a file. As a
// user's sentences reach a microphone: half a second between them, the voice 6 dB down, a
// quiet room's noise floor under it all (white, -60 dBFS RMS: PocketSphinx's acoustic model
// was trained on recordings, never on digital silence).
TEST_F(OfficialPlugins, TextToSpeechToTextRoundTripInASession) {
  const std::vector<std::string> sentences = {
      "go forward ten meters",        "turn left at the next corner",
      "the weather is nice today",    "please open the door",
      "I would like a cup of coffee", "the train leaves at seven",
      "call me when you get home",    "this is a test of the system",
      "we need more time",            "she reads a book every night"};
  std::string text, reference;
  for (const auto& s : sentences) {
    text += s + ".\n";
    reference += (reference.empty() ? "" : " ") + s;
  }
  const std::string in = dir_.file("sentences.txt");
  const std::string out = dir_.file("heard.ndjson");
  write_file(in, text);
  WsClient ws(server_->http_port());
  ASSERT_TRUE(ws.open()) << ws.error();
  const json created = ws.request(
      {{"action", "createsession"},
       {"name", "round-trip"},
       {"yaml", "mode: dynamic\n"
                "nodes:\n"
                "  text: {kind: core::file_reader, params: {path: '" + in + "'}}\n"
                "  sentences: {kind: core::text_chunker, params: {split_mode: sentences, min_length: 1}, needs: text}\n"
                "  speak: {kind: plugin::native::espeak_tts, params: {voice: en-us, rate: 150, pause_ms: 500}, needs: sentences}\n"
                "  to16k: {kind: audio::resampler, params: {target_sample_rate: 16000, channels: 1}, needs: speak}\n"
                "  voice: {kind: audio::gain, params: {gain: 0.5}, needs: to16k}\n"
                "  room: {kind: audio::tone, params: {wave: white-noise, amplitude: 0.0017, sample_rate: 16000, frame_size: 320, duration_ms: 30000, realtime: false}}\n"
                "  mix: {kind: audio::mixer, params: {num_inputs: 2, sync_timeout_ms: 0}, needs: [voice, room]}\n"
                "  hear: {kind: plugin::native::pocketsphinx_stt, params: {segment_on_silence: true}, needs: mix}\n"
                "  json: {kind: core::json_serialize, params: {newline_delimited: true}, needs: hear}\n"
                "  writer: {kind: core::file_writer, params: {path: '" + out + "'}, needs: json}\n"}});
  ASSERT_EQ(created.value("action", ""), "sessioncreated") << created.dump() << server_->log();
  const std::string id = created["session_id"];
  // The writer's node finishes when the reader's end has flowed through every node.
  const json stopped = wait_node_stopped(ws, id, "writer", 90s);
  ASSERT_FALSE(stopped.is_null()) << "the session's writer did not finish\n" << server_->log();
  std::string heard;
  for (const auto& t : ndjson(read_file(out))) {
    heard += (heard.empty() ? "" : " ") + t.value("text", "");
  }
  const WordErrors e = word_errors(reference, heard);
  std::printf("espeak_tts -> pocketsphinx_stt in a session: WER %.1f%% (%zu / %zu words)\n"
              "  ref: %s\n  hyp: %s\n",
              100 * e.rate(), e.errors, e.reference_words, reference.c_str(), heard.c_str());
  EXPECT_LT(e.rate(), 0.40);
  const json destroyed = ws.request({{"action", "destroysession"}, {"session_id", id}});
  EXPECT_EQ(destroyed.value("action", ""), "sessiondestroyed") << destroyed.dump();
}

}  // namespace
}  // namespace skit::testing

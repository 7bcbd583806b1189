// SPDX-License-Identifier: MPL-2.0
//
// plugin::native::espeak_tts: text-to-speech on eSpeak NG (Debian's libespeak-ng with its
// espeak-ng-data voices). Text (or a Transcription's text) in, 22050 Hz mono f32 audio out,
// streamed in ~200 ms chunks as espeak produces them. Fills the role of StreamKit's
// plugin::native::kokoro / piper / matcha TTS nodes (formant synthesis, no model weights).
//
// espeak-ng keeps its state in globals, so the library is initialised once per process and
// every synthesis holds one lock; each instance re-applies its own voice/rate/pitch first.
#include <espeak-ng/espeak_ng.h>
#include <espeak-ng/speak_lib.h>

#include <mutex>
#include <string>
#include <vector>

#include "streamkit_plugin.hpp"

// libespeak-ng (1.51, Debian 12) opens a sound device through libpcaudio as soon as its output
// is set up, even in synchronous mode where it never plays a sample: a PulseAudio client that
// makes a memfd, sets the umask, creates ~/.config/pulse and connects to the user's sound
// server. Under the worker sandbox those calls are refused, and a plugin has no business
// reaching a sound server anyway. This definition comes first in the lookup scope of the
// libraries this plugin pulls in, so espeak's call binds here and gets "no device" (a state
// espeak handles: pcaudio returns the same when no backend answers).
struct audio_object;
extern "C" __attribute__((visibility("default"))) audio_object* create_audio_device_object(
    const char* /*device*/, const char* /*application_name*/, const char* /*description*/) {
  return nullptr;
}

namespace {

using streamkit::json;

constexpr uint32_t kSampleRate = 22050;  // espeak-ng's native rate
constexpr int kChunkMs = 200;

std::mutex& espeak_mutex() {
  static std::mutex m;
  return m;
}

std::string status_message(espeak_ng_STATUS status) {
  char buf[256] = {0};
  espeak_ng_GetStatusCodeMessage(status, buf, sizeof buf);
  return buf;
}

// Under espeak_mutex().
void ensure_initialised() {
  static bool done = false;
  if (done) return;
  espeak_ng_InitializePath(nullptr);  // the packaged espeak-ng-data
  espeak_ng_ERROR_CONTEXT context = nullptr;
  espeak_ng_STATUS st = espeak_ng_Initialize(&context);
  espeak_ng_ClearErrorContext(&context);
  if (st != ENS_OK) throw streamkit::Error("espeak-ng initialisation failed: " + status_message(st));
  st = espeak_ng_InitializeOutput(ENOUTPUT_MODE_SYNCHRONOUS, kChunkMs, nullptr);
  if (st != ENS_OK) throw streamkit::Error("espeak-ng output set-up failed: " + status_message(st));
  if (espeak_ng_GetSampleRate() != static_cast<int>(kSampleRate))
    throw streamkit::Error("espeak-ng runs at " + std::to_string(espeak_ng_GetSampleRate()) +
                           " Hz, expected 22050");
  done = true;
}

class EspeakTts {
 public:
  static const CNodeMetadata& metadata() {
    static streamkit::Metadata meta = [] {
      streamkit::Metadata m("espeak_tts");
      const CAudioFormat* out_format = m.audio_format(kSampleRate, 1, CSampleFormat_F32);
      m.description(
           "Text-to-speech on eSpeak NG: Text in, RawAudio 22050 Hz mono f32 out. Fills the "
           "role of StreamKit's kokoro/piper/matcha TTS plugins.")
          .input("in", {streamkit::type_of(CPacketType_Text),
                        streamkit::type_of(CPacketType_Transcription)})
          .output("out", CPacketTypeInfo{CPacketType_RawAudio, out_format, nullptr})
          .param_schema(
              {{"type", "object"},
               {"properties",
                {{"voice",
                  {{"type", "string"},
                   {"default", "en-us"},
                   {"description", "espeak-ng voice name (espeak-ng --voices), e.g. en-us, en, es"},
                   {"tunable", true}}},
                 {"rate",
                  {{"type", "integer"},
                   {"default", espeakRATE_NORMAL},
                   {"minimum", espeakRATE_MINIMUM},
                   {"maximum", espeakRATE_MAXIMUM},
                   {"description", "Speaking rate in words per minute"},
                   {"tunable", true}}},
                 {"pitch",
                  {{"type", "integer"},
                   {"default", 50},
                   {"minimum", 0},
                   {"maximum", 100},
                   {"description", "Base pitch, 0-100"},
                   {"tunable", true}}},
                 {"pause_ms",
                  {{"type", "integer"},
                   {"default", 0},
                   {"minimum", 0},
                   {"maximum", 10000},
                   {"description",
                    "Silence after each text spoken, in milliseconds (the gap between turns; "
                    "0 = only espeak's own end-of-sentence pause)"},
                   {"tunable", true}}}}},
               {"additionalProperties", false}})
          .category("audio")
          .category("tts")
          .category("ml");
      return m;
    }();
    static const CNodeMetadata& c = meta.c();
    return c;
  }

  EspeakTts(const json& params, streamkit::Logger log) : log_(std::move(log)) {
    std::lock_guard lock(espeak_mutex());
    ensure_initialised();
    apply(params);
    select_voice();  // a bad voice fails at creation, not at the first packet
  }

  void update_params(const json& patch) {
    std::lock_guard lock(espeak_mutex());
    std::string old_voice = voice_;
    apply(patch);
    try {
      select_voice();
    } catch (...) {
      voice_ = old_voice;
      throw;
    }
  }

  void process(std::string_view, const CPacket& packet, streamkit::Output& out) {
    std::string text = streamkit::text_of(packet);
    if (text.find_first_not_of(" \t\r\n") == std::string::npos) return;
    std::lock_guard lock(espeak_mutex());
    select_voice();
    set(espeakRATE, rate_, "rate");
    set(espeakPITCH, pitch_, "pitch");
    Synthesis synthesis{&out, {}, {}};
    espeak_SetSynthCallback(&EspeakTts::on_samples);
    espeak_ng_STATUS st =
        espeak_ng_Synthesize(text.c_str(), text.size() + 1, 0, POS_CHARACTER, 0,
                             espeakCHARS_UTF8, nullptr, &synthesis);
    if (!synthesis.error.empty()) throw streamkit::Error(synthesis.error);
    if (st != ENS_OK) throw streamkit::Error("espeak-ng synthesis failed: " + status_message(st));
    synthesis.pending.resize(synthesis.pending.size() +
                             static_cast<size_t>(pause_ms_) * kSampleRate / 1000, 0.0f);
    if (!synthesis.pending.empty()) out.audio("out", kSampleRate, 1, synthesis.pending);
  }

 private:
  struct Synthesis {
    streamkit::Output* out;
    std::vector<float> pending;
    std::string error;
  };

  // espeak's synth callback (C): never throws; returns 1 to abort synthesis.
  static int on_samples(short* wav, int count, espeak_EVENT* events) {
    auto* s = events != nullptr ? static_cast<Synthesis*>(events->user_data) : nullptr;
    if (s == nullptr || !s->error.empty()) return s == nullptr ? 0 : 1;
    if (wav == nullptr) return 0;  // end of synthesis
    try {
      for (int i = 0; i < count; ++i) s->pending.push_back(static_cast<float>(wav[i]) / 32768.0f);
      if (s->pending.size() >= kSampleRate * kChunkMs / 1000) {
        s->out->audio("out", kSampleRate, 1, s->pending);
        s->pending.clear();
      }
      return 0;
    } catch (const std::exception& e) {
      s->error = e.what();
      return 1;
    }
  }

  void apply(const json& params) {
    for (const auto& [key, value] : params.items()) {
      if (key == "voice") {
        if (!value.is_string() || value.get<std::string>().empty())
          throw streamkit::Error("voice must be a non-empty string");
        voice_ = value.get<std::string>();
      } else if (key == "rate") {
        if (!value.is_number_integer()) throw streamkit::Error("rate must be an integer");
        int r = value.get<int>();
        if (r < espeakRATE_MINIMUM || r > espeakRATE_MAXIMUM)
          throw streamkit::Error("rate must be in [80, 450] words per minute");
        rate_ = r;
      } else if (key == "pitch") {
        if (!value.is_number_integer()) throw streamkit::Error("pitch must be an integer");
        int p = value.get<int>();
        if (p < 0 || p > 100) throw streamkit::Error("pitch must be in [0, 100]");
        pitch_ = p;
      } else if (key == "pause_ms") {
        if (!value.is_number_integer()) throw streamkit::Error("pause_ms must be an integer");
        int ms = value.get<int>();
        if (ms < 0 || ms > 10000) throw streamkit::Error("pause_ms must be in [0, 10000]");
        pause_ms_ = ms;
      } else {
        throw streamkit::Error("unknown param '" + key + "'");
      }
    }
  }

  void select_voice() {
    espeak_ng_STATUS st = espeak_ng_SetVoiceByName(voice_.c_str());
    if (st != ENS_OK)
      throw streamkit::Error("espeak-ng has no voice '" + voice_ + "': " + status_message(st));
  }

  static void set(espeak_PARAMETER p, int value, const char* name) {
    espeak_ng_STATUS st = espeak_ng_SetParameter(p, value, 0);
    if (st != ENS_OK)
      throw streamkit::Error(std::string("espeak-ng refused ") + name + ": " + status_message(st));
  }

  streamkit::Logger log_;
  std::string voice_ = "en-us";
  int rate_ = espeakRATE_NORMAL;
  int pitch_ = 50;
  int pause_ms_ = 0;
};

}  // namespace

STREAMKIT_CPP_PLUGIN(EspeakTts)

// SPDX-License-Identifier: MPL-2.0
//
// plugin::native::pocketsphinx_stt: speech-to-text on CMU PocketSphinx with Debian's
// pocketsphinx-en-us acoustic model, language model and dictionary. RawAudio 16 kHz mono f32
// in, one Transcription per utterance out ({text, language, segments[{text, start_time_ms,
// end_time_ms, confidence}]}). Utterances are cut by PocketSphinx's own voice activity
// detector: an utterance ends when it reports the end of speech, and at end of input.
// Fills the role of StreamKit's plugin::native::whisper (and sensevoice/parakeet) STT nodes.
#include <pocketsphinx.h>
#include <sphinxbase/err.h>
#include <sphinxbase/logmath.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "streamkit_plugin.hpp"

namespace {

using streamkit::json;

constexpr uint32_t kSampleRate = 16000;
constexpr int kFramesPerSecond = 100;  // PocketSphinx's default -frate
constexpr const char* kModelDir = "/usr/share/pocketsphinx/model/en-us";

struct Config {
  std::string hmm = std::string(kModelDir) + "/en-us";
  std::string lm = std::string(kModelDir) + "/en-us.lm.bin";
  std::string dict = std::string(kModelDir) + "/cmudict-en-us.dict";
  std::string language = "en";
  bool partial_segments = true;  // emit an utterance when speech ends, not only at flush
  // Half-bit dither: digital silence (exact zeros, as synthetic or gated audio has) otherwise
  // gives log-energy features far below the model's and derails cepstral mean normalisation.
  bool dither = true;
};

Config parse(const json& params) {
  Config c;
  for (const auto& [key, value] : params.items()) {
    auto str = [&]() {
      if (!value.is_string() || value.get<std::string>().empty())
        throw streamkit::Error(key + " must be a non-empty string");
      return value.get<std::string>();
    };
    if (key == "hmm" || key == "model_dir") c.hmm = str();
    else if (key == "lm") c.lm = str();
    else if (key == "dict") c.dict = str();
    else if (key == "language") c.language = str();
    else if (key == "segment_on_silence") {
      if (!value.is_boolean()) throw streamkit::Error("segment_on_silence must be a boolean");
      c.partial_segments = value.get<bool>();
    } else if (key == "dither") {
      if (!value.is_boolean()) throw streamkit::Error("dither must be a boolean");
      c.dither = value.get<bool>();
    } else {
      throw streamkit::Error("unknown param '" + key + "'");
    }
  }
  return c;
}

class PocketsphinxStt {
 public:
  static const CNodeMetadata& metadata() {
    static streamkit::Metadata meta = [] {
      streamkit::Metadata m("pocketsphinx_stt");
      const CAudioFormat* in_format = m.audio_format(kSampleRate, 1, CSampleFormat_F32);
      m.description(
           "Speech-to-text on CMU PocketSphinx with Debian's pocketsphinx-en-us model: "
           "RawAudio 16 kHz mono in, one Transcription per utterance out (PocketSphinx's own "
           "VAD cuts utterances). Fills the role of StreamKit's whisper STT plugin.")
          .input("in", {CPacketTypeInfo{CPacketType_RawAudio, in_format, nullptr}})
          .output("out", streamkit::type_of(CPacketType_Transcription))
          .param_schema(
              {{"type", "object"},
               {"properties",
                {{"hmm",
                  {{"type", "string"},
                   {"default", std::string(kModelDir) + "/en-us"},
                   {"description", "Acoustic model directory"}}},
                 {"lm",
                  {{"type", "string"},
                   {"default", std::string(kModelDir) + "/en-us.lm.bin"},
                   {"description", "N-gram language model (ARPA or binary)"}}},
                 {"dict",
                  {{"type", "string"},
                   {"default", std::string(kModelDir) + "/cmudict-en-us.dict"},
                   {"description", "Pronunciation dictionary"}}},
                 {"language",
                  {{"type", "string"},
                   {"default", "en"},
                   {"description", "Language reported in the Transcription"}}},
                 {"segment_on_silence",
                  {{"type", "boolean"},
                   {"default", true},
                   {"description",
                    "Emit a Transcription at each end of speech (else one at end of input)"}}},
                 {"dither",
                  {{"type", "boolean"},
                   {"default", true},
                   {"description", "Add half-bit dither (keeps digital silence decodable)"}}}}},
               {"additionalProperties", false}})
          .category("audio")
          .category("stt")
          .category("ml");
      return m;
    }();
    static const CNodeMetadata& c = meta.c();
    return c;
  }

  PocketsphinxStt(const json& params, streamkit::Logger log)
      : log_(std::move(log)), config_(parse(params)) {
    err_set_logfp(nullptr);  // PocketSphinx logs to stderr at length; the host has our log
    cmd_ln_t* cmd = cmd_ln_init(nullptr, ps_args(), TRUE, "-hmm", config_.hmm.c_str(), "-lm",
                                config_.lm.c_str(), "-dict", config_.dict.c_str(), "-samprate",
                                "16000", "-dither", config_.dither ? "yes" : "no", nullptr);
    if (cmd == nullptr) throw streamkit::Error("pocketsphinx rejected its configuration");
    decoder_ = ps_init(cmd);
    cmd_ln_free_r(cmd);
    if (decoder_ == nullptr)
      throw streamkit::Error("pocketsphinx could not load its model (hmm '" + config_.hmm +
                             "', lm '" + config_.lm + "', dict '" + config_.dict + "')");
    start_utterance();
    log_.info("pocketsphinx ready (hmm " + config_.hmm + ")");
  }
  ~PocketsphinxStt() {
    if (decoder_ != nullptr) ps_free(decoder_);
  }
  PocketsphinxStt(const PocketsphinxStt&) = delete;
  PocketsphinxStt& operator=(const PocketsphinxStt&) = delete;

  void process(std::string_view, const CPacket& packet, streamkit::Output& out) {
    const CAudioFrame& frame = streamkit::audio_of(packet);
    if (frame.sample_rate != kSampleRate || frame.channels != 1)
      throw streamkit::Error("pocketsphinx_stt needs 16000 Hz mono audio, got " +
                             std::to_string(frame.sample_rate) + " Hz with " +
                             std::to_string(frame.channels) + " channels (add an "
                             "audio::resampler before it)");
    auto samples = streamkit::samples_of(frame);
    pcm_.resize(samples.size());
    for (size_t i = 0; i < samples.size(); ++i)
      pcm_[i] = static_cast<int16_t>(std::lround(std::clamp(samples[i], -1.0f, 1.0f) * 32767.0f));
    if (ps_process_raw(decoder_, pcm_.data(), pcm_.size(), FALSE, FALSE) < 0)
      throw streamkit::Error("pocketsphinx failed to process audio");
    samples_fed_ += pcm_.size();
    bool in_speech = ps_get_in_speech(decoder_) != 0;
    if (in_speech) heard_speech_ = true;
    if (config_.partial_segments && heard_speech_ && !in_speech) {
      finish_utterance(out);
      start_utterance();
    }
  }

  void flush(streamkit::Output& out) {
    finish_utterance(out);
    start_utterance();
  }

 private:
  void start_utterance() {
    if (ps_start_utt(decoder_) < 0) throw streamkit::Error("pocketsphinx could not start");
    utterance_start_sample_ = samples_fed_;
    heard_speech_ = false;
    in_utterance_ = true;
  }

  void finish_utterance(streamkit::Output& out) {
    if (!in_utterance_) return;
    in_utterance_ = false;
    if (ps_end_utt(decoder_) < 0) throw streamkit::Error("pocketsphinx could not end an utterance");
    int32 score = 0;
    const char* hyp = ps_get_hyp(decoder_, &score);
    if (hyp == nullptr || *hyp == '\0') return;
    json segments = json::array();
    logmath_t* lmath = ps_get_logmath(decoder_);
    double base_ms = 1000.0 * static_cast<double>(utterance_start_sample_) / kSampleRate;
    for (ps_seg_t* seg = ps_seg_iter(decoder_); seg != nullptr; seg = ps_seg_next(seg)) {
      std::string word = ps_seg_word(seg);
      // Fillers (<s>, </s>, <sil>, [NOISE]...) are not words.
      if (word.empty() || word.front() == '<' || word.front() == '[' || word == "++") continue;
      if (auto alt = word.find('('); alt != std::string::npos) word.erase(alt);  // "word(2)"
      int start_frame = 0, end_frame = 0;
      ps_seg_frames(seg, &start_frame, &end_frame);
      int32 ascr = 0, lscr = 0, lback = 0;
      int32 post = ps_seg_prob(seg, &ascr, &lscr, &lback);
      double confidence = std::clamp(logmath_exp(lmath, post), 0.0, 1.0);
      segments.push_back({{"text", word},
                          {"start_time_ms", std::llround(base_ms + start_frame * 1000.0 / kFramesPerSecond)},
                          {"end_time_ms", std::llround(base_ms + (end_frame + 1) * 1000.0 / kFramesPerSecond)},
                          {"confidence", confidence}});
    }
    out.transcription("out", {{"text", hyp}, {"language", config_.language}, {"segments", segments}});
  }

  streamkit::Logger log_;
  Config config_;
  ps_decoder_t* decoder_ = nullptr;
  std::vector<int16_t> pcm_;
  uint64_t samples_fed_ = 0;
  uint64_t utterance_start_sample_ = 0;
  bool heard_speech_ = false;
  bool in_utterance_ = false;
};

}  // namespace

STREAMKIT_CPP_PLUGIN(PocketsphinxStt)

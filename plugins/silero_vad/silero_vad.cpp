// SPDX-License-Identifier: MPL-2.0
//
// plugin::native::silero_vad: voice activity detection with the Silero VAD v5 model (from the
// npm package @ricky0123/vad-web) run by sherpa-onnx's C library (the prebuilt one in the npm
// package sherpa-onnx-linux-x64, with onnxruntime). Fills the role of StreamKit's
// plugin::native::vad, with its params: RawAudio 16 kHz mono in; out, in `events` mode,
// Custom packets `plugin::native::vad/vad-event@1` {event_type: speech_start|speech_end,
// timestamp_ms, duration_ms?} (also sent as telemetry), or in `filtered_audio` mode only the
// speech, as RawAudio.
//
// sherpa-onnx ships no header with that package, so the few functions and structs used are
// declared below from its documented C API (c-api.h of the pinned version; field order
// matters) and the library is dlopen()ed at creation, its version checked. Note: sherpa-onnx
// calls exit() on a model it cannot use; in skit that ends only this plugin's worker.
// With no model installed (engine: auto) or engine: webrtc, WebRTC's GMM VAD from Debian's
// libwebrtc-audio-processing does the same job with the same outputs.
#include <dlfcn.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "streamkit_plugin.hpp"

namespace {

using streamkit::json;
namespace fs = std::filesystem;

constexpr uint32_t kSampleRate = 16000;
constexpr const char* kSherpaVersion = "1.13.8";
constexpr const char* kEventType = "plugin::native::vad/vad-event@1";

// ---- sherpa-onnx C API (1.13.x), declared in our words ----
struct SileroConfig {
  const char* model;
  float threshold;
  float min_silence_duration;  // s
  float min_speech_duration;   // s
  int32_t window_size;         // samples
  float max_speech_duration;   // s
};
struct TenVadConfig {  // same shape; unused (model = "")
  const char* model;
  float threshold;
  float min_silence_duration;
  float min_speech_duration;
  int32_t window_size;
  float max_speech_duration;
};
struct VadConfig {
  SileroConfig silero_vad;
  int32_t sample_rate;
  int32_t num_threads;
  const char* provider;
  int32_t debug;
  TenVadConfig ten_vad;
};
struct SpeechSegment {
  int32_t start;  // sample index since the detector began
  float* samples;
  int32_t n;
};
struct Detector;  // opaque

struct SherpaApi {
  const char* (*version)();
  const Detector* (*create)(const VadConfig*, float buffer_seconds);
  void (*destroy)(const Detector*);
  void (*accept)(const Detector*, const float*, int32_t);
  int32_t (*empty)(const Detector*);
  int32_t (*detected)(const Detector*);
  void (*pop)(const Detector*);
  const SpeechSegment* (*front)(const Detector*);
  void (*destroy_segment)(const SpeechSegment*);
  void (*flush)(const Detector*);
};

// ---- WebRTC's GMM voice activity detector, the no-model fallback: Debian's
// libwebrtc-audio-processing exports its C functions but ships no header for them.
extern "C" {
struct WebRtcVadInst;
WebRtcVadInst* WebRtcVad_Create(void);
void WebRtcVad_Free(WebRtcVadInst* handle);
int WebRtcVad_Init(WebRtcVadInst* handle);
int WebRtcVad_set_mode(WebRtcVadInst* handle, int mode);
int WebRtcVad_Process(WebRtcVadInst* handle, int fs, const int16_t* audio_frame, size_t frame_length);
}

template <class F>
void bind(void* lib, const char* name, F& fn) {
  fn = reinterpret_cast<F>(::dlsym(lib, name));
  if (fn == nullptr) throw streamkit::Error(std::string("sherpa-onnx library lacks ") + name);
}

// Loaded once per process; kept loaded (onnxruntime keeps threads and globals).
const SherpaApi& sherpa(const std::string& path) {
  static std::string loaded_path;
  static SherpaApi api{};
  if (!loaded_path.empty()) {
    if (path != loaded_path)
      throw streamkit::Error("cannot load sherpa-onnx from '" + path +
                             "': this process has it loaded from " + loaded_path);
    return api;
  }
  void* lib = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr)
    throw streamkit::Error("cannot load sherpa-onnx from '" + path + "': " + ::dlerror() +
                           " (run scripts/fetch_plugin_deps.sh)");
  SherpaApi a{};
  bind(lib, "SherpaOnnxGetVersionStr", a.version);
  std::string version = a.version();
  if (version != kSherpaVersion)
    throw streamkit::Error("sherpa-onnx at '" + path + "' is version " + version +
                           "; this plugin's declarations are for " + kSherpaVersion);
  bind(lib, "SherpaOnnxCreateVoiceActivityDetector", a.create);
  bind(lib, "SherpaOnnxDestroyVoiceActivityDetector", a.destroy);
  bind(lib, "SherpaOnnxVoiceActivityDetectorAcceptWaveform", a.accept);
  bind(lib, "SherpaOnnxVoiceActivityDetectorEmpty", a.empty);
  bind(lib, "SherpaOnnxVoiceActivityDetectorDetected", a.detected);
  bind(lib, "SherpaOnnxVoiceActivityDetectorPop", a.pop);
  bind(lib, "SherpaOnnxVoiceActivityDetectorFront", a.front);
  bind(lib, "SherpaOnnxDestroySpeechSegment", a.destroy_segment);
  bind(lib, "SherpaOnnxVoiceActivityDetectorFlush", a.flush);
  api = a;
  loaded_path = path;
  return api;
}

// The directory this plugin was loaded from: its dependencies sit in silero_vad/ beside it.
std::string own_dir() {
  Dl_info info{};
  if (::dladdr(reinterpret_cast<void*>(&own_dir), &info) == 0 || info.dli_fname == nullptr)
    return ".";
  return fs::path(info.dli_fname).parent_path().string();
}

struct Params {
  std::string model_path = own_dir() + "/silero_vad/silero_vad_v5.onnx";
  std::string library_path = own_dir() + "/silero_vad/libsherpa-onnx-c-api.so";
  bool filtered_audio = false;
  float threshold = 0.5f;
  float min_silence_duration_s = 0.5f;
  float min_speech_duration_s = 0.25f;
  float max_speech_duration_s = 30.0f;
  int window_size = 512;
  int num_threads = 1;
  std::string engine = "auto";  // silero | webrtc | auto (silero when its files are there)
  int webrtc_aggressiveness = 3;
};

Params parse(const json& params) {
  Params p;
  auto number = [](const std::string& key, const json& v, double lo, double hi) {
    if (!v.is_number()) throw streamkit::Error(key + " must be a number");
    double d = v.get<double>();
    if (d < lo || d > hi)
      throw streamkit::Error(key + " must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    return d;
  };
  for (const auto& [key, v] : params.items()) {
    if (key == "model_path" || key == "library_path") {
      if (!v.is_string() || v.get<std::string>().empty())
        throw streamkit::Error(key + " must be a non-empty string");
      (key == "model_path" ? p.model_path : p.library_path) = v.get<std::string>();
    } else if (key == "output_mode") {
      std::string mode = v.is_string() ? v.get<std::string>() : "";
      if (mode != "events" && mode != "filtered_audio")
        throw streamkit::Error("output_mode must be \"events\" or \"filtered_audio\"");
      p.filtered_audio = mode == "filtered_audio";
    } else if (key == "threshold") {
      p.threshold = static_cast<float>(number(key, v, 0.0, 1.0));
    } else if (key == "min_silence_duration_s") {
      p.min_silence_duration_s = static_cast<float>(number(key, v, 0.0, 10.0));
    } else if (key == "min_speech_duration_s") {
      p.min_speech_duration_s = static_cast<float>(number(key, v, 0.0, 10.0));
    } else if (key == "max_speech_duration_s") {
      p.max_speech_duration_s = static_cast<float>(number(key, v, 1.0, 3600.0));
    } else if (key == "window_size") {
      p.window_size = static_cast<int>(number(key, v, 256, 1536));
    } else if (key == "num_threads") {
      p.num_threads = static_cast<int>(number(key, v, 1, 16));
    } else if (key == "engine") {
      std::string e = v.is_string() ? v.get<std::string>() : "";
      if (e != "auto" && e != "silero" && e != "webrtc")
        throw streamkit::Error("engine must be \"auto\", \"silero\" or \"webrtc\"");
      p.engine = e;
    } else if (key == "webrtc_aggressiveness") {
      p.webrtc_aggressiveness = static_cast<int>(number(key, v, 0, 3));
    } else if (key == "provider") {
      if (v != "cpu") throw streamkit::Error("provider must be \"cpu\"");
    } else if (key == "debug") {
      if (!v.is_boolean()) throw streamkit::Error("debug must be a boolean");
    } else {
      throw streamkit::Error("unknown param '" + key + "'");
    }
  }
  return p;
}

class SileroVad {
 public:
  static const CNodeMetadata& metadata() {
    static streamkit::Metadata meta = [] {
      streamkit::Metadata m("silero_vad");
      const CAudioFormat* in_format = m.audio_format(kSampleRate, 1, CSampleFormat_F32);
      m.description(
           "Voice activity detection: Silero VAD v5 on sherpa-onnx. Emits speech_start/"
           "speech_end events (Custom plugin::native::vad/vad-event@1) or speech-only audio. "
           "Fills the role of StreamKit's plugin::native::vad, with its params.")
          .input("in", {CPacketTypeInfo{CPacketType_RawAudio, in_format, nullptr}})
          .output("out", streamkit::type_of(CPacketType_Any))
          .param_schema(
              {{"type", "object"},
               {"properties",
                {{"output_mode",
                  {{"type", "string"}, {"enum", {"events", "filtered_audio"}},
                   {"default", "events"},
                   {"description", "events: vad-event packets; filtered_audio: speech only"}}},
                 {"threshold",
                  {{"type", "number"}, {"default", 0.5}, {"minimum", 0}, {"maximum", 1},
                   {"description", "Speech probability above which a window is speech"}}},
                 {"min_silence_duration_s",
                  {{"type", "number"}, {"default", 0.5},
                   {"description", "Silence that ends a speech segment (s)"}}},
                 {"min_speech_duration_s",
                  {{"type", "number"}, {"default", 0.25},
                   {"description", "Shortest speech segment reported (s)"}}},
                 {"max_speech_duration_s",
                  {{"type", "number"}, {"default", 30.0},
                   {"description", "Longest segment before it is split (s)"}}},
                 {"window_size",
                  {{"type", "integer"}, {"default", 512},
                   {"description", "Samples per model window (512 for Silero v5 at 16 kHz)"}}},
                 {"num_threads",
                  {{"type", "integer"}, {"default", 1}, {"description", "onnxruntime threads"}}},
                 {"engine",
                  {{"type", "string"}, {"enum", {"auto", "silero", "webrtc"}},
                   {"default", "auto"},
                   {"description",
                    "silero (sherpa-onnx), webrtc (no model: WebRTC's GMM VAD), or auto: "
                    "silero when its library and model are installed, else webrtc"}}},
                 {"webrtc_aggressiveness",
                  {{"type", "integer"}, {"default", 3}, {"minimum", 0}, {"maximum", 3},
                   {"description", "WebRTC VAD mode, 0 (least) to 3 (most aggressive)"}}},
                 {"model_path",
                  {{"type", "string"}, {"default", "<plugin dir>/silero_vad/silero_vad_v5.onnx"},
                   {"description", "The Silero VAD ONNX model"}}},
                 {"library_path",
                  {{"type", "string"},
                   {"default", "<plugin dir>/silero_vad/libsherpa-onnx-c-api.so"},
                   {"description", "sherpa-onnx's C library (version 1.13.8)"}}}}},
               {"additionalProperties", false}})
          .custom_type_id(kEventType);
      m.category("audio").category("vad").category("ml");
      return m;
    }();
    static const CNodeMetadata& c = meta.c();
    return c;
  }

  SileroVad(const json& params, streamkit::Logger log) : log_(std::move(log)), p_(parse(params)) {
    if (p_.engine == "auto")
      p_.engine = fs::is_regular_file(p_.library_path) && fs::is_regular_file(p_.model_path)
                      ? "silero" : "webrtc";
    if (p_.engine == "webrtc") {
      webrtc_ = WebRtcVad_Create();
      if (webrtc_ == nullptr || WebRtcVad_Init(webrtc_) != 0 ||
          WebRtcVad_set_mode(webrtc_, p_.webrtc_aggressiveness) != 0)
        throw streamkit::Error("the WebRTC VAD could not be set up");
      log_.info("silero_vad: WebRTC VAD (no model)");
      return;
    }
    // The model is checked first: sherpa-onnx exit()s on a model it cannot open.
    if (!fs::is_regular_file(p_.model_path))
      throw streamkit::Error("no VAD model at '" + p_.model_path + "' (run scripts/fetch_plugin_deps.sh)");
    api_ = &sherpa(p_.library_path);
    VadConfig config{};
    config.silero_vad = SileroConfig{p_.model_path.c_str(), p_.threshold, p_.min_silence_duration_s,
                                     p_.min_speech_duration_s, p_.window_size,
                                     p_.max_speech_duration_s};
    config.sample_rate = kSampleRate;
    config.num_threads = p_.num_threads;
    config.provider = "cpu";
    config.debug = 0;
    config.ten_vad = TenVadConfig{"", 0.5f, 0.5f, 0.25f, 256, 20.0f};
    detector_ = api_->create(&config, 60.0f);
    if (detector_ == nullptr) throw streamkit::Error("sherpa-onnx could not create the VAD");
    log_.info("silero_vad ready (sherpa-onnx " + std::string(api_->version()) + ")");
  }
  ~SileroVad() {
    if (detector_ != nullptr) api_->destroy(detector_);
    if (webrtc_ != nullptr) WebRtcVad_Free(webrtc_);
  }
  SileroVad(const SileroVad&) = delete;
  SileroVad& operator=(const SileroVad&) = delete;

  void process(std::string_view, const CPacket& packet, streamkit::Output& out) {
    const CAudioFrame& frame = streamkit::audio_of(packet);
    if (frame.sample_rate != kSampleRate || frame.channels != 1)
      throw streamkit::Error("silero_vad needs 16000 Hz mono audio, got " +
                             std::to_string(frame.sample_rate) + " Hz with " +
                             std::to_string(frame.channels) + " channels");
    auto samples = streamkit::samples_of(frame);
    if (webrtc_ != nullptr) return webrtc_process(samples, out);
    api_->accept(detector_, samples.data(), static_cast<int32_t>(samples.size()));
    samples_fed_ += samples.size();
    bool detected = api_->detected(detector_) != 0;
    if (detected && !in_speech_) {
      in_speech_ = true;
      // sherpa-onnx declares speech once min_speech_duration of it has been seen; the start
      // it will report for the segment is that far (plus two windows of padding) back.
      int64_t back = static_cast<int64_t>(p_.min_speech_duration_s * kSampleRate) + 2 * p_.window_size;
      int64_t start = std::max<int64_t>(0, static_cast<int64_t>(samples_fed_) - back);
      event(out, "speech_start", start, -1);
    }
    drain(out);
  }

  void flush(streamkit::Output& out) {
    if (webrtc_ != nullptr) {
      if (in_speech_) end_webrtc_segment(out);
      return;
    }
    api_->flush(detector_);
    drain(out);
    if (in_speech_) {
      in_speech_ = false;
      event(out, "speech_end", static_cast<int64_t>(samples_fed_), -1);
    }
  }

 private:
  void drain(streamkit::Output& out) {
    while (api_->empty(detector_) == 0) {
      const SpeechSegment* seg = api_->front(detector_);
      if (seg != nullptr) {
        try {
          if (!in_speech_) event(out, "speech_start", seg->start, -1);  // a short one missed
          in_speech_ = false;
          if (p_.filtered_audio)
            out.audio("out", kSampleRate, 1, std::span<const float>(seg->samples, seg->n));
          event(out, "speech_end", static_cast<int64_t>(seg->start) + seg->n, seg->n);
        } catch (...) {
          api_->destroy_segment(seg);
          api_->pop(detector_);
          throw;
        }
        api_->destroy_segment(seg);
      }
      api_->pop(detector_);
    }
  }

  // WebRTC: 30 ms frames classified voiced/unvoiced; a segment starts at the first voiced
  // frame of a run that reaches min_speech_duration and ends after min_silence_duration of
  // unvoiced frames (at the end of the last voiced frame).
  void webrtc_process(std::span<const float> samples, streamkit::Output& out) {
    constexpr size_t kFrame = 480;
    for (float x : samples) {
      pending_.push_back(static_cast<int16_t>(std::lround(std::clamp(x, -1.0f, 1.0f) * 32767.0f)));
      if (p_.filtered_audio) history_.push_back(x);
    }
    size_t at = 0;
    for (; at + kFrame <= pending_.size(); at += kFrame) {
      int voiced = WebRtcVad_Process(webrtc_, kSampleRate, pending_.data() + at, kFrame);
      if (voiced < 0) throw streamkit::Error("the WebRTC VAD failed on a frame");
      uint64_t frame_start = frames_done_ * kFrame, frame_end = frame_start + kFrame;
      ++frames_done_;
      if (voiced == 1) {
        if (run_start_ < 0) run_start_ = static_cast<int64_t>(frame_start);
        last_voiced_end_ = frame_end;
        if (!in_speech_ && frame_end - run_start_ >= p_.min_speech_duration_s * kSampleRate) {
          in_speech_ = true;
          segment_start_ = run_start_;
          event(out, "speech_start", segment_start_, -1);
        }
        if (in_speech_ && frame_end - segment_start_ >= p_.max_speech_duration_s * kSampleRate)
          end_webrtc_segment(out);
      } else {
        if (!in_speech_ && run_start_ >= 0 &&
            frame_end - last_voiced_end_ >= 0.1 * kSampleRate)  // a blip, not speech
          run_start_ = -1;
        if (in_speech_ && frame_end - last_voiced_end_ >= p_.min_silence_duration_s * kSampleRate)
          end_webrtc_segment(out);
      }
    }
    pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(at));
    // Keep only what a segment in progress may still need.
    if (p_.filtered_audio) {
      uint64_t keep_from = in_speech_ ? static_cast<uint64_t>(segment_start_)
                           : run_start_ >= 0 ? static_cast<uint64_t>(run_start_)
                                             : frames_done_ * kFrame;
      if (keep_from > history_start_) {
        size_t drop = std::min<size_t>(keep_from - history_start_, history_.size());
        history_.erase(history_.begin(), history_.begin() + static_cast<std::ptrdiff_t>(drop));
        history_start_ += drop;
      }
    }
  }

  void end_webrtc_segment(streamkit::Output& out) {
    in_speech_ = false;
    int64_t end = static_cast<int64_t>(last_voiced_end_);
    if (p_.filtered_audio && end > static_cast<int64_t>(history_start_)) {
      size_t from = static_cast<size_t>(std::max<int64_t>(0, segment_start_ - static_cast<int64_t>(history_start_)));
      size_t to = std::min(history_.size(), static_cast<size_t>(end - static_cast<int64_t>(history_start_)));
      if (to > from)
        out.audio("out", kSampleRate, 1, std::span<const float>(history_.data() + from, to - from));
    }
    event(out, "speech_end", end, end - segment_start_);
    run_start_ = -1;
  }

  // An event at `sample` (and a duration in samples, or -1).
  void event(streamkit::Output& out, const char* type, int64_t sample, int64_t duration) {
    json e = {{"event_type", type}, {"timestamp_ms", sample * 1000 / kSampleRate}};
    if (duration >= 0) e["duration_ms"] = duration * 1000 / kSampleRate;
    CPacketMetadata meta{};
    meta.timestamp_us = static_cast<uint64_t>(sample) * 1000000 / kSampleRate;
    meta.has_timestamp_us = true;
    if (!p_.filtered_audio) out.custom("out", kEventType, e, &meta);
    out.telemetry(std::string("vad.").append(type).c_str(), e, &meta);
  }

  streamkit::Logger log_;
  Params p_;
  const SherpaApi* api_ = nullptr;
  const Detector* detector_ = nullptr;
  WebRtcVadInst* webrtc_ = nullptr;
  std::vector<int16_t> pending_;    // WebRTC: samples short of a frame
  std::vector<float> history_;      // WebRTC, filtered_audio: audio from history_start_
  uint64_t history_start_ = 0;
  uint64_t frames_done_ = 0;
  int64_t run_start_ = -1;          // first sample of the current voiced run
  int64_t segment_start_ = 0;
  uint64_t last_voiced_end_ = 0;
  uint64_t samples_fed_ = 0;
  bool in_speech_ = false;
};

}  // namespace

STREAMKIT_CPP_PLUGIN(SileroVad)

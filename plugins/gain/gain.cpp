// SPDX-License-Identifier: MPL-2.0
//
// plugin::native::gain, the SDK example: multiplies RawAudio f32 samples by a gain given in
// decibels (`gain_db`, tunable while running). It fills the role of StreamKit's example gain
// plugin and takes the same param.
#include <cmath>
#include <vector>

#include "streamkit_plugin.hpp"

namespace {

class Gain {
 public:
  static const CNodeMetadata& metadata() {
    static streamkit::Metadata meta = [] {
      streamkit::Metadata m("gain");
      m.description(
           "Applies a gain in decibels to f32 audio. The SDK example; fills the role of "
           "StreamKit's plugin::native::gain with the same gain_db param.")
          .input("in", {streamkit::type_of(CPacketType_RawAudio)})
          .output("out", streamkit::type_of(CPacketType_RawAudio))
          .param_schema({{"type", "object"},
                         {"properties",
                          {{"gain_db",
                            {{"type", "number"},
                             {"default", 0.0},
                             {"minimum", -60.0},
                             {"maximum", 20.0},
                             {"description", "Gain in dB (6.0206 doubles the amplitude)"},
                             {"tunable", true}}}}},
                         {"additionalProperties", false}})
          .category("audio")
          .category("filters");
      return m;
    }();
    static const CNodeMetadata& c = meta.c();
    return c;
  }

  Gain(const streamkit::json& params, streamkit::Logger log) : log_(std::move(log)) {
    update_params(params);
  }

  void update_params(const streamkit::json& params) {
    for (const auto& [key, value] : params.items()) {
      if (key != "gain_db") throw streamkit::Error("unknown param '" + key + "'");
      if (!value.is_number()) throw streamkit::Error("gain_db must be a number");
      double db = value.get<double>();
      if (db < -60.0 || db > 20.0) throw streamkit::Error("gain_db must be in [-60, 20]");
      factor_ = static_cast<float>(std::pow(10.0, db / 20.0));
      log_.debug("gain_db = " + std::to_string(db));
    }
  }

  void process(std::string_view, const CPacket& packet, streamkit::Output& out) {
    const CAudioFrame& in = streamkit::audio_of(packet);
    auto samples = streamkit::samples_of(in);
    buffer_.resize(samples.size());
    for (size_t i = 0; i < samples.size(); ++i) buffer_[i] = samples[i] * factor_;
    out.audio("out", in.sample_rate, in.channels, buffer_);
  }

 private:
  streamkit::Logger log_;
  float factor_ = 1.0f;
  std::vector<float> buffer_;
};

}  // namespace

STREAMKIT_CPP_PLUGIN(Gain)

// SPDX-License-Identifier: MPL-2.0
// Audio pipelines end to end: the real skit binary runs the sample pipelines (and small
// variants of them) on media that ffmpeg generates at test time; the output is decoded by
// ffmpeg and measured here (RMS, Goertzel tone levels, peak frequency, sample counts) and
// probed with ffprobe. Bad media must fail fast, clearly, and leave nothing behind.
//
// Tests of audio::mixer and audio::resampler (MixerSums..., MixingSample..., Resample...,
// and the mixing / resample_16k_mono_wav rows of the sample table) need those nodes; until
// they are registered they fail with "unknown node kind".
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <nlohmann/json.hpp>
#include <set>

#include "audio_measure.hpp"
#include "skit_test_support.hpp"

namespace skit::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

const fs::path kRepo = SKIT_SOURCE_DIR;
constexpr int kOpusFrame = 960;                // 20 ms at 48 kHz
const std::vector<std::string> kOpus128 = {"-c:a", "libopus", "-b:a", "128k"};
const std::vector<std::string> kOpus64 = {"-c:a", "libopus", "-b:a", "64k"};

std::string sample_pipeline(const std::string& name) {
  return (kRepo / "samples/pipelines/oneshot" / (name + ".yml")).string();
}
std::string sample_audio(const std::string& name) {
  return (kRepo / "samples/audio" / name).string();
}

/// Prints a measured figure with the test's name (kept in the test log and the XML report).
void report(const std::string& key, double value) {
  ::testing::Test::RecordProperty(key, std::to_string(value));
  std::printf("[ measure  ] %s.%s: %s = %.4f\n",
              ::testing::UnitTest::GetInstance()->current_test_info()->test_suite_name(),
              ::testing::UnitTest::GetInstance()->current_test_info()->name(), key.c_str(), value);
}

json load_json(const std::string& path) {
  std::ifstream in(path);
  return json::parse(in, nullptr, /*allow_exceptions=*/false);
}

class Audio : public ::testing::Test {
 protected:
  /// Runs `yml` from the repository root with `in` as the upload and `out` as the response.
  RunResult run(const std::string& yml, const std::string& in, const std::string& out) {
    return run_skit_in(kRepo.string(),
                       {"run", yml, "-i", in, "-o", out, "--stats", dir_.file("stats.json")}, 60s);
  }

  TempDir dir_;
};

// ---------------------------------------------------------------------------------------------
// The measuring tools themselves, on a signal whose content is known (no skit involved)

TEST(AudioMeasure, GoertzelAndRmsReadAKnownTwoToneSignal) {
  TempDir dir;
  const std::string wav = dir.file("two.wav");
  ASSERT_TRUE(ffmpeg({"-f", "lavfi", "-i",
                      "aevalsrc=exprs='0.3*sin(2*PI*440*t)+0.2*sin(2*PI*1000*t)':s=16000:d=2",
                      "-c:a", "pcm_f32le", wav}));
  const Decoded d = decode_f32(wav, 0);
  ASSERT_EQ(d.err, "");
  ASSERT_EQ(d.rate, 16000);
  EXPECT_EQ(d.samples.size(), 32000U);
  const auto mid = d.middle(0.1);
  EXPECT_NEAR(tone_amplitude(mid, 16000, 440), 0.3, 0.003);
  EXPECT_NEAR(tone_amplitude(mid, 16000, 1000), 0.2, 0.002);
  EXPECT_LT(tone_amplitude(mid, 16000, 700), 1e-4);
  EXPECT_NEAR(peak_frequency(mid, 16000, 900, 1100), 1000.0, 0.25);
  EXPECT_NEAR(peak_frequency(mid, 16000, 400, 480), 440.0, 0.25);
  // RMS of two sines: sqrt((0.3^2 + 0.2^2) / 2).
  EXPECT_NEAR(rms_db(mid), 10 * std::log10((0.09 + 0.04) / 2), 0.01);
  const Probe p = probe(wav);
  EXPECT_EQ(p.err, "");
  EXPECT_EQ(p.format, "wav");
  EXPECT_EQ(p.codec, "pcm_f32le");
  EXPECT_EQ(p.rate, 16000);
  EXPECT_EQ(p.channels, 1);
}

// ---------------------------------------------------------------------------------------------
// Gain

TEST_F(Audio, VolumeBoostSampleRaisesRmsBy6Point02Db) {
  const std::string in = dir_.file("in.ogg");
  const std::string out = dir_.file("out.ogg");
  ASSERT_TRUE(make_sine(in, 1000, 0.25, 3.0, 48000, 1, kOpus128));

  const RunResult r = run(sample_pipeline("volume_boost"), in, out);

  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Decoded a = decode_f32(in);
  const Decoded b = decode_f32(out);
  ASSERT_EQ(b.err, "") << "the output does not decode cleanly";
  const double delta = rms_db(b.middle()) - rms_db(a.middle());
  report("rms_in_db", rms_db(a.middle()));
  report("rms_out_db", rms_db(b.middle()));
  report("rms_delta_db", delta);
  EXPECT_NEAR(delta, kSixDb, 0.1);
}

TEST_F(Audio, HalfGainLowersRmsBy6Point02Db) {
  const std::string in = dir_.file("in.ogg");
  const std::string out = dir_.file("out.ogg");
  ASSERT_TRUE(make_sine(in, 1000, 0.5, 3.0, 48000, 1, kOpus128));
  write_variant(sample_pipeline("volume_boost"), dir_.file("half.yml"),
                {{"gain: 2.0", "gain: 0.5"}});

  const RunResult r = run(dir_.file("half.yml"), in, out);

  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Decoded a = decode_f32(in);
  const Decoded b = decode_f32(out);
  ASSERT_EQ(b.err, "");
  const double delta = rms_db(b.middle()) - rms_db(a.middle());
  report("rms_delta_db", delta);
  EXPECT_NEAR(delta, -kSixDb, 0.1);
}

TEST_F(Audio, GainNodeScalesPcmSamplesExactly) {
  const std::string in = dir_.file("in.wav");
  const std::string out = dir_.file("out.wav");
  ASSERT_TRUE(make_sine(in, 1000, 0.25, 1.0));
  write_file(dir_.file("p.yml"),
             "mode: oneshot\nsteps:\n"
             "  - kind: streamkit::http_input\n"
             "  - kind: containers::wav::demuxer\n"
             "  - kind: audio::gain\n    params: {gain: 2.0}\n"
             "  - kind: containers::wav::muxer\n    params: {sample_format: f32}\n"
             "  - kind: streamkit::http_output\n");

  const RunResult r = run(dir_.file("p.yml"), in, out);

  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Decoded a = decode_f32(in);
  const Decoded b = decode_f32(out);
  ASSERT_EQ(a.samples.size(), b.samples.size());
  double worst = 0;
  for (std::size_t i = 0; i < a.samples.size(); ++i) {
    worst = std::max(worst, std::abs(static_cast<double>(b.samples[i]) - 2.0 * a.samples[i]));
  }
  report("max_abs_error", worst);
  report("rms_delta_db", rms_db(b.samples) - rms_db(a.samples));
  EXPECT_LT(worst, 1e-6);
  EXPECT_NEAR(rms_db(b.samples) - rms_db(a.samples), kSixDb, 0.001);
}

TEST_F(Audio, GainChainSampleKeepsTheLevelThroughSixteenStages) {
  const std::string in = dir_.file("in.ogg");
  const std::string out = dir_.file("out.ogg");
  ASSERT_TRUE(make_sine(in, 1000, 0.25, 3.0, 48000, 1, kOpus128));

  const RunResult r = run_skit_in(kRepo.string(), {"run", sample_pipeline("gain_chain_16"), "-i",
                                                   in, "-o", out, "--placement", "per-node"});

  ASSERT_EQ(r.exit_code, 0) << r.err;
  const double delta = rms_db(decode_f32(out).middle()) - rms_db(decode_f32(in).middle());
  report("rms_delta_db", delta);
  EXPECT_NEAR(delta, 0.0, 0.1);
}

// ---------------------------------------------------------------------------------------------
// Durations through Opus

class WavToOpusDuration : public Audio, public ::testing::WithParamInterface<int> {};

TEST_P(WavToOpusDuration, OpusRoundTripKeepsTheDurationWithinOneFrame) {
  const int samples = GetParam();
  const std::string in = dir_.file("in.wav");
  const std::string out = dir_.file("out.ogg");
  ASSERT_TRUE(make_sine(in, 1000, 0.25, samples / 48000.0));
  const Decoded a = decode_f32(in);
  ASSERT_EQ(static_cast<int>(a.samples.size()), samples);

  const RunResult r = run(sample_pipeline("wav_to_opus_ogg"), in, out);

  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Decoded b = decode_f32(out);
  ASSERT_EQ(b.err, "");
  const auto diff = static_cast<long>(b.samples.size()) - static_cast<long>(a.samples.size());
  report("duration_in_s", a.seconds());
  report("duration_out_s", b.seconds());
  report("difference_samples", static_cast<double>(diff));
  EXPECT_LE(std::abs(diff), kOpusFrame) << "in " << a.samples.size() << " out " << b.samples.size();
}

// 1 s, 2.3456 s, and 100000 samples (not a whole number of 20 ms frames).
INSTANTIATE_TEST_SUITE_P(Lengths, WavToOpusDuration, ::testing::Values(48000, 112589, 100000),
                         [](const ::testing::TestParamInfo<int>& p) {
                           return "samples_" + std::to_string(p.param);
                         });

/// Ogg/Opus in, Ogg/Opus out (volume_boost): decode, gain, encode again.
class OggOpusDuration : public Audio, public ::testing::WithParamInterface<const char*> {};

TEST_P(OggOpusDuration, OpusRoundTripKeepsTheDurationWithinOneFrame) {
  const std::string which = GetParam();
  std::string in = dir_.file("in.ogg");
  if (which == "speech_sample") {
    in = sample_audio("speech.ogg");
  } else {
    ASSERT_TRUE(make_sine(in, 1000, 0.25, 2.5, 48000, 1, kOpus64));
  }
  const std::string out = dir_.file("out.ogg");

  const RunResult r = run(sample_pipeline("volume_boost"), in, out);

  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Decoded a = decode_f32(in);
  const Decoded b = decode_f32(out);
  ASSERT_EQ(b.err, "");
  const auto diff = static_cast<long>(b.samples.size()) - static_cast<long>(a.samples.size());
  report("duration_in_s", a.seconds());
  report("duration_out_s", b.seconds());
  report("difference_samples", static_cast<double>(diff));
  EXPECT_LE(std::abs(diff), kOpusFrame) << "in " << a.samples.size() << " out " << b.samples.size();
}

INSTANTIATE_TEST_SUITE_P(Inputs, OggOpusDuration, ::testing::Values("sine_2500ms", "speech_sample"),
                         [](const ::testing::TestParamInfo<const char*>& p) {
                           return std::string(p.param);
                         });

/// Decodes `in` with skit (`decode_steps` between http_input and a float WAV muxer).
Decoded decode_with_skit(const TempDir& dir, const std::string& in, const std::string& steps) {
  write_file(dir.file("decode.yml"), "mode: oneshot\nsteps:\n  - kind: streamkit::http_input\n" +
                                         steps +
                                         "  - kind: containers::wav::muxer\n"
                                         "    params: {sample_format: f32}\n"
                                         "  - kind: streamkit::http_output\n");
  const RunResult r =
      run_skit({"run", dir.file("decode.yml"), "-i", in, "-o", dir.file("dec.wav")});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return decode_f32(dir.file("dec.wav"), 0);
}

// Stricter than the acceptance (one frame): a decoder honours the container's end trimming
// (the last Ogg page's granule position), as ffmpeg does, so the length is exact.
TEST_F(Audio, OpusDecoderEndsWhereTheOggStreamEnds) {
  for (const std::string& in : {sample_audio("speech.ogg"), sample_audio("music.ogg")}) {
    SCOPED_TRACE(in);
    const Decoded ref = decode_f32(in);
    const Decoded got = decode_with_skit(dir_, in,
                                         "  - kind: containers::ogg::demuxer\n"
                                         "  - kind: audio::opus::decoder\n");
    report("extra_samples",
           static_cast<double>(got.samples.size()) - static_cast<double>(ref.samples.size()));
    EXPECT_EQ(got.samples.size(), ref.samples.size()) << "ffmpeg decodes " << ref.samples.size();
  }
}

// The last, partial frame is padded with silence for the encoder; the stream must say how
// much of it is real (granule position in Ogg), so the output has exactly the input's length.
TEST_F(Audio, OpusEncoderMarksThePaddingOfTheLastFrame) {
  const std::string in = dir_.file("in.wav");
  const std::string out = dir_.file("out.ogg");
  ASSERT_TRUE(make_sine(in, 1000, 0.25, 100000 / 48000.0));

  const RunResult r = run(sample_pipeline("wav_to_opus_ogg"), in, out);

  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Decoded b = decode_f32(out);
  report("extra_samples", static_cast<double>(b.samples.size()) - 100000.0);
  EXPECT_EQ(b.samples.size(), 100000U);
}

// The same for WebM: the end trim is the last block's DiscardPadding.
TEST_F(Audio, WebmOutputKeepsTheExactLength) {
  const std::string out = dir_.file("out.webm");

  const RunResult r = run(sample_pipeline("flac_to_opus_webm"), sample_audio("music.flac"), out);

  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Decoded a = decode_f32(sample_audio("music.flac"));
  const Decoded b = decode_f32(out);
  report("extra_samples",
         static_cast<double>(b.samples.size()) - static_cast<double>(a.samples.size()));
  EXPECT_EQ(b.samples.size(), a.samples.size());
}

// AAC starts with 1024 priming samples that the MP4 edit list tells the decoder to drop;
// ffmpeg drops them. Kept, they delay the audio by 21.3 ms and lengthen it.
TEST_F(Audio, AacDecoderDropsTheEncoderPrimingSamples) {
  const std::string in = sample_audio("speech.m4a");
  const Decoded ref = decode_f32(in);
  const Decoded got = decode_with_skit(dir_, in,
                                       "  - kind: containers::mp4::demuxer\n"
                                       "  - kind: audio::aac::decoder\n");
  ASSERT_GT(got.samples.size(), 48000U);
  // Lag of skit's decode against ffmpeg's (same libavcodec decoder): 0 when aligned.
  long best_lag = 0;
  double best_err = std::numeric_limits<double>::infinity();
  for (long lag = -2048; lag <= 2048; ++lag) {
    double err = 0;
    for (long i = 24000; i < 28000; ++i) {
      const double d =
          got.samples[static_cast<std::size_t>(i + lag)] - ref.samples[static_cast<std::size_t>(i)];
      err += d * d;
    }
    if (err < best_err) {
      best_err = err;
      best_lag = lag;
    }
  }
  report("lag_samples", static_cast<double>(best_lag));
  report("extra_samples",
         static_cast<double>(got.samples.size()) - static_cast<double>(ref.samples.size()));
  EXPECT_EQ(best_lag, 0);
  EXPECT_EQ(got.samples.size(), ref.samples.size());
}

// ---------------------------------------------------------------------------------------------
// Mixer (needs audio::mixer)

TEST_F(Audio, MixerSumsA440AndA1kSineAtTheirLevels) {
  ASSERT_TRUE(make_sine(dir_.file("a440.wav"), 440, 0.3, 3.0));
  ASSERT_TRUE(make_sine(dir_.file("a1k.wav"), 1000, 0.2, 3.0));
  write_file(dir_.file("mix.yml"),
             "mode: oneshot\nnodes:\n"
             "  upload: {kind: streamkit::http_input}\n"
             "  upload_wav: {kind: containers::wav::demuxer, needs: upload}\n"
             "  file:\n    kind: core::file_reader\n    params: {path: " +
                 dir_.file("a440.wav") +
                 "}\n"
                 "  file_wav: {kind: containers::wav::demuxer, needs: file}\n"
                 "  mixer: {kind: audio::mixer, needs: [upload_wav, file_wav]}\n"
                 "  wav:\n    kind: containers::wav::muxer\n    params: {sample_format: f32}\n"
                 "    needs: mixer\n"
                 "  out: {kind: streamkit::http_output, needs: wav}\n");

  const RunResult r = run(dir_.file("mix.yml"), dir_.file("a1k.wav"), dir_.file("out.wav"));

  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Decoded b = decode_f32(dir_.file("out.wav"));
  const auto mid = b.middle(0.25);
  ASSERT_GT(mid.size(), 48000U);
  const double a440 = amplitude_db(tone_amplitude(mid, 48000, 440));
  const double a1k = amplitude_db(tone_amplitude(mid, 48000, 1000));
  const double a700 = amplitude_db(tone_amplitude(mid, 48000, 700));
  report("tone_440_db", a440);
  report("tone_1000_db", a1k);
  report("tone_700_db", a700);
  EXPECT_NEAR(a440, amplitude_db(0.3), 0.1);
  EXPECT_NEAR(a1k, amplitude_db(0.2), 0.1);
  EXPECT_LT(a700, amplitude_db(0.2) - 60) << "nothing between the tones";
}

TEST_F(Audio, MixingSampleHoldsTheUploadAndTheMusicTones) {
  ASSERT_TRUE(make_sine(dir_.file("music440.ogg"), 440, 0.3, 3.0, 48000, 1, kOpus128));
  ASSERT_TRUE(make_sine(dir_.file("voice1k.ogg"), 1000, 0.2, 3.0, 48000, 1, kOpus128));
  write_variant(sample_pipeline("mixing"), dir_.file("mixing.yml"),
                {{"samples/audio/music.ogg", dir_.file("music440.ogg")}});

  const RunResult r = run(dir_.file("mixing.yml"), dir_.file("voice1k.ogg"), dir_.file("out.webm"));

  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Probe p = probe(dir_.file("out.webm"));
  EXPECT_EQ(p.err, "");
  EXPECT_EQ(p.codec, "opus");
  const Decoded b = decode_f32(dir_.file("out.webm"));
  const auto mid = b.middle(0.25);
  ASSERT_GT(mid.size(), 48000U);
  const double a440 = amplitude_db(tone_amplitude(mid, 48000, 440));
  const double a1k = amplitude_db(tone_amplitude(mid, 48000, 1000));
  report("tone_440_db", a440);
  report("tone_1000_db", a1k);
  EXPECT_NEAR(a440, amplitude_db(0.3 * 0.5), 0.5) << "music at 0.3, music_gain 0.5";
  EXPECT_NEAR(a1k, amplitude_db(0.2), 0.5) << "upload at 0.2";
}

// ---------------------------------------------------------------------------------------------
// Resampler (needs audio::resampler)

TEST_F(Audio, ResampleSampleKeepsA1kHzToneAt1kHz) {
  const std::string in = dir_.file("in.wav");
  const std::string out = dir_.file("out.wav");
  ASSERT_TRUE(make_sine(in, 1000, 0.5, 2.0));

  const RunResult r = run(sample_pipeline("resample_16k_mono_wav"), in, out);

  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Probe p = probe(out);
  EXPECT_EQ(p.err, "");
  EXPECT_EQ(p.codec, "pcm_s16le");
  EXPECT_EQ(p.rate, 16000);
  EXPECT_EQ(p.channels, 1);
  const Decoded b = decode_f32(out, 0);  // at the file's own 16 kHz
  ASSERT_EQ(b.rate, 16000);
  const auto mid = b.middle(0.1);
  const double peak = peak_frequency(mid, 16000, 900, 1100);
  report("peak_hz", peak);
  report("tone_1000_db", amplitude_db(tone_amplitude(mid, 16000, 1000)));
  report("duration_s", b.seconds());
  EXPECT_NEAR(peak, 1000.0, 0.5);
  EXPECT_NEAR(amplitude_db(tone_amplitude(mid, 16000, 1000)), amplitude_db(0.5), 0.2);
  EXPECT_NEAR(b.seconds(), 2.0, 0.02);
}

TEST_F(Audio, ResampleSampleTurnsStereo44k1IntoMono16k) {
  const std::string in = dir_.file("in.wav");
  const std::string out = dir_.file("out.wav");
  ASSERT_TRUE(make_sine(in, 1000, 0.4, 2.0, 44100, 2));

  const RunResult r = run(sample_pipeline("resample_16k_mono_wav"), in, out);

  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Probe p = probe(out);
  EXPECT_EQ(p.rate, 16000);
  EXPECT_EQ(p.channels, 1);
  const Decoded b = decode_f32(out, 0);
  const double peak = peak_frequency(b.middle(0.1), 16000, 900, 1100);
  report("peak_hz", peak);
  EXPECT_NEAR(peak, 1000.0, 0.5);
  EXPECT_NEAR(b.seconds(), 2.0, 0.02);
}

// ---------------------------------------------------------------------------------------------
// Every sample pipeline

struct SampleCase {
  const char* pipeline;  // samples/pipelines/oneshot/<pipeline>.yml
  const char* input;     // samples/audio/<input>
  const char* format;    // ffprobe format_name
  const char* codec;
  int rate;
  int channels;
  const char* other_input = nullptr;  // a second input (mixing: the music file)
};

std::ostream& operator<<(std::ostream& os, const SampleCase& c) {
  return os << c.pipeline;
}

// Byte-identical samples (output == input) are checked by Samples.* in microkernel_test.cpp.
const std::array<const char*, 3> kByteIdenticalSamples = {"http_passthrough", "paced_copy",
                                                          "passthrough_chain_16"};

const SampleCase kSampleCases[] = {
    {"volume_boost", "speech.ogg", "ogg", "opus", 48000, 1},
    {"gain_chain_16", "speech.ogg", "ogg", "opus", 48000, 1},
    {"wav_to_opus_ogg", "tone_440.wav", "ogg", "opus", 48000, 1},
    {"flac_to_opus_webm", "music.flac", "matroska,webm", "opus", 48000, 2},
    {"mp3_to_opus_webm", "speech.mp3", "matroska,webm", "opus", 48000, 1},
    {"aac_mp4_to_opus_ogg", "speech.m4a", "ogg", "opus", 48000, 1},
    {"mixing", "speech.ogg", "matroska,webm", "opus", 48000, 1, "music.ogg"},  // audio::mixer
    {"resample_16k_mono_wav", "tone_440.wav", "wav", "pcm_s16le", 16000, 1},   // audio::resampler
    {"any_to_opus_ogg", "speech.m4a", "ogg", "opus", 48000, 2},  // auto demuxer + audio::decoder
};

// The any-format sample takes every format of samples/audio the same way.
TEST(AnyFormatSample, ConvertsEveryShippedFormatToOpusOgg) {
  TempDir dir;
  for (const char* input : {"tone_440.wav", "music.flac", "speech.mp3", "speech.m4a",
                            "speech.ogg", "music.ogg"}) {
    SCOPED_TRACE(input);
    const std::string out = dir.file(std::string(input) + ".out.ogg");
    const RunResult r = run_skit({"run", sample_pipeline("any_to_opus_ogg"), "-i",
                                  sample_audio(input), "-o", out, "-q"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const Probe p = probe(out);
    EXPECT_EQ(p.codec, "opus");
    EXPECT_EQ(p.channels, 2);
    EXPECT_EQ(decode_errors(out), "");
    EXPECT_NEAR(decode_f32(out).seconds(), decode_f32(sample_audio(input)).seconds(), 0.06);
  }
}

TEST(SamplePipelines, EverySampleHasARowInTheTableAndEveryRowASample) {
  std::set<std::string> listed(std::begin(kByteIdenticalSamples), std::end(kByteIdenticalSamples));
  // Text samples, run and checked by their own suites.
  for (const char* text_sample : {"script_headline" /* tests/e2e/script_test.cpp */}) {
    listed.insert(text_sample);
  }
  for (const auto& c : kSampleCases) {
    listed.insert(c.pipeline);
    EXPECT_TRUE(fs::exists(sample_pipeline(c.pipeline))) << c.pipeline;
    EXPECT_TRUE(fs::exists(sample_audio(c.input))) << c.input;
  }
  int count = 0;
  for (const auto& e : fs::directory_iterator(kRepo / "samples/pipelines/oneshot")) {
    if (e.path().extension() == ".yml") {
      ++count;
      EXPECT_TRUE(listed.contains(e.path().stem().string()))
          << e.path() << " has no row in kSampleCases (audio_test.cpp)";
    }
  }
  EXPECT_EQ(count, static_cast<int>(listed.size()));
}

class SamplePipeline : public Audio, public ::testing::WithParamInterface<SampleCase> {};

TEST_P(SamplePipeline, ValidatesRunsAndProducesCleanMediaOfTheExpectedFormat) {
  const SampleCase& c = GetParam();
  const std::string yml = sample_pipeline(c.pipeline);
  const std::string out = dir_.file("out.bin");

  const RunResult v = run_skit_in(kRepo.string(), {"validate", yml});
  EXPECT_EQ(v.exit_code, 0) << v.err;
  const RunResult r = run(yml, sample_audio(c.input), out);

  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_LT(r.seconds, 20.0);
  const json stats = load_json(dir_.file("stats.json"));
  EXPECT_EQ(stats.value("status", ""), "ok");
  for (const auto& n : stats["nodes"]) {
    EXPECT_EQ(n["state"], "stopped") << n.dump();
  }
  const Probe p = probe(out);
  EXPECT_EQ(p.err, "") << "ffprobe complains";
  EXPECT_EQ(p.format, c.format);
  EXPECT_EQ(p.codec, c.codec);
  EXPECT_EQ(p.rate, c.rate);
  EXPECT_EQ(p.channels, c.channels);
  EXPECT_EQ(decode_errors(out), "") << "ffmpeg complains while decoding the output";
  // Length: the input's (the longer input's for the mixer), give or take codec framing.
  double expected = decode_f32(sample_audio(c.input)).seconds();
  double shortest = expected;
  if (c.other_input != nullptr) {
    const double other = decode_f32(sample_audio(c.other_input)).seconds();
    expected = std::max(expected, other);
    shortest = std::min(shortest, other);
  }
  const double got = decode_f32(out).seconds();
  report("duration_in_s", expected);
  report("duration_out_s", got);
  EXPECT_GE(got, shortest - 0.06);
  EXPECT_LE(got, expected + 0.06);
}

INSTANTIATE_TEST_SUITE_P(Oneshot, SamplePipeline, ::testing::ValuesIn(kSampleCases),
                         [](const ::testing::TestParamInfo<SampleCase>& p) {
                           return std::string(p.param.pipeline);
                         });

// ---------------------------------------------------------------------------------------------
// Bad media

/// Ogg page CRC (polynomial 0x04c11db7, no reflection, zero init), as in the Ogg spec.
std::uint32_t ogg_crc(std::string_view bytes) {
  static const auto table = [] {
    std::array<std::uint32_t, 256> t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t r = i << 24;
      for (int k = 0; k < 8; ++k) {
        r = (r & 0x80000000U) != 0 ? (r << 1) ^ 0x04C11DB7U : r << 1;
      }
      t[i] = r;
    }
    return t;
  }();
  std::uint32_t crc = 0;
  for (char ch : bytes) {
    crc = (crc << 8) ^ table[((crc >> 24) ^ static_cast<std::uint8_t>(ch)) & 0xFF];
  }
  return crc;
}

struct OggPage {
  std::size_t offset;
  std::size_t header_size;
  std::size_t body_size;
};

std::vector<OggPage> ogg_pages(const std::string& d) {
  std::vector<OggPage> pages;
  std::size_t o = 0;
  while (o + 27 <= d.size() && d.compare(o, 4, "OggS") == 0) {
    const auto segments = static_cast<std::uint8_t>(d[o + 26]);
    std::size_t body = 0;
    for (std::size_t i = 0; i < segments; ++i) {
      body += static_cast<std::uint8_t>(d[o + 27 + i]);
    }
    pages.push_back({o, 27U + segments, body});
    o += 27U + segments + body;
  }
  return pages;
}

void set_ogg_crc(std::string& d, const OggPage& p) {
  for (int i = 0; i < 4; ++i) {
    d[p.offset + 22 + i] = 0;
  }
  const std::uint32_t crc =
      ogg_crc(std::string_view(d).substr(p.offset, p.header_size + p.body_size));
  for (int i = 0; i < 4; ++i) {
    d[p.offset + 22 + i] = static_cast<char>((crc >> (8 * i)) & 0xFF);
  }
}

/// `valid` with the first Opus packet of a middle page made invalid (TOC code 3, "arbitrary
/// number of frames", with a frame count of 0) and the page CRC recomputed, so the Ogg layer
/// is intact and the Opus decoder must reject the packet.
std::string corrupt_opus_packet(std::string valid) {
  const auto pages = ogg_pages(valid);
  EXPECT_GT(pages.size(), 6U);
  for (std::size_t i = pages.size() / 2; i < pages.size(); ++i) {
    const OggPage& p = pages[i];
    const bool continued = (static_cast<std::uint8_t>(valid[p.offset + 5]) & 0x01) != 0;
    const auto first_lace = static_cast<std::uint8_t>(valid[p.offset + 27]);
    if (continued || first_lace < 2) {
      continue;
    }
    const std::size_t body = p.offset + p.header_size;
    valid[body] = static_cast<char>((static_cast<std::uint8_t>(valid[body]) & 0xFC) | 0x03);
    valid[body + 1] = 0;
    set_ogg_crc(valid, p);
    return valid;
  }
  ADD_FAILURE() << "no page starts with a whole packet";
  return valid;
}

struct BadMediaCase {
  const char* name;
  const char* pipeline;
  const char* node;  // "node 'step_1'"
  const char* kind;
  std::vector<std::string> what;  // stderr must contain one of these
};

std::ostream& operator<<(std::ostream& os, const BadMediaCase& c) {
  return os << c.name;
}

const BadMediaCase kBadMedia[] = {
    {"truncated_ogg",
     "volume_boost",
     "step_1",
     "containers::ogg::demuxer",
     {"truncated", "ended early"}},
    {"random_bytes_as_ogg",
     "volume_boost",
     "step_1",
     "containers::ogg::demuxer",
     {"not a readable Ogg stream", "no Ogg data found"}},
    {"opus_corrupt_packet",
     "volume_boost",
     "step_2",
     "audio::opus::decoder",
     {"corrupt opus packet"}},
    {"empty_ogg", "volume_boost", "step_1", "containers::ogg::demuxer", {"empty input"}},
    {"empty_wav", "wav_to_opus_ogg", "step_1", "containers::wav::demuxer", {"empty input"}},
    {"empty_flac", "flac_to_opus_webm", "step_1", "audio::flac::decoder", {"empty input"}},
    {"empty_mp3", "mp3_to_opus_webm", "step_1", "audio::mp3::decoder", {"empty input"}},
    {"empty_mp4", "aac_mp4_to_opus_ogg", "step_1", "containers::mp4::demuxer", {"empty input"}},
    {"random_bytes_as_wav",
     "wav_to_opus_ogg",
     "step_1",
     "containers::wav::demuxer",
     {"not a readable WAV stream", "no WAV data found"}},
    {"random_bytes_as_flac",
     "flac_to_opus_webm",
     "step_1",
     "audio::flac::decoder",
     {"not a readable FLAC stream", "no audio stream in the FLAC input", "no FLAC data found"}},
    {"random_bytes_as_mp3",
     "mp3_to_opus_webm",
     "step_1",
     "audio::mp3::decoder",
     {"not a readable MP3 stream", "no MP3 data found", "no audio stream in the MP3 input"}},
    {"random_bytes_as_mp4",
     "aac_mp4_to_opus_ogg",
     "step_1",
     "containers::mp4::demuxer",
     {"not a readable MP4 stream", "no MP4 data found"}},
};

class BadMedia : public Audio, public ::testing::WithParamInterface<BadMediaCase> {};

TEST_P(BadMedia, FailsFastNamingTheNodeAndTheProblem) {
  const BadMediaCase& c = GetParam();
  const std::string name = c.name;
  const std::string in = dir_.file("in.bin");
  if (name == "truncated_ogg" || name == "opus_corrupt_packet") {
    // 5 s of Opus at 64 kb/s (about 40 KB, dozens of pages): the cut lands mid-stream.
    ASSERT_TRUE(make_sine(dir_.file("valid.ogg"), 1000, 0.25, 5.0, 48000, 1, kOpus64));
    const std::string valid = read_file(dir_.file("valid.ogg"));
    if (name == "truncated_ogg") {
      write_file(in, valid.substr(0, valid.size() * 30 / 100));
    } else {
      const std::string bad = corrupt_opus_packet(valid);
      write_file(in, bad);
      // The corruption is an Opus error, not an Ogg one: every page CRC still checks out,
      // and ffmpeg's own decoder rejects the packet.
      for (const OggPage& p : ogg_pages(bad)) {
        std::string copy = bad.substr(p.offset, p.header_size + p.body_size);
        const std::string stored = copy.substr(22, 4);
        copy.replace(22, 4, 4, '\0');
        const std::uint32_t crc = ogg_crc(copy);
        EXPECT_EQ(
            stored,
            std::string({static_cast<char>(crc & 0xFF), static_cast<char>((crc >> 8) & 0xFF),
                         static_cast<char>((crc >> 16) & 0xFF), static_cast<char>(crc >> 24)}));
      }
      const std::string ff = decode_errors(in);
      EXPECT_NE(ff.find("opus"), std::string::npos) << ff;
      EXPECT_EQ(ff.find("CRC"), std::string::npos) << ff;
    }
  } else if (name.rfind("random_bytes", 0) == 0) {
    write_file(in, random_bytes(64 * 1024, 31));
  } else {
    write_file(in, "");
  }

  const RunResult r =
      run_skit_in(kRepo.string(),
                  {"run", sample_pipeline(c.pipeline), "-i", in, "-o", dir_.file("out.bin")}, 30s);

  report("seconds", r.seconds);
  EXPECT_NE(r.exit_code, 0) << "bad media must fail the run\n" << r.err;
  EXPECT_NE(r.exit_code, -1) << "skit did not exit within 30 s";
  EXPECT_LT(r.seconds, 10.0);
  EXPECT_NE(r.err.find(std::string("node '") + c.node + "'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(c.kind), std::string::npos) << r.err;
  EXPECT_TRUE(std::any_of(c.what.begin(), c.what.end(),
                          [&](const std::string& w) { return r.err.find(w) != std::string::npos; }))
      << "stderr should say: " << c.what.front() << "\n"
      << r.err;
}

INSTANTIATE_TEST_SUITE_P(Inputs, BadMedia, ::testing::ValuesIn(kBadMedia),
                         [](const ::testing::TestParamInfo<BadMediaCase>& p) {
                           return std::string(p.param.name);
                         });

}  // namespace
}  // namespace skit::testing

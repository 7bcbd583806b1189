// SPDX-License-Identifier: MPL-2.0
//
// plugin::native::apertium_translate: rule-based machine translation on Apertium (Debian's
// apertium + apertium-eng-spa language data). Text or Transcription in, Text out. Fills the
// role of StreamKit's plugin::native::nllb / helsinki translation nodes.
//
// Inside a sandboxed worker nothing may be executed, so the pair's pipeline (its .mode file:
// lt-proc | apertium-tagger | apertium-pretransfer | apertium-transfer | lt-proc -b |
// lrx-proc | apertium-transfer -b | apertium-interchunk | apertium-postchunk | lt-proc -g |
// lt-proc -p) runs in-process: each stage is the library class its program wraps, reading the
// previous stage's output from an fmemopen() stream and writing to an open_memstream() one.
// The txt deformatter and reformatter (apertium-destxt/-retxt, flex programs with no library
// entry point) are reimplemented below; lrx-proc's class ships without a header
// (lrx_processor.hpp declares it).
#include <apertium/file_morpho_stream.h>
#include <apertium/hmm.h>
#include <apertium/interchunk.h>
#include <apertium/postchunk.h>
#include <apertium/pretransfer.h>
#include <apertium/tagger_data_hmm.h>
#include <apertium/tagger_flags.h>
#include <apertium/transfer.h>
#include <lttoolbox/fst_processor.h>
#include <lttoolbox/input_file.h>
#include <unicode/ustdio.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "lrx_processor.hpp"
#include "streamkit_plugin.hpp"

namespace {

using streamkit::json;
namespace fs = std::filesystem;

constexpr const char* kModesDir = "/usr/share/apertium/modes";

// ---- the txt format: what apertium-destxt / apertium-retxt do for plain text ----

// Escapes the stream's reserved characters, turns newlines into blanks and ends the text with
// a sentence end and a final blank (destxt adds the "." so the tagger sees a sentence end).
std::string deformat(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '\\': case '[': case ']': case '^': case '$': case '/': case '@': case '<':
      case '>': case '{': case '}':
        out += '\\';
        out += c;
        break;
      case '\n':
        out += "[\n]";
        break;
      default:
        out += c;
    }
  }
  out += ".[][\n]";
  return out;
}

// Drops the "." destxt appended and the final blank, unescapes, and keeps the text of blanks.
std::string reformat(std::string s) {
  const std::string tail = "[][\n]";
  if (s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0)
    s.erase(s.size() - tail.size());
  if (!s.empty() && s.back() == '.') s.pop_back();
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '\\' && i + 1 < s.size()) {
      out += s[++i];
    } else if (c == '[' || c == ']') {
      continue;  // blank delimiters; their content is kept
    } else {
      out += c;
    }
  }
  // Trim: the generator leaves a leading blank where an unknown-word mark was removed.
  auto first = out.find_first_not_of(" \t\n"), last = out.find_last_not_of(" \t\n");
  return first == std::string::npos ? std::string() : out.substr(first, last - first + 1);
}

// ---- streams ----

// Runs one stage over `input`, returning what it wrote.
std::string run_stage(const std::string& input, const std::function<void(InputFile&, UFILE*)>& stage) {
  std::string in_copy = input.empty() ? std::string(" ") : input;  // fmemopen refuses size 0
  FILE* in = fmemopen(in_copy.data(), in_copy.size(), "rb");
  if (in == nullptr) throw streamkit::Error("fmemopen failed");
  char* buffer = nullptr;
  size_t length = 0;
  FILE* out = open_memstream(&buffer, &length);
  if (out == nullptr) {
    std::fclose(in);
    throw streamkit::Error("open_memstream failed");
  }
  UFILE* uout = u_finit(out, nullptr, "UTF-8");
  auto release = [&] {
    u_fclose(uout);  // flushes; does not close `out` (u_finit leaves the FILE to its owner)
    std::fclose(out);
  };
  try {
    InputFile input_file;  // closes `in` when it goes (it only spares stdin)
    input_file.wrap(in);
    stage(input_file, uout);
  } catch (...) {
    release();
    std::free(buffer);
    throw;
  }
  release();
  std::string result(buffer, length);
  std::free(buffer);
  return result;
}

FILE* open_data(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) throw streamkit::Error("cannot open Apertium data file '" + path + "'");
  return f;
}

// ---- the .mode file ----

struct Stage {
  std::string program;
  std::vector<std::string> args;  // flags and files, quotes removed, $1/$2 substituted
};

std::vector<Stage> parse_mode(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw streamkit::Error("no Apertium mode file '" + path + "' (is the pair installed?)");
  std::stringstream ss;
  ss << f.rdbuf();
  std::string text = ss.str();
  std::vector<Stage> stages;
  std::stringstream pipeline(text);
  std::string part;
  while (std::getline(pipeline, part, '|')) {
    std::vector<std::string> words;
    std::string w;
    bool quoted = false;
    for (char c : part) {
      if (c == '\'') {
        quoted = !quoted;
      } else if (!quoted && (c == ' ' || c == '\t' || c == '\n')) {
        if (!w.empty()) words.push_back(w);
        w.clear();
      } else {
        w += c;
      }
    }
    if (!w.empty()) words.push_back(w);
    if (words.empty()) continue;
    Stage s{words[0], {}};
    for (size_t i = 1; i < words.size(); ++i) {
      if (words[i] == "$1") s.args.push_back("-g");  // the apertium script's default
      else if (words[i] == "$2") continue;           // no tagger option by default
      else s.args.push_back(words[i]);
    }
    stages.push_back(std::move(s));
  }
  return stages;
}

// One loaded stage of the chain.
class StageRunner {
 public:
  virtual ~StageRunner() = default;
  virtual std::string run(const std::string& input) = 0;
};

std::vector<std::string> files_of(const Stage& s) {
  std::vector<std::string> files;
  for (const auto& a : s.args)
    if (!a.empty() && a[0] != '-') files.push_back(a);
  return files;
}
bool has_flag(const Stage& s, const char* flag) {
  for (const auto& a : s.args)
    if (a == flag) return true;
  return false;
}
void expect_files(const Stage& s, size_t n) {
  if (files_of(s).size() != n)
    throw streamkit::Error(s.program + ": expected " + std::to_string(n) + " data files in the mode");
}

class LtProc : public StageRunner {
 public:
  explicit LtProc(const Stage& s) {
    expect_files(s, 1);
    FILE* f = open_data(files_of(s)[0]);
    fst_.load(f);
    std::fclose(f);
    if (has_flag(s, "-b")) {
      mode_ = Mode::bilingual;
      fst_.initBiltrans();
    } else if (has_flag(s, "-p")) {
      mode_ = Mode::postgeneration;
      fst_.initPostgeneration();
    } else if (has_flag(s, "-g") || has_flag(s, "-n")) {
      mode_ = Mode::generation;
      generation_ = has_flag(s, "-n") ? gm_clean : gm_unknown;
      fst_.initGeneration();
    } else {
      for (const auto& a : s.args)
        if (a[0] == '-') throw streamkit::Error("lt-proc option " + a + " is not supported");
      mode_ = Mode::analysis;
      fst_.initAnalysis();
    }
    if (!fst_.valid()) throw streamkit::Error("lt-proc: invalid transducer " + files_of(s)[0]);
  }
  std::string run(const std::string& input) override {
    return run_stage(input, [&](InputFile& in, UFILE* out) {
      switch (mode_) {
        case Mode::analysis: fst_.analysis(in, out); break;
        case Mode::bilingual: fst_.bilingual(in, out); break;
        case Mode::generation: fst_.generation(in, out, generation_); break;
        case Mode::postgeneration: fst_.postgeneration(in, out); break;
      }
    });
  }

 private:
  enum class Mode { analysis, bilingual, generation, postgeneration };
  FSTProcessor fst_;
  Mode mode_ = Mode::analysis;
  GenerationMode generation_ = gm_unknown;
};

// apertium-tagger -g: the HMM tagger. Its input stream class (FileMorphoStream) only opens a
// file by name, or reads stdin when given none; so stdin is pointed at the in-memory stream
// while one is built and destroyed (under a lock: stdin is process-wide).
class HmmTagger : public StageRunner {
 public:
  explicit HmmTagger(const Stage& s) : hmm_(flags_) {
    if (!has_flag(s, "-g")) throw streamkit::Error("apertium-tagger: only -g (tagging) runs here");
    expect_files(s, 1);
    FILE* f = open_data(files_of(s)[0]);
    hmm_.deserialise(f);
    std::fclose(f);
  }
  std::string run(const std::string& input) override {
    static std::mutex stdin_mutex;
    std::lock_guard lock(stdin_mutex);
    std::string in_copy = input.empty() ? std::string(" ") : input;
    FILE* in = fmemopen(in_copy.data(), in_copy.size(), "rb");
    if (in == nullptr) throw streamkit::Error("fmemopen failed");
    char* buffer = nullptr;
    size_t length = 0;
    FILE* out = open_memstream(&buffer, &length);
    UFILE* uout = u_finit(out, nullptr, "UTF-8");
    FILE* saved_stdin = stdin;
    stdin = in;
    try {
      FileMorphoStream morpho(nullptr, true, &hmm_.get_tagger_data());
      hmm_.tagger(morpho, uout);
    } catch (...) {
      stdin = saved_stdin;
      std::fclose(in);
      u_fclose(uout);
      std::fclose(out);
      std::free(buffer);
      throw;
    }
    stdin = saved_stdin;
    std::fclose(in);  // not closed by the stream: it was stdin to it
    u_fclose(uout);
    std::fclose(out);
    std::string result(buffer, length);
    std::free(buffer);
    return result;
  }

 private:
  Apertium::TaggerFlags flags_;
  HMM hmm_;
};

class Pretransfer : public StageRunner {
 public:
  explicit Pretransfer(const Stage& s) {
    for (const auto& a : s.args)
      if (a == "-e") compound_sep_ = true;
      else if (a == "-n") surface_forms_ = false;  // kept for the option's presence only
      else throw streamkit::Error("apertium-pretransfer option " + a + " is not supported");
    surface_forms_ = false;
  }
  std::string run(const std::string& input) override {
    return run_stage(input, [&](InputFile& in, UFILE* out) {
      processStream(in, out, false, surface_forms_, compound_sep_);
    });
  }

 private:
  bool surface_forms_ = false;
  bool compound_sep_ = false;
};

class TransferStage : public StageRunner {
 public:
  explicit TransferStage(const Stage& s) {
    expect_files(s, 2);
    auto files = files_of(s);
    // -b: the input was already through the bilingual dictionary; -n: no bilingual step.
    if (has_flag(s, "-b")) {
      transfer_.setPreBilingual(true);
      transfer_.setUseBilingual(false);
    } else if (has_flag(s, "-n")) {
      transfer_.setUseBilingual(false);
    } else {
      throw streamkit::Error("apertium-transfer without -b or -n needs a bilingual file");
    }
    transfer_.read(files[0], files[1], "");
  }
  std::string run(const std::string& input) override {
    return run_stage(input, [&](InputFile& in, UFILE* out) { transfer_.transfer(in, out); });
  }

 private:
  Transfer transfer_;
};

template <class Engine, void (Engine::*Process)(InputFile&, UFILE*)>
class ChunkStage : public StageRunner {
 public:
  explicit ChunkStage(const Stage& s) {
    expect_files(s, 2);
    auto files = files_of(s);
    engine_.read(files[0].c_str(), files[1].c_str());
  }
  std::string run(const std::string& input) override {
    return run_stage(input, [&](InputFile& in, UFILE* out) { (engine_.*Process)(in, out); });
  }

 private:
  Engine engine_;
};

class LexicalSelection : public StageRunner {
 public:
  explicit LexicalSelection(const Stage& s) {
    // The mode passes -m, which lrx-proc 0.4 accepts and ignores.
    expect_files(s, 1);
    FILE* f = open_data(files_of(s)[0]);
    lrx_.load(f);
    std::fclose(f);
    lrx_.init();
  }
  std::string run(const std::string& input) override {
    return run_stage(input, [&](InputFile& in, UFILE* out) { lrx_.process(in, out); });
  }

 private:
  LRXProcessor lrx_;
};

std::unique_ptr<StageRunner> load_stage(const Stage& s) {
  if (s.program == "lt-proc") return std::make_unique<LtProc>(s);
  if (s.program == "apertium-tagger") return std::make_unique<HmmTagger>(s);
  if (s.program == "apertium-pretransfer") return std::make_unique<Pretransfer>(s);
  if (s.program == "apertium-transfer") return std::make_unique<TransferStage>(s);
  if (s.program == "apertium-interchunk")
    return std::make_unique<ChunkStage<Interchunk, &Interchunk::interchunk>>(s);
  if (s.program == "apertium-postchunk")
    return std::make_unique<ChunkStage<Postchunk, &Postchunk::postchunk>>(s);
  if (s.program == "lrx-proc") return std::make_unique<LexicalSelection>(s);
  throw streamkit::Error("the Apertium stage '" + s.program +
                         "' has no in-process implementation here");
}

class ApertiumTranslate {
 public:
  static const CNodeMetadata& metadata() {
    static streamkit::Metadata meta = [] {
      streamkit::Metadata m("apertium_translate");
      m.description(
           "Rule-based translation on Apertium (Debian's language pairs, e.g. apertium-eng-spa), "
           "run in-process: Text or Transcription in, Text out. Fills the role of StreamKit's "
           "nllb/helsinki translation plugins.")
          .input("in", {streamkit::type_of(CPacketType_Text),
                        streamkit::type_of(CPacketType_Transcription)})
          .output("out", streamkit::type_of(CPacketType_Text))
          .param_schema(
              {{"type", "object"},
               {"properties",
                {{"pair",
                  {{"type", "string"},
                   {"default", "eng-spa"},
                   {"description", "Language pair: a mode in /usr/share/apertium/modes"}}},
                 {"modes_dir",
                  {{"type", "string"},
                   {"default", kModesDir},
                   {"description", "Where the pairs' .mode files are"}}}}},
               {"additionalProperties", false}})
          .category("text")
          .category("translation")
          .category("ml");
      return m;
    }();
    static const CNodeMetadata& c = meta.c();
    return c;
  }

  ApertiumTranslate(const json& params, streamkit::Logger log) : log_(std::move(log)) {
    std::string pair = "eng-spa", modes = kModesDir;
    for (const auto& [key, value] : params.items()) {
      if (!value.is_string() || value.get<std::string>().empty())
        throw streamkit::Error(key + " must be a non-empty string");
      if (key == "pair") pair = value.get<std::string>();
      else if (key == "modes_dir") modes = value.get<std::string>();
      else throw streamkit::Error("unknown param '" + key + "'");
    }
    if (pair.find('/') != std::string::npos) throw streamkit::Error("pair must be a mode name");
    for (const Stage& s : parse_mode(modes + "/" + pair + ".mode")) stages_.push_back(load_stage(s));
    log_.info("apertium " + pair + ": " + std::to_string(stages_.size()) + " stages loaded");
  }

  std::string translate(const std::string& text) {
    std::string stream = deformat(text);
    for (auto& stage : stages_) stream = stage->run(stream);
    return reformat(stream);
  }

  void process(std::string_view, const CPacket& packet, streamkit::Output& out) {
    std::string text = streamkit::text_of(packet);
    if (text.find_first_not_of(" \t\r\n") == std::string::npos) return;
    out.text("out", translate(text));
  }

 private:
  streamkit::Logger log_;
  std::vector<std::unique_ptr<StageRunner>> stages_;
};

}  // namespace

STREAMKIT_CPP_PLUGIN(ApertiumTranslate)

// SPDX-License-Identifier: MPL-2.0
// core::text_chunker buffers streamed text (Text packets, or UTF-8 Binary) and emits Text
// chunks at natural boundaries, for streaming TTS:
//   sentences  after . ! ? … followed by whitespace (closing quotes/brackets may come first),
//              and after 。！？ (no space needed);
//   clauses    the sentence boundaries, plus , ; : (and ，；：) followed by whitespace, and a
//              spaced dash (" - ", " – ", " — ");
//   words      every chunk_words words.
// In sentences/clauses mode a chunk ends at the first boundary at which it is at least
// min_length characters long; shorter pieces are joined with what follows. Punctuation
// without whitespace after it ("3.14", a token still streaming in) is not a boundary. Chunks
// are trimmed of surrounding whitespace; what remains is flushed at the end. Bytes split
// across packets (a multi-byte character) are joined; invalid UTF-8 is an error.
#include <algorithm>
#include <array>
#include <string>

#include "skit/core/registry.hpp"

namespace skit::nodes {

namespace {

struct TextChunkerParams {
  std::string split_mode = "clauses";
  std::int64_t min_length = 10;
  std::int64_t chunk_words = 5;

  static void describe(ParamSchemaBuilder<TextChunkerParams>& b) {
    b.field("split_mode", &TextChunkerParams::split_mode,
            "sentences: at sentence ends; clauses: also at commas, semicolons, colons and "
            "spaced dashes (natural pauses, the default); words: every chunk_words words.")
        .choices({"sentences", "clauses", "words"});
    b.field("min_length", &TextChunkerParams::min_length,
            "Shortest chunk in characters (sentences/clauses); shorter pieces are joined with "
            "the next.")
        .range(0, 100000);
    b.field("chunk_words", &TextChunkerParams::chunk_words, "Words per chunk (words mode).")
        .range(1, 10000);
  }
};

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) {
    s.remove_prefix(1);
  }
  while (!s.empty() && is_space(s.back())) {
    s.remove_suffix(1);
  }
  return s;
}

/// Code points in valid UTF-8 text.
std::size_t char_count(std::string_view s) {
  return static_cast<std::size_t>(std::count_if(
      s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

/// Length of the longest prefix of `s` that ends on a whole UTF-8 sequence, or npos if `s`
/// holds an invalid sequence. A trailing incomplete sequence is left out of the prefix.
std::size_t valid_utf8_prefix(std::string_view s, std::size_t* bad_at) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = 0;
    std::uint32_t min = 0;
    if (c < 0x80) {
      ++i;
      continue;
    }
    if ((c & 0xE0) == 0xC0) {
      n = 2;
      min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      n = 3;
      min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      n = 4;
      min = 0x10000;
    } else {
      *bad_at = i;
      return std::string_view::npos;
    }
    std::uint32_t cp = c & (0xFF >> (n + 1));
    for (std::size_t k = 1; k < n; ++k) {
      if (i + k >= s.size()) {
        return i;  // incomplete: wait for the next packet
      }
      const auto d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xC0) != 0x80) {
        *bad_at = i;
        return std::string_view::npos;
      }
      cp = (cp << 6) | (d & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      *bad_at = i;
      return std::string_view::npos;
    }
    i += n;
  }
  return i;
}

class TextChunkerNode final : public NodeWithParams<TextChunkerParams> {
 public:
  static constexpr std::string_view kKind = "core::text_chunker";
  static constexpr std::string_view kSummary =
      "Splits streamed text into sentence, clause or word-group chunks (for streaming TTS).";
  static constexpr std::string_view kCategory = "core";
  static std::vector<InputPinSpec> inputs() {
    return {{"in", {PacketType::text(), PacketType::binary()}}};
  }
  static std::vector<OutputPinSpec> outputs() { return {{"out", PacketType::text()}}; }
  static std::size_t max_packet_bytes(const Params& /*p*/) { return 64 * 1024; }

  using NodeWithParams::NodeWithParams;

  Status process(NodeContext& ctx, const PacketView& packet) override {
    if (packet.header.kind != PacketKind::kText && packet.header.kind != PacketKind::kBinary) {
      return Status(ErrorCode::kInvalidArgument,
                    "expected Text or Binary, got " +
                        std::string(packet_kind_name(packet.header.kind)));
    }
    pts_ = packet.header.pts_us;
    partial_.append(reinterpret_cast<const char*>(packet.data.data()), packet.data.size());
    std::size_t bad_at = 0;
    const std::size_t valid = valid_utf8_prefix(partial_, &bad_at);
    if (valid == std::string_view::npos) {
      return Status(ErrorCode::kCorruptMedia,
                    "invalid UTF-8 at byte " +
                        std::to_string(bytes_in_ + bad_at - (partial_.size() - packet.data.size())) +
                        " of the input");
    }
    buffer_.append(partial_, 0, valid);
    partial_.erase(0, valid);
    bytes_in_ += packet.data.size();
    return extract(ctx, /*final=*/false);
  }

  Status finish(NodeContext& ctx) override {
    if (!partial_.empty()) {
      return Status(ErrorCode::kCorruptMedia, "the input ends inside a UTF-8 character");
    }
    return extract(ctx, /*final=*/true);
  }

 private:
  Status extract(NodeContext& ctx, bool final) {
    const bool words = params().split_mode == "words";
    while (true) {
      const std::size_t end = words ? word_chunk_end() : boundary_chunk_end();
      if (end == std::string::npos) {
        break;
      }
      SKIT_RETURN_IF_ERROR(emit(ctx, std::string_view(buffer_).substr(0, end)));
      buffer_.erase(0, end);
    }
    if (final) {
      SKIT_RETURN_IF_ERROR(emit(ctx, buffer_));
      buffer_.clear();
    } else if (buffer_.size() > kMaxBuffered) {
      // No boundary in a long run of text: send it rather than buffer without bound.
      const std::size_t cut = last_space_before(kMaxBuffered);
      SKIT_RETURN_IF_ERROR(emit(ctx, std::string_view(buffer_).substr(0, cut)));
      buffer_.erase(0, cut);
    }
    return Status::ok();
  }

  /// Byte length of the first boundary chunk of at least min_length characters, or npos.
  [[nodiscard]] std::size_t boundary_chunk_end() const {
    const bool clauses = params().split_mode == "clauses";
    const std::string_view b = buffer_;
    for (std::size_t i = 0; i < b.size(); ++i) {
      const std::size_t end = boundary_at(b, i, clauses);
      if (end == std::string::npos) {
        continue;
      }
      if (char_count(trim(b.substr(0, end))) >= static_cast<std::size_t>(params().min_length)) {
        return end;
      }
      i = end - 1;
    }
    return std::string::npos;
  }

  /// If a boundary starts at byte i, the byte length of the chunk it ends; else npos.
  static std::size_t boundary_at(std::string_view b, std::size_t i, bool clauses) {
    static constexpr std::array<std::string_view, 3> kCjkSentence = {"。", "！", "？"};
    static constexpr std::array<std::string_view, 3> kCjkClause = {"，", "；", "："};
    static constexpr std::array<std::string_view, 3> kDashes = {" - ", " \xE2\x80\x93 ", " \xE2\x80\x94 "};
    for (auto m : kCjkSentence) {
      if (b.substr(i, m.size()) == m) {
        return i + m.size();
      }
    }
    if (clauses) {
      for (auto m : kCjkClause) {
        if (b.substr(i, m.size()) == m) {
          return i + m.size();
        }
      }
      for (auto m : kDashes) {
        if (b.substr(i, m.size()) == m) {
          return i + m.size() - 1;  // the dash ends the clause; the space starts the next
        }
      }
    }
    std::size_t j = i;
    const char c = b[i];
    if (c == '.' || c == '!' || c == '?') {
      j = i + 1;
    } else if (b.substr(i, 3) == "\xE2\x80\xA6") {  // …
      j = i + 3;
    } else if (clauses && (c == ',' || c == ';' || c == ':')) {
      j = i + 1;
    } else {
      return std::string::npos;
    }
    // Runs of punctuation ("?!", "...") and closing quotes or brackets stay with the chunk.
    while (j < b.size()) {
      const char d = b[j];
      if (d == '.' || d == '!' || d == '?' || d == '"' || d == '\'' || d == ')' || d == ']') {
        ++j;
      } else if (b.substr(j, 3) == "\xE2\x80\x9D" || b.substr(j, 3) == "\xE2\x80\x99") {  // ” ’
        j += 3;
      } else {
        break;
      }
    }
    return j < b.size() && is_space(b[j]) ? j : std::string::npos;
  }

  /// Byte length of the first chunk_words complete words (each followed by whitespace).
  [[nodiscard]] std::size_t word_chunk_end() const {
    const std::string_view b = buffer_;
    std::int64_t words = 0;
    bool in_word = false;
    for (std::size_t i = 0; i < b.size(); ++i) {
      if (is_space(b[i])) {
        if (in_word && ++words == params().chunk_words) {
          return i;
        }
        in_word = false;
      } else {
        in_word = true;
      }
    }
    return std::string::npos;
  }

  [[nodiscard]] std::size_t last_space_before(std::size_t limit) const {
    for (std::size_t i = limit; i > 0; --i) {
      if (is_space(buffer_[i - 1])) {
        return i;
      }
    }
    std::size_t i = limit;  // no space at all: cut on a character boundary
    while (i > 0 && (static_cast<unsigned char>(buffer_[i]) & 0xC0) == 0x80) {
      --i;
    }
    return i;
  }

  Status emit(NodeContext& ctx, std::string_view chunk) {
    chunk = trim(chunk);
    if (chunk.empty()) {
      return Status::ok();
    }
    auto& out = ctx.output(0);
    while (!chunk.empty()) {
      std::size_t n = std::min(chunk.size(), out.max_packet_bytes());
      while (n < chunk.size() && n > 0 && (static_cast<unsigned char>(chunk[n]) & 0xC0) == 0x80) {
        --n;  // never split a character
      }
      SKIT_RETURN_IF_ERROR(out.write(std::as_bytes(std::span<const char>(chunk.data(), n)),
                                     PacketHeader{.kind = PacketKind::kText, .pts_us = pts_}));
      chunk.remove_prefix(n);
    }
    return Status::ok();
  }

  static constexpr std::size_t kMaxBuffered = 32 * 1024;
  std::string buffer_;   // valid UTF-8 not yet emitted
  std::string partial_;  // bytes of an incomplete UTF-8 sequence
  std::uint64_t bytes_in_ = 0;
  std::int64_t pts_ = -1;
};
SKIT_REGISTER_NODE(TextChunkerNode);

}  // namespace
}  // namespace skit::nodes

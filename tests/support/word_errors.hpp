// SPDX-License-Identifier: MPL-2.0
// Word error rate for the speech tests: case-folded words (letters, digits, apostrophes) and
// the edit distance between the reference and what was heard.
#pragma once

#include <algorithm>
#include <cctype>
#include <string>
#include <vector>

namespace skit::testing {

/// Word error rate of `hypothesis` against `reference` (lower-cased words, punctuation other
/// than apostrophes dropped): Levenshtein distance over words / reference words.
inline std::vector<std::string> wer_words(const std::string& s) {
  std::vector<std::string> words;
  std::string w;
  for (char ch : s) {
    unsigned char c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || c == '\'') {
      w += static_cast<char>(std::tolower(c));
    } else if (!w.empty()) {
      words.push_back(w);
      w.clear();
    }
  }
  if (!w.empty()) words.push_back(w);
  return words;
}
struct WordErrors {
  size_t errors = 0;
  size_t reference_words = 0;
  double rate() const { return reference_words == 0 ? 0.0 : double(errors) / reference_words; }
};
inline WordErrors word_errors(const std::string& reference, const std::string& hypothesis) {
  auto r = wer_words(reference), h = wer_words(hypothesis);
  std::vector<size_t> prev(h.size() + 1), cur(h.size() + 1);
  for (size_t j = 0; j <= h.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= r.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= h.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r[i - 1] == h[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return {prev[h.size()], r.size()};
}

}  // namespace skit::testing

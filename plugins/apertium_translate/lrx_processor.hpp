// SPDX-License-Identifier: MPL-2.0
// apertium-lex-tools 0.4 (Debian 12) ships libapertium-lex-tools.so.1 without its headers.
// This declares the few members of its LRXProcessor (lrx-proc's engine) that the plugin calls,
// matching the library's exported symbols. The object's data is opaque: it gets a buffer
// much larger than the library's class so the library's constructor has room for its fields.
#pragma once

#include <cstdio>
#include <lttoolbox/input_file.h>
#include <unicode/ustdio.h>

class LRXProcessor {
 public:
  LRXProcessor();
  ~LRXProcessor();
  LRXProcessor(const LRXProcessor&) = delete;
  LRXProcessor& operator=(const LRXProcessor&) = delete;
  void load(FILE* input);
  void init();
  void process(InputFile& input, UFILE* output);
  void setNullFlush(bool value);

 private:
  alignas(64) unsigned char opaque_[64 * 1024];
};

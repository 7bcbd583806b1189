/* SPDX-License-Identifier: MPL-2.0
 *
 * The StreamKit native plugin C ABI, version 2, as skit hosts it.
 *
 * A plugin is a shared library exporting one function, streamkit_native_plugin_api(), that
 * returns a table of entry points with static lifetime. skit loads it only inside a sandboxed
 * worker process (never in the server), checks `version`, reads the metadata (pins, a JSON
 * Schema for params, categories) and drives one instance per pipeline node.
 *
 * Calling convention: the host calls process_packet() with seven arguments (output callback
 * and its user data, then telemetry callback and its user data) and flush() with five. A
 * plugin compiled against a declaration without the telemetry pair still works: on the C
 * calling conventions of x86-64 and arm64 the extra trailing arguments are simply unused.
 *
 * Ownership: every pointer the host passes is borrowed for the duration of the call; every
 * pointer a plugin passes back (metadata, error messages, packets given to a callback) must
 * stay valid until the call that produced it returns (metadata: for the library's lifetime).
 */
#ifndef STREAMKIT_PLUGIN_H
#define STREAMKIT_PLUGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define STREAMKIT_NATIVE_PLUGIN_API_VERSION 2u
#define STREAMKIT_NATIVE_PLUGIN_ENTRY_SYMBOL "streamkit_native_plugin_api"

/* Packet kinds on the wire. */
typedef enum CPacketType {
  CPacketType_RawAudio = 0,      /* data: const CAudioFrame*, len: sizeof(CAudioFrame) */
  CPacketType_OpusAudio = 1,     /* data: encoded bytes */
  CPacketType_Text = 2,          /* data: UTF-8 bytes (not NUL-terminated), len: bytes */
  CPacketType_Transcription = 3, /* data: UTF-8 JSON {text, language?, segments[]}, len: bytes */
  CPacketType_Custom = 4,        /* data: const CCustomPacket*, len: sizeof(CCustomPacket) */
  CPacketType_Binary = 5,        /* data: bytes */
  CPacketType_Any = 6,           /* pin types only */
  CPacketType_Passthrough = 7    /* output pin types only */
} CPacketType;

typedef enum CSampleFormat { CSampleFormat_F32 = 0, CSampleFormat_S16Le = 1 } CSampleFormat;

typedef enum CLogLevel {
  CLogLevel_Trace = 0,
  CLogLevel_Debug = 1,
  CLogLevel_Info = 2,
  CLogLevel_Warn = 3,
  CLogLevel_Error = 4
} CLogLevel;

typedef enum CCustomEncoding { CCustomEncoding_Json = 0 } CCustomEncoding;

/* success == false carries a message (borrowed; may be NULL). */
typedef struct CResult {
  bool success;
  const char* error_message;
} CResult;

/* A pin's audio format; 0 in a field means "any". */
typedef struct CAudioFormat {
  uint32_t sample_rate;
  uint16_t channels;
  CSampleFormat sample_format;
} CAudioFormat;

typedef struct CPacketTypeInfo {
  CPacketType type_discriminant;
  const CAudioFormat* audio_format; /* RawAudio: the format, or NULL for any */
  const char* custom_type_id;       /* Custom: the type id, or NULL */
} CPacketTypeInfo;

typedef struct CInputPin {
  const char* name;
  const CPacketTypeInfo* accepts_types;
  size_t accepts_types_count;
} CInputPin;

typedef struct COutputPin {
  const char* name;
  CPacketTypeInfo produces_type;
} COutputPin;

typedef struct CNodeMetadata {
  const char* kind;        /* registered as plugin::native::<kind> */
  const char* description; /* may be NULL */
  const CInputPin* inputs;
  size_t inputs_count;
  const COutputPin* outputs;
  size_t outputs_count;
  const char* param_schema; /* a JSON Schema object for the params, or NULL */
  const char* const* categories;
  size_t categories_count;
} CNodeMetadata;

typedef struct CPacketMetadata {
  uint64_t timestamp_us;
  bool has_timestamp_us;
  uint64_t duration_us;
  bool has_duration_us;
  uint64_t sequence;
  bool has_sequence;
} CPacketMetadata;

/* Interleaved f32 samples; sample_count counts every sample of every channel. */
typedef struct CAudioFrame {
  uint32_t sample_rate;
  uint16_t channels;
  const float* samples;
  size_t sample_count;
} CAudioFrame;

typedef struct CCustomPacket {
  const char* type_id;
  CCustomEncoding encoding;
  const char* data_json; /* UTF-8 JSON, not NUL-terminated */
  size_t data_len;
  const CPacketMetadata* metadata; /* may be NULL */
} CCustomPacket;

typedef struct CPacket {
  CPacketType packet_type;
  const void* data;
  size_t len;
} CPacket;

typedef void* CPluginHandle;

typedef void (*CLogCallback)(CLogLevel level, const char* target, const char* message,
                             void* user_data);
/* Emits a packet on the output pin `pin_name`. Fails when the pin is unknown, the packet is
 * malformed or the pipeline is stopping; a plugin should return that failure. */
typedef CResult (*COutputCallback)(const char* pin_name, const CPacket* packet, void* user_data);
/* Emits a telemetry event (`event_type` such as "vad.speech_start", data a JSON object). */
typedef CResult (*CTelemetryCallback)(const char* event_type, const uint8_t* data_json,
                                      size_t data_len, const CPacketMetadata* metadata,
                                      void* user_data);

typedef struct CNativePluginAPI {
  uint32_t version; /* STREAMKIT_NATIVE_PLUGIN_API_VERSION */
  const CNodeMetadata* (*get_metadata)(void);
  /* params_json: the node's params as a JSON object ("{}" when none). NULL result = error. */
  CPluginHandle (*create_instance)(const char* params_json, CLogCallback log_callback,
                                   void* log_user_data);
  CResult (*process_packet)(CPluginHandle handle, const char* input_pin, const CPacket* packet,
                            COutputCallback output_callback, void* output_user_data,
                            CTelemetryCallback telemetry_callback, void* telemetry_user_data);
  /* A live params patch (JSON object of the changed fields). */
  CResult (*update_params)(CPluginHandle handle, const char* params_json);
  /* End of input: emit what is buffered. */
  CResult (*flush)(CPluginHandle handle, COutputCallback output_callback, void* output_user_data,
                   CTelemetryCallback telemetry_callback, void* telemetry_user_data);
  void (*destroy_instance)(CPluginHandle handle);
} CNativePluginAPI;

typedef const CNativePluginAPI* (*StreamkitNativePluginApiFn)(void);

#if defined(__GNUC__)
#define STREAMKIT_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define STREAMKIT_PLUGIN_EXPORT
#endif

/* Defines the exported entry point returning `api_ptr` (a pointer to a static table). */
#define STREAMKIT_PLUGIN_ENTRY(api_ptr)                                                   \
  STREAMKIT_PLUGIN_EXPORT const CNativePluginAPI* streamkit_native_plugin_api(void) {     \
    return (api_ptr);                                                                     \
  }

static inline CResult streamkit_ok(void) {
  CResult r = {true, NULL};
  return r;
}
static inline CResult streamkit_error(const char* message) {
  CResult r = {false, message};
  return r;
}

#ifdef __cplusplus
}  /* extern "C" */
#endif

#endif /* STREAMKIT_PLUGIN_H */

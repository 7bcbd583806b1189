// SPDX-License-Identifier: MPL-2.0
#include "skit/plugins/native_library.hpp"

#include <dlfcn.h>

#include <cstring>
#include <set>

namespace skit::plugins {

namespace {

constexpr std::size_t kMaxPins = 64;
constexpr std::size_t kMaxTypesPerPin = 32;
constexpr std::size_t kMaxCategories = 32;
constexpr std::size_t kMaxSchemaBytes = 1 << 20;

Status bad(const std::string& file, const std::string& what) {
  return Status(ErrorCode::kInvalidArgument, "plugin " + file + ": " + what);
}

// A C string from the plugin, bounded (a missing terminator is a broken plugin, not a hang).
Result<std::string> text(const char* s, const std::string& file, const std::string& what,
                         std::size_t max = 4096) {
  if (s == nullptr) {
    return bad(file, what + " is missing (NULL)");
  }
  const std::size_t n = strnlen(s, max + 1);
  if (n > max) {
    return bad(file, what + " is longer than " + std::to_string(max) + " bytes");
  }
  return std::string(s, n);
}

bool valid_name(const std::string& s) {
  if (s.empty() || s.size() > 64) {
    return false;
  }
  for (const char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-';
    if (!ok) {
      return false;
    }
  }
  return true;
}

Result<Json> type_json(const CPacketTypeInfo& t, const std::string& file, const std::string& where,
                       bool output) {
  Json j;
  switch (t.type_discriminant) {
    case CPacketType_RawAudio: {
      j["type"] = "RawAudio";
      if (t.audio_format != nullptr) {
        const CAudioFormat& f = *t.audio_format;
        if (f.sample_rate > 768000 || f.channels > 64) {
          return bad(file, where + " declares an impossible audio format (" +
                               std::to_string(f.sample_rate) + " Hz, " +
                               std::to_string(f.channels) + " channels)");
        }
        if (f.sample_format != CSampleFormat_F32) {
          return bad(file, where + " declares s16 audio; skit exchanges f32 samples");
        }
        j["sample_rate"] = f.sample_rate;
        j["channels"] = f.channels;
      }
      break;
    }
    case CPacketType_OpusAudio: j["type"] = "OpusAudio"; break;
    case CPacketType_Text: j["type"] = "Text"; break;
    case CPacketType_Transcription: j["type"] = "Transcription"; break;
    case CPacketType_Custom: {
      j["type"] = "Custom";
      if (t.custom_type_id != nullptr) {
        auto id = text(t.custom_type_id, file, where + " custom type id", 256);
        if (!id) {
          return id.status();
        }
        j["type_id"] = *id;
      }
      break;
    }
    case CPacketType_Binary: j["type"] = "Binary"; break;
    case CPacketType_Any:
      // An output whose type follows the params (StreamKit's VAD: events or audio); the pins
      // downstream check what arrives.
      j["type"] = "Any";
      break;
    case CPacketType_Passthrough:
      if (!output) {
        return bad(file, where + " accepts Passthrough (only outputs may be Passthrough)");
      }
      j["type"] = "Passthrough";
      break;
    default:
      return bad(file, where + " has an unknown packet type " +
                           std::to_string(static_cast<int>(t.type_discriminant)));
  }
  return j;
}

}  // namespace

Result<Json> read_metadata(const CNodeMetadata* m, const std::string& file) {
  if (m == nullptr) {
    return bad(file, "get_metadata() returned NULL");
  }
  Json out;
  auto kind = text(m->kind, file, "metadata kind", 64);
  if (!kind) {
    return kind.status();
  }
  if (!valid_name(*kind)) {
    return bad(file, "metadata kind '" + *kind +
                         "' must be 1-64 characters of letters, digits, '_' or '-'");
  }
  out["kind"] = *kind;
  out["description"] = "";
  if (m->description != nullptr) {
    auto d = text(m->description, file, "description", 4096);
    if (!d) {
      return d.status();
    }
    out["description"] = *d;
  }
  if (m->inputs_count > kMaxPins || m->outputs_count > kMaxPins) {
    return bad(file, "declares more than " + std::to_string(kMaxPins) + " pins");
  }
  if ((m->inputs_count > 0 && m->inputs == nullptr) ||
      (m->outputs_count > 0 && m->outputs == nullptr)) {
    return bad(file, "declares pins but their array is NULL");
  }
  std::set<std::string> names;
  out["inputs"] = Json::array();
  for (std::size_t i = 0; i < m->inputs_count; ++i) {
    const CInputPin& p = m->inputs[i];
    auto name = text(p.name, file, "input pin " + std::to_string(i) + " name", 64);
    if (!name) {
      return name.status();
    }
    if (!valid_name(*name) || !names.insert("in:" + *name).second) {
      return bad(file, "input pin name '" + *name + "' is invalid or repeated");
    }
    if (p.accepts_types_count == 0 || p.accepts_types_count > kMaxTypesPerPin ||
        p.accepts_types == nullptr) {
      return bad(file, "input pin '" + *name + "' must accept 1 to " +
                           std::to_string(kMaxTypesPerPin) + " packet types");
    }
    Json types = Json::array();
    for (std::size_t t = 0; t < p.accepts_types_count; ++t) {
      auto type = type_json(p.accepts_types[t], file, "input pin '" + *name + "'", false);
      if (!type) {
        return type.status();
      }
      types.push_back(*type);
    }
    out["inputs"].push_back({{"name", *name}, {"accepts_types", types}});
  }
  out["outputs"] = Json::array();
  for (std::size_t i = 0; i < m->outputs_count; ++i) {
    const COutputPin& p = m->outputs[i];
    auto name = text(p.name, file, "output pin " + std::to_string(i) + " name", 64);
    if (!name) {
      return name.status();
    }
    if (!valid_name(*name) || !names.insert("out:" + *name).second) {
      return bad(file, "output pin name '" + *name + "' is invalid or repeated");
    }
    auto type = type_json(p.produces_type, file, "output pin '" + *name + "'", true);
    if (!type) {
      return type.status();
    }
    out["outputs"].push_back({{"name", *name}, {"produces_type", *type}});
  }
  if (m->inputs_count == 0 && m->outputs_count == 0) {
    return bad(file, "declares no pins");
  }
  if (m->inputs_count == 0) {
    // ABI v2 has no source entry point (v3 adds tick()): a plugin without inputs never runs.
    return bad(file, "declares no input pin; source plugins need ABI v3, which skit does not host");
  }
  out["param_schema"] = Json::object();
  if (m->param_schema != nullptr) {
    auto schema = text(m->param_schema, file, "param_schema", kMaxSchemaBytes);
    if (!schema) {
      return schema.status();
    }
    Json parsed = Json::parse(*schema, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_discarded() || !parsed.is_object()) {
      return bad(file, "param_schema is not a JSON object");
    }
    out["param_schema"] = std::move(parsed);
  }
  out["categories"] = Json::array();
  if (m->categories_count > kMaxCategories ||
      (m->categories_count > 0 && m->categories == nullptr)) {
    return bad(file, "categories are malformed");
  }
  for (std::size_t i = 0; i < m->categories_count; ++i) {
    auto c = text(m->categories[i], file, "category " + std::to_string(i), 128);
    if (!c) {
      return c.status();
    }
    out["categories"].push_back(*c);
  }
  return out;
}

void NativeLibrary::Closer::operator()(void* handle) const {
  if (handle != nullptr) {
    ::dlclose(handle);
  }
}

NativeLibrary::~NativeLibrary() = default;

Result<NativeLibrary> NativeLibrary::open(const std::string& path) {
  ::dlerror();
  void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* why = ::dlerror();
    return bad(path, std::string("cannot be loaded: ") + (why != nullptr ? why : "unknown error"));
  }
  NativeLibrary lib;
  lib.handle_.reset(handle);
  void* entry = ::dlsym(handle, STREAMKIT_NATIVE_PLUGIN_ENTRY_SYMBOL);
  if (entry == nullptr) {
    return bad(path, std::string("does not export ") + STREAMKIT_NATIVE_PLUGIN_ENTRY_SYMBOL +
                         " (not a StreamKit native plugin)");
  }
  StreamkitNativePluginApiFn fn = nullptr;
  static_assert(sizeof(fn) == sizeof(entry));
  std::memcpy(&fn, &entry, sizeof(fn));
  lib.api_ = fn();
  if (lib.api_ == nullptr) {
    return bad(path, std::string(STREAMKIT_NATIVE_PLUGIN_ENTRY_SYMBOL) + "() returned NULL");
  }
  if (lib.api_->version != STREAMKIT_NATIVE_PLUGIN_API_VERSION) {
    return bad(path, "speaks plugin API version " + std::to_string(lib.api_->version) +
                         "; skit hosts version " +
                         std::to_string(STREAMKIT_NATIVE_PLUGIN_API_VERSION));
  }
  const CNativePluginAPI& a = *lib.api_;
  const std::pair<const void*, const char*> required[] = {
      {reinterpret_cast<const void*>(a.get_metadata), "get_metadata"},
      {reinterpret_cast<const void*>(a.create_instance), "create_instance"},
      {reinterpret_cast<const void*>(a.process_packet), "process_packet"},
      {reinterpret_cast<const void*>(a.destroy_instance), "destroy_instance"},
  };
  for (const auto& [ptr, name] : required) {
    if (ptr == nullptr) {
      return bad(path, std::string("API table has no ") + name);
    }
  }
  auto metadata = read_metadata(a.get_metadata(), path);
  if (!metadata) {
    return metadata.status();
  }
  lib.metadata_ = std::move(metadata).value();
  return lib;
}

}  // namespace skit::plugins

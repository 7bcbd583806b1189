// SPDX-License-Identifier: MPL-2.0
#include "skit/ipc/segment.hpp"

#include <dirent.h>
#include <signal.h>

#include <boost/interprocess/mapped_region.hpp>
#include <boost/interprocess/shared_memory_object.hpp>
#include <cerrno>
#include <cstring>

namespace skit::ipc {

namespace bip = boost::interprocess;

struct SharedSegment::Impl {
  bip::shared_memory_object object;
  bip::mapped_region region;
};

SharedSegment::SharedSegment(std::string name, std::unique_ptr<Impl> impl, bool owner)
    : name_(std::move(name)), impl_(std::move(impl)), owner_(owner) {}

SharedSegment::SharedSegment(SharedSegment&& other) noexcept
    : name_(std::move(other.name_)), impl_(std::move(other.impl_)), owner_(other.owner_) {
  other.owner_ = false;
}

SharedSegment& SharedSegment::operator=(SharedSegment&& other) noexcept {
  if (this != &other) {
    unlink();
    name_ = std::move(other.name_);
    impl_ = std::move(other.impl_);
    owner_ = other.owner_;
    other.owner_ = false;
  }
  return *this;
}

SharedSegment::~SharedSegment() { unlink(); }

void SharedSegment::unlink() {
  if (owner_) {
    bip::shared_memory_object::remove(name_.c_str());
    owner_ = false;
  }
}

void* SharedSegment::data() const { return impl_ ? impl_->region.get_address() : nullptr; }
std::size_t SharedSegment::size() const { return impl_ ? impl_->region.get_size() : 0; }

Result<SharedSegment> SharedSegment::create(const std::string& name, std::size_t bytes) {
  try {
    auto impl = std::make_unique<Impl>();
    impl->object = bip::shared_memory_object(bip::create_only, name.c_str(), bip::read_write);
    // From here on the name exists; the segment object owns it even if mapping fails.
    SharedSegment segment(name, nullptr, true);
    impl->object.truncate(static_cast<bip::offset_t>(bytes));
    impl->region = bip::mapped_region(impl->object, bip::read_write);
    segment.impl_ = std::move(impl);
    return segment;
  } catch (const bip::interprocess_exception& e) {
    return Status(ErrorCode::kResourceExhausted,
                  "cannot create shared memory '" + name + "' (" + std::to_string(bytes) +
                      " bytes): " + e.what());
  }
}

Result<SharedSegment> SharedSegment::open(const std::string& name) {
  try {
    auto impl = std::make_unique<Impl>();
    impl->object = bip::shared_memory_object(bip::open_only, name.c_str(), bip::read_write);
    impl->region = bip::mapped_region(impl->object, bip::read_write);
    return SharedSegment(name, std::move(impl), false);
  } catch (const bip::interprocess_exception& e) {
    return Status(ErrorCode::kNotFound,
                  "cannot open shared memory '" + name + "': " + e.what());
  }
}

std::vector<std::string> list_segments(const std::string& prefix) {
  std::vector<std::string> out;
  DIR* dir = ::opendir("/dev/shm");
  if (dir == nullptr) {
    return out;
  }
  while (const dirent* entry = ::readdir(dir)) {
    std::string name = entry->d_name;
    if (name.rfind(prefix, 0) == 0) {
      out.push_back(std::move(name));
    }
  }
  ::closedir(dir);
  return out;
}

std::size_t remove_stale_segments() {
  std::size_t removed = 0;
  for (const auto& name : list_segments("skit-")) {
    // Names are "skit-<pid>-<run>-<what>"; the pid is the supervisor that created them.
    const char* digits = name.c_str() + 5;
    char* end = nullptr;
    const long pid = std::strtol(digits, &end, 10);
    if (end == digits || *end != '-' || pid <= 0) {
      continue;
    }
    if (::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM) {
      continue;  // still alive
    }
    if (bip::shared_memory_object::remove(name.c_str())) {
      ++removed;
    }
  }
  return removed;
}

}  // namespace skit::ipc

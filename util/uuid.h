// Random (version 4) UUIDs for messageIds the collector fills in. Thread-safe: each thread
// has its own generator, seeded once from std::random_device.
#pragma once

#include <string>

namespace cartwatch::util {

// A lower-case RFC 4122 version-4 UUID, e.g. "3b241101-e2bb-4255-8caf-4136c566a962".
std::string NewUuidV4();

}  // namespace cartwatch::util

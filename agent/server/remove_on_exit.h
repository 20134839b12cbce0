#pragma once
// A scratch folder removed when the work using it ends, however it ends.
#include <filesystem>
#include <system_error>

namespace sandci::agent::server {

struct RemoveOnExit {
  std::filesystem::path path;  // may be changed while in use; empty: nothing to remove
  ~RemoveOnExit() {
    std::error_code ec;
    if (!path.empty()) std::filesystem::remove_all(path, ec);
  }
};

}  // namespace sandci::agent::server

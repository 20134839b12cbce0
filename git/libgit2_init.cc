#include "git/libgit2_init.h"

#include <git2.h>

#include <mutex>

#include "git/net_stream.h"

namespace sandci::git {

void ensure_libgit2() {
  static std::once_flag once;
  std::call_once(once, [] {
    git_libgit2_init();  // never shut down: other threads may still use it at exit
    register_net_stream();
  });
}

}  // namespace sandci::git

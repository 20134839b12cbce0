#pragma once
// libgit2 is initialised once per process, on first use, together with the socket
// stream that gives network operations their timeouts (see net_stream.h).

namespace sandci::git {

void ensure_libgit2();

}  // namespace sandci::git

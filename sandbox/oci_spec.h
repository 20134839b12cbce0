#pragma once
// Builds the OCI documents runsc reads: the bundle's config.json (one per
// sandbox) and the process.json of each exec. Pure functions, unit-tested.
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "sandbox/sandbox.h"

namespace sandci::sandbox {

// What a job's root process may do: enough to install packages and manage files
// as root, nothing that reaches the kernel's administrative interfaces (no
// CAP_SYS_ADMIN: mount; no CAP_SYS_MODULE; no CAP_NET_RAW: raw sockets; no
// CAP_SYS_PTRACE; no CAP_MKNOD).
const std::vector<std::string>& job_capabilities();

// The sandbox's init process; prints "ready", then sleeps and reaps orphans
// (needs sh and sleep in the image).
const std::vector<std::string>& init_command();

// `cgroups_path` is absolute within each cgroup hierarchy, e.g. "/sandci-<id>".
nlohmann::json make_config(const SandboxSpec& spec, const std::string& cgroups_path);

// env = spec.env overridden by request.env (same NAME), PATH defaulted.
nlohmann::json make_process(const SandboxSpec& spec, const ExecRequest& request);

std::vector<std::string> merge_env(const std::vector<std::string>& base,
                                   const std::vector<std::string>& overrides);

}  // namespace sandci::sandbox

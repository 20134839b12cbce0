#include "git/fetcher.h"

#include <git2.h>

#include <cstdint>
#include <optional>
#include <vector>

#include "git/git_handles.h"
#include "git/known_hosts.h"
#include "git/net_stream.h"
#include "git/url.h"

namespace sandci::git {
namespace {

using Clock = std::chrono::steady_clock;

struct FetchContext {
  const FetchOptions* options = nullptr;
  Credentials credentials;  // options' or the URL's
  int port = 0;
  Clock::time_point deadline;
  Clock::time_point last_report;
  bool reported_objects = false;
  FetchProgress progress;
  int credential_tries = 0;
  bool auth_rejected = false;
  bool no_credentials = false;
  bool timed_out = false;
  bool cancelled = false;
  std::optional<HostKeyMatch> host_key_problem;
  std::optional<KnownHosts> known_hosts;  // loaded on first SSH connection
};

bool cancelled(FetchContext& ctx) {
  if (!ctx.options->cancel || !ctx.options->cancel->load()) return false;
  ctx.cancelled = true;
  git_error_set_str(GIT_ERROR_NET, "the fetch was cancelled");
  return true;
}

// Checked from every callback libgit2 makes during a fetch: the deadline, and the
// caller's cancel flag.
bool past_deadline(FetchContext& ctx) {
  if (cancelled(ctx)) return true;
  if (Clock::now() < ctx.deadline) return false;
  ctx.timed_out = true;
  git_error_set_str(GIT_ERROR_NET, "the fetch ran past its time limit");
  return true;
}

// libgit2 calls this again after each rejected secret: the second call for a secret
// means the first was refused, and retrying would only lock the account.
int on_credentials(git_credential** out, const char* /*url*/, const char* username_from_url,
                   unsigned int allowed, void* payload) {
  auto& ctx = *static_cast<FetchContext*>(payload);
  if (past_deadline(ctx)) return GIT_EUSER;
  const auto& creds = ctx.credentials;
  if (allowed & GIT_CREDENTIAL_USERNAME) {
    return git_credential_username_new(out, creds.ssh ? creds.ssh->username.c_str() : "git");
  }
  bool can_key = (allowed & GIT_CREDENTIAL_SSH_KEY) && creds.ssh;
  bool can_token = (allowed & GIT_CREDENTIAL_USERPASS_PLAINTEXT) && creds.https;
  if (!can_key && !can_token) {
    ctx.no_credentials = true;
    git_error_set_str(GIT_ERROR_NET, "the server asks for credentials and none are configured");
    return GIT_EUSER;
  }
  if (++ctx.credential_tries > 1) {
    ctx.auth_rejected = true;
    git_error_set_str(GIT_ERROR_NET, "the server rejected the credentials");
    return GIT_EUSER;
  }
  if (can_key) {
    const SshKey& key = *creds.ssh;
    const char* user = username_from_url && *username_from_url ? username_from_url
                                                               : key.username.c_str();
    std::string pub = key.public_key.string();
    return git_credential_ssh_key_new(out, user, pub.empty() ? nullptr : pub.c_str(),
                                      key.private_key.c_str(), key.passphrase.c_str());
  }
  return git_credential_userpass_plaintext_new(out, creds.https->username.c_str(),
                                               creds.https->token.c_str());
}

int on_certificate(git_cert* cert, int /*valid*/, const char* host, void* payload) {
  auto& ctx = *static_cast<FetchContext*>(payload);
  if (cert->cert_type != GIT_CERT_HOSTKEY_LIBSSH2) return GIT_PASSTHROUGH;  // TLS: libgit2 checks
  auto* key = reinterpret_cast<git_cert_hostkey*>(cert);
  if (!ctx.known_hosts) ctx.known_hosts = KnownHosts::load(ctx.credentials.known_hosts);
  HostKeyMatch match = HostKeyMatch::kUnknownHost;
  if (key->type & GIT_CERT_SSH_RAW) {
    match = ctx.known_hosts->check(host, ctx.port, std::string_view(key->hostkey, key->hostkey_len));
  }
  if (match == HostKeyMatch::kMatch) return 0;
  ctx.host_key_problem = match;
  const char* why = match == HostKeyMatch::kMismatch ? "differs from the one in known_hosts"
                    : match == HostKeyMatch::kRevoked ? "is revoked in known_hosts"
                                                      : "is not in known_hosts";
  git_error_set(GIT_ERROR_SSH, "the host key of %s %s", host, why);
  return GIT_ECERTIFICATE;
}

int on_transfer(const git_indexer_progress* stats, void* payload) {
  auto& ctx = *static_cast<FetchContext*>(payload);
  ctx.progress.received_objects = stats->received_objects;
  ctx.progress.total_objects = stats->total_objects;
  ctx.progress.indexed_objects = stats->indexed_objects;
  ctx.progress.received_bytes = stats->received_bytes;
  if (past_deadline(ctx)) return GIT_EUSER;
  auto now = Clock::now();
  // The first objects are reported at once, then at most every 100 ms.
  bool first_objects = !ctx.reported_objects && stats->received_objects > 0;
  if (ctx.options->on_progress &&
      (first_objects || now - ctx.last_report >= std::chrono::milliseconds(100))) {
    ctx.last_report = now;
    ctx.reported_objects = ctx.reported_objects || stats->received_objects > 0;
    ctx.options->on_progress(ctx.progress);
  }
  return 0;
}

// The local transport builds (and delta-compresses) its pack before any object
// is received: without this, a cancel or the deadline would wait for all of it.
int on_pack_progress(int /*stage*/, std::uint32_t /*current*/, std::uint32_t /*total*/, void* payload) {
  return past_deadline(*static_cast<FetchContext*>(payload)) ? GIT_EUSER : 0;
}

int on_sideband(const char* /*text*/, int /*len*/, void* payload) {
  return past_deadline(*static_cast<FetchContext*>(payload)) ? GIT_EUSER : 0;
}

bool contains(std::string_view text, std::string_view word) {
  return text.find(word) != std::string_view::npos;
}

FetchFailure classify(int rc, const FetchContext& ctx, const NetDeadline& net,
                      std::string_view redacted_url) {
  const git_error* e = git_error_last();
  std::string raw = e && e->message ? e->message : "fetch failed (libgit2 code " + std::to_string(rc) + ")";
  auto secrets = ctx.credentials.secrets();
  std::string message = redact_secrets(raw, secrets);
  int klass = e ? e->klass : GIT_ERROR_NONE;
  FetchFailure f{{ErrorKind::kOther, message, std::string(redacted_url)}, false};
  if (ctx.cancelled) {
    f.error.kind = ErrorKind::kCancelled;
  } else if (ctx.timed_out || net.timed_out()) {
    f.error.kind = ErrorKind::kTimeout;
  } else if (ctx.auth_rejected || ctx.no_credentials || rc == GIT_EAUTH) {
    f.error.kind = ErrorKind::kAuthFailed;
  } else if (ctx.host_key_problem || rc == GIT_ECERTIFICATE) {
    f.error.kind = ErrorKind::kUnknownHostKey;
  } else if (net.connect_failed()) {
    f.error.kind = ErrorKind::kUnreachable;
  } else if (contains(message, "404") || contains(message, "not found") ||
             contains(message, "not exported") || contains(message, "does not appear to be")) {
    f.error.kind = ErrorKind::kRepoNotFound;
  } else if (klass == GIT_ERROR_OS && contains(message, "No space")) {
    f.error.kind = ErrorKind::kIo;
  } else {
    f.local_damage = klass == GIT_ERROR_ODB || klass == GIT_ERROR_REFERENCE ||
                     klass == GIT_ERROR_ZLIB || klass == GIT_ERROR_REPOSITORY ||
                     klass == GIT_ERROR_OBJECT || klass == GIT_ERROR_INDEXER ||
                     klass == GIT_ERROR_CONFIG;
  }
  return f;
}

std::vector<std::string> refspecs_for(const FetchOptions& options) {
  std::vector<std::string> specs = {"+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"};
  if (options.pull_requests) {
    specs.push_back("+refs/pull/*/head:refs/pull/*/head");
    specs.push_back("+refs/merge-requests/*/head:refs/merge-requests/*/head");
  }
  return specs;
}

// Credentials written into the URL become the token when none are configured.
Credentials effective_credentials(const RepoUrl& url, const Credentials& configured) {
  Credentials creds = configured;
  bool http = url.scheme == "http" || url.scheme == "https";
  if (http && !creds.https && (!url.user.empty() || !url.password.empty())) {
    creds.https = HttpsToken{url.user, url.password};
  }
  return creds;
}

}  // namespace

std::expected<FetchOutcome, FetchFailure> fetch_into(const std::filesystem::path& bare_repo,
                                                     std::string_view url,
                                                     const FetchOptions& options) {
  std::string redacted = redact_url(url);
  auto parsed = parse_repo_url(url);
  if (!parsed) {
    return std::unexpected(FetchFailure{{ErrorKind::kInvalidArgument, "malformed repository URL", redacted}});
  }
  FetchContext ctx;
  ctx.options = &options;
  ctx.credentials = effective_credentials(*parsed, options.credentials);
  ctx.port = parsed->port;
  auto start = Clock::now();
  ctx.deadline = start + options.timeout;
  ctx.last_report = start;

  if (options.cancel && options.cancel->load())
    return std::unexpected(FetchFailure{{ErrorKind::kCancelled, "the fetch was cancelled", redacted}});
  git_repository* raw_repo = nullptr;
  if (git_repository_open_bare(&raw_repo, bare_repo.c_str()) != 0) {
    return std::unexpected(FetchFailure{
        {ErrorKind::kOther, std::string("cannot open mirror: ") + last_git_message(), redacted}, true});
  }
  RepoPtr repo(raw_repo);
  git_remote* raw_remote = nullptr;
  if (git_remote_create_anonymous(&raw_remote, repo.get(), redacted.c_str()) != 0) {
    return std::unexpected(FetchFailure{{ErrorKind::kInvalidArgument, last_git_message(), redacted}});
  }
  RemotePtr remote(raw_remote);

  auto specs = refspecs_for(options);
  std::vector<char*> spec_ptrs;
  for (auto& s : specs) spec_ptrs.push_back(s.data());
  git_strarray refspecs{spec_ptrs.data(), spec_ptrs.size()};

  git_fetch_options opts = GIT_FETCH_OPTIONS_INIT;
  opts.prune = GIT_FETCH_PRUNE;
  opts.update_fetchhead = 0;
  opts.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;  // the tags refspec takes them all
  opts.callbacks.credentials = on_credentials;
  opts.callbacks.certificate_check = on_certificate;
  opts.callbacks.transfer_progress = on_transfer;
  opts.callbacks.sideband_progress = on_sideband;
  opts.callbacks.pack_progress = on_pack_progress;
  opts.callbacks.payload = &ctx;

  NetDeadline net({ctx.deadline, options.connect_timeout, options.idle_timeout});
  int rc = git_remote_fetch(remote.get(), &refspecs, &opts, "sandci fetch");
  if (rc != 0) return std::unexpected(classify(rc, ctx, net, redacted));
  if (options.on_progress) options.on_progress(ctx.progress);
  return FetchOutcome{ctx.progress, ctx.credential_tries};
}

}  // namespace sandci::git

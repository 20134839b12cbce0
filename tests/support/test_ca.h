#pragma once
// A throwaway certificate authority for tests that speak HTTPS on 127.0.0.1: a CA
// certificate and server certificates it signs, written as PEM files. Made with the
// OpenSSL API (libcrypto), so tests need no `openssl` command. Keys are EC P-256
// (fast to make); certificates are valid from an hour ago for 30 days.
//
//   auto files = sandci::testing::write_test_ca(dir);  // ca.pem, server.pem, server.key
//   HttpServerOptions{.tls = TlsFiles{files.server_cert, files.server_key}};
//   HttpClient{{.ca_file = files.ca_cert}};
#include <arpa/inet.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace sandci::testing {

struct TestCaFiles {
  std::filesystem::path ca_cert;      // ca.pem: trust this
  std::filesystem::path server_cert;  // server.pem
  std::filesystem::path server_key;   // server.key
};

class TestCa {
 public:
  // Makes the CA's key and self-signed certificate (CN "sandci test CA").
  TestCa() : key_(make_key()), cert_(new_cert("sandci test CA", key_.get())) {
    X509_set_issuer_name(cert_.get(), X509_get_subject_name(cert_.get()));
    add_extension(cert_.get(), cert_.get(), NID_basic_constraints, "critical,CA:TRUE");
    add_extension(cert_.get(), cert_.get(), NID_key_usage, "critical,keyCertSign,cRLSign");
    add_extension(cert_.get(), cert_.get(), NID_subject_key_identifier, "hash");
    sign(cert_.get(), key_.get());
  }

  void write_ca_cert(const std::filesystem::path& file) const { write_cert(cert_.get(), file); }

  // Issues a server certificate for `names`: each an IP address (an IP SAN) or a DNS
  // name (a DNS SAN); the first is also the CN. Writes the certificate and its key.
  void issue_server_cert(const std::vector<std::string>& names, const std::filesystem::path& cert_file,
                         const std::filesystem::path& key_file) const {
    if (names.empty()) throw std::invalid_argument("test CA: a server certificate needs a name");
    Key key = make_key();
    Cert cert = new_cert(names.front(), key.get());
    X509_set_issuer_name(cert.get(), X509_get_subject_name(cert_.get()));
    add_extension(cert.get(), cert_.get(), NID_basic_constraints, "critical,CA:FALSE");
    add_extension(cert.get(), cert_.get(), NID_key_usage, "critical,digitalSignature,keyEncipherment");
    add_extension(cert.get(), cert_.get(), NID_ext_key_usage, "serverAuth");
    add_extension(cert.get(), cert_.get(), NID_subject_key_identifier, "hash");
    add_extension(cert.get(), cert_.get(), NID_authority_key_identifier, "keyid:always");
    add_extension(cert.get(), cert_.get(), NID_subject_alt_name, alt_names(names));
    sign(cert.get(), key_.get());
    write_cert(cert.get(), cert_file);
    write_key(key.get(), key_file);
  }

 private:
  using Key = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
  using Cert = std::unique_ptr<X509, decltype(&X509_free)>;

  static void check(bool ok, const char* what) {
    if (!ok) throw std::runtime_error(std::string{"test CA: "} + what + " failed");
  }

  static Key make_key() {
    Key key(EVP_EC_gen("P-256"), &EVP_PKEY_free);
    check(key != nullptr, "EC key generation");
    return key;
  }

  static Cert new_cert(const std::string& common_name, EVP_PKEY* key) {
    static long serial = 1;
    Cert cert(X509_new(), &X509_free);
    check(cert != nullptr, "X509_new");
    check(X509_set_version(cert.get(), 2) == 1, "X509_set_version");
    check(ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial++) == 1, "serial number");
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), 30L * 24 * 3600);
    check(X509_set_pubkey(cert.get(), key) == 1, "X509_set_pubkey");
    auto* name = X509_get_subject_name(cert.get());
    check(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                     reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1, 0) == 1,
          "subject name");
    return cert;
  }

  static void add_extension(X509* cert, X509* issuer, int nid, const std::string& value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
    check(ext != nullptr, "certificate extension");
    const int added = X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    check(added == 1, "X509_add_ext");
  }

  static std::string alt_names(const std::vector<std::string>& names) {
    std::string out;
    for (const auto& name : names) {
      unsigned char buf[sizeof(in6_addr)];
      const bool ip = ::inet_pton(AF_INET, name.c_str(), buf) == 1 || ::inet_pton(AF_INET6, name.c_str(), buf) == 1;
      out += (out.empty() ? "" : ",") + std::string{ip ? "IP:" : "DNS:"} + name;
    }
    return out;
  }

  static void sign(X509* cert, EVP_PKEY* key) { check(X509_sign(cert, key, EVP_sha256()) > 0, "X509_sign"); }

  static void write_cert(X509* cert, const std::filesystem::path& file) {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_file(file.c_str(), "w"), &BIO_free);
    check(bio != nullptr, "opening the certificate file");
    check(PEM_write_bio_X509(bio.get(), cert) == 1, "writing the certificate");
  }

  static void write_key(EVP_PKEY* key, const std::filesystem::path& file) {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_file(file.c_str(), "w"), &BIO_free);
    check(bio != nullptr, "opening the key file");
    check(PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) == 1, "writing the key");
  }

  Key key_;
  Cert cert_;
};

// Writes dir/ca.pem, and dir/server.pem + dir/server.key for `names` signed by it.
inline TestCaFiles write_test_ca(const std::filesystem::path& dir,
                                 const std::vector<std::string>& names = {"127.0.0.1", "localhost"}) {
  TestCaFiles files{dir / "ca.pem", dir / "server.pem", dir / "server.key"};
  TestCa ca;
  ca.write_ca_cert(files.ca_cert);
  ca.issue_server_cert(names, files.server_cert, files.server_key);
  return files;
}

}  // namespace sandci::testing

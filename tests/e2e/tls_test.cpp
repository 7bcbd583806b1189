// SPDX-License-Identifier: MPL-2.0
// server.tls end to end: the real `skit serve` with a self-signed certificate made by the
// openssl tool, reached by curl (HTTPS: the API, a oneshot round trip, the login cookie) and
// by a Beast WebSocket over TLS (the control plane); plain HTTP on the TLS port gets a 400
// that says why; a silent client does not hold up others; SIGHUP swaps the certificate for
// new connections while an open one keeps working, and a broken certificate file on reload
// keeps the one in use.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <boost/asio/ssl.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <nlohmann/json.hpp>

#include "http_client.hpp"
#include "skit_server.hpp"

namespace skit::testing {
namespace {

using nlohmann::json;
namespace ssl = net::ssl;
namespace websocket = beast::websocket;

const std::vector<std::string> kOpus128 = {"-c:a", "libopus", "-b:a", "128k"};

/// A self-signed certificate for 127.0.0.1 and localhost (its own CA), as docs/configuration.md
/// tells users to make one. Returns false when openssl failed.
bool make_certificate(const std::string& cert, const std::string& key, const std::string& name) {
  Process p({find_tool("openssl"), "req", "-x509", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj", "/CN=" + name,
             "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", key, "-out",
             cert});
  return p.wait(30s) && p.exit_code() == 0;
}

/// The SHA-256 of the certificate in a PEM file, as the server logs it ("AB:CD:...").
std::string fingerprint_of_file(const std::string& pem) {
  Process p({find_tool("openssl"), "x509", "-in", pem, "-noout", "-fingerprint", "-sha256"});
  if (!p.wait(10s) || p.exit_code() != 0) {
    return "";
  }
  const auto eq = p.out().find('=');
  std::string f = eq == std::string::npos ? "" : p.out().substr(eq + 1);
  while (!f.empty() && (f.back() == '\n' || f.back() == '\r')) {
    f.pop_back();
  }
  return f;
}

std::string config_with_tls(const std::string& cert, const std::string& key) {
  return "server:\n"
         "  log_format: json\n"
         "  grpc_listen: \"\"\n"
         "  tls: true\n"
         "  cert_path: " + cert + "\n"
         "  key_path: " + key + "\n"
         "auth:\n"
         "  tokens:\n"
         "    - {name: ci, token: \"" + kOperatorToken + "\", role: operator}\n";
}

/// A control-plane client over TLS that trusts only `ca_file`.
class WssClient {
 public:
  WssClient(int port, const std::string& ca_file)
      : ctx_(ssl::context::tls_client), ws_(ioc_, ctx_) {
    ctx_.load_verify_file(ca_file);
    ctx_.set_verify_mode(ssl::verify_peer);
    beast::error_code ec;
    beast::get_lowest_layer(ws_).connect(
        tcp::endpoint(net::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)), ec);
    if (ec) {
      error_ = "connect: " + ec.message();
      return;
    }
    ws_.next_layer().handshake(ssl::stream_base::client, ec);
    if (ec) {
      error_ = "TLS handshake: " + ec.message();
      return;
    }
    if (X509* cert = SSL_get_peer_certificate(ws_.next_layer().native_handle()); cert != nullptr) {
      unsigned char md[EVP_MAX_MD_SIZE];
      unsigned int len = 0;
      X509_digest(cert, EVP_sha256(), md, &len);
      static constexpr char kHex[] = "0123456789ABCDEF";
      for (unsigned int i = 0; i < len; ++i) {
        peer_fingerprint_ += (i > 0 ? ":" : "") + std::string{kHex[md[i] >> 4], kHex[md[i] & 15]};
      }
      X509_free(cert);
    }
    ws_.set_option(websocket::stream_base::decorator([](websocket::request_type& req) {
      req.set(http::field::authorization, "Bearer " + kOperatorToken);
    }));
    ws_.handshake("127.0.0.1:" + std::to_string(port), "/api/v1/control", ec);
    if (ec) {
      error_ = "WebSocket handshake: " + ec.message();
      return;
    }
    open_ = true;
  }

  [[nodiscard]] bool open() const { return open_; }
  [[nodiscard]] const std::string& error() const { return error_; }
  [[nodiscard]] const std::string& peer_fingerprint() const { return peer_fingerprint_; }

  /// One request and its response's payload (null if none came).
  json request(const json& payload) {
    const std::string id = std::to_string(++next_id_);
    beast::error_code ec;
    ws_.write(net::buffer(json{{"type", "request"}, {"correlation_id", id}, {"payload", payload}}.dump()), ec);
    for (int i = 0; i < 50 && !ec; ++i) {
      beast::flat_buffer buffer;
      ws_.read(buffer, ec);
      if (ec) {
        break;
      }
      const json msg = json::parse(beast::buffers_to_string(buffer.data()), nullptr, false);
      if (msg.is_object() && msg.value("correlation_id", "") == id) {
        return msg.value("payload", json());
      }
    }
    error_ = ec ? ec.message() : "no response";
    return json();
  }

 private:
  net::io_context ioc_;
  ssl::context ctx_;
  websocket::stream<beast::ssl_stream<tcp::socket>> ws_;
  bool open_ = false;
  std::string error_;
  std::string peer_fingerprint_;
  int next_id_ = 0;
};

class Tls : public ::testing::Test {
 protected:
  void SetUp() override {
    cert_ = dir_.file("server.pem");
    key_ = dir_.file("server.key");
    ASSERT_TRUE(make_certificate(cert_, key_, "skit-a"));
  }

  void TearDown() override {
    if (server_ && server_->running()) {
      EXPECT_EQ(server_->stop(), 0) << server_->log();
    }
  }

  void start() {
    server_ = std::make_unique<SkitServer>(config_with_tls(cert_, key_));
    ASSERT_TRUE(server_->up()) << server_->log();
    ASSERT_EQ(server_->url("/").rfind("https://", 0), 0u) << "the server says it speaks plain HTTP";
  }

  /// curl over HTTPS trusting only `ca`.
  Response get(const std::string& path, const std::string& ca) {
    return curl(dir_, {"--cacert", ca, "-H", "Authorization: Bearer " + kOperatorToken,
                       server_->url(path)});
  }

  TempDir dir_;
  std::string cert_;
  std::string key_;
  std::unique_ptr<SkitServer> server_;
};

TEST_F(Tls, HttpsServesTheApiAOneshotRoundTripAndASecureLoginCookie) {
  start();
  const Response health = get("/healthz", cert_);
  EXPECT_EQ(health.status, 200) << health.describe();
  EXPECT_EQ(health.curl_exit, 0) << health.error;
  const std::string fp = fingerprint_of_file(cert_);
  ASSERT_FALSE(fp.empty());
  EXPECT_NE(server_->log().find(fp), std::string::npos) << "the log names the certificate in use";

  // An upload and a streamed answer through the terminator both ways: +6 dB on a 3 s sine.
  const std::string sine = dir_.file("sine.ogg");
  ASSERT_TRUE(make_sine(sine, 1000, 0.25, 3.0, 48000, 1, kOpus128));
  const std::string pipeline = (kRepo / "samples/pipelines/oneshot/volume_boost.yml").string();
  const Response r = curl(dir_, {"--cacert", cert_, "-H", "Authorization: Bearer " + kOperatorToken,
                                 "-F", "config=@" + pipeline, "-F", "media=@" + sine,
                                 server_->url("/api/v1/process")});
  ASSERT_EQ(r.status, 200) << r.describe();
  const Decoded in = decode_f32(sine);
  const Decoded out = decode_f32(r.body_path);
  EXPECT_EQ(out.err, "");
  EXPECT_NEAR(rms_db(out.middle()) - rms_db(in.middle()), kSixDb, 0.1);

  // Over TLS the browser login cookie is Secure.
  const Response login = curl(dir_, {"--cacert", cert_, "-H", "Content-Type: application/json",
                                     "--data", json{{"token", kOperatorToken}}.dump(),
                                     server_->url("/api/v1/auth/login")});
  ASSERT_EQ(login.status, 200) << login.describe();
  ASSERT_EQ(login.set_cookies.size(), 1u) << login.raw_headers;
  EXPECT_NE(login.set_cookies[0].find("; Secure"), std::string::npos) << login.set_cookies[0];
  EXPECT_NE(login.set_cookies[0].find("HttpOnly"), std::string::npos) << login.set_cookies[0];
}

TEST_F(Tls, TheControlPlaneWorksOverWss) {
  start();
  WssClient ws(server_->port(), cert_);
  ASSERT_TRUE(ws.open()) << ws.error() << "\n" << server_->log();
  EXPECT_EQ(ws.peer_fingerprint(), fingerprint_of_file(cert_));
  const json perms = ws.request({{"action", "getpermissions"}});
  EXPECT_EQ(perms.value("action", ""), "permissions") << perms.dump() << ws.error();
  const json created = ws.request({{"action", "createsession"}, {"name", "over-tls"}});
  EXPECT_EQ(created.value("action", ""), "sessioncreated") << created.dump();
  const json listed = ws.request({{"action", "listsessions"}});
  EXPECT_NE(listed.dump().find("over-tls"), std::string::npos) << listed.dump();
}

TEST_F(Tls, PlainHttpOnTheTlsPortIsToldToUseHttpsAndASilentClientHoldsNobodyUp) {
  start();
  const std::string plain = "http://127.0.0.1:" + std::to_string(server_->port()) + "/healthz";
  const Response r = curl(dir_, {plain});
  EXPECT_EQ(r.status, 400) << r.describe();
  EXPECT_NE(r.body.find("https://"), std::string::npos) << r.body;

  // A client that opens a TCP connection and never says hello, and one that says garbage.
  net::io_context io;
  tcp::socket silent(io);
  silent.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"),
                               static_cast<unsigned short>(server_->port())));
  tcp::socket garbage(io);
  garbage.connect(silent.remote_endpoint());
  net::write(garbage, net::buffer(random_bytes(4096, 9)));
  const Response health = get("/healthz", cert_);
  EXPECT_EQ(health.status, 200) << health.describe();
  EXPECT_LT(health.seconds, 5.0) << "a silent TLS client held up another";
  // The untrusted certificate is refused by a verifying client (curl exit 60).
  const std::string other_cert = dir_.file("other.pem");
  ASSERT_TRUE(make_certificate(other_cert, dir_.file("other.key"), "someone-else"));
  EXPECT_EQ(get("/healthz", other_cert).curl_exit, 60);
}

TEST_F(Tls, SighupServesANewCertificateToNewConnectionsAndABrokenOneKeepsTheOld) {
  start();
  const std::string fp_a = fingerprint_of_file(cert_);
  WssClient before(server_->port(), cert_);
  ASSERT_TRUE(before.open()) << before.error();

  // The operator renews the certificate in place and reloads (systemctl reload skit).
  const std::string cert_b = dir_.file("b.pem");
  const std::string key_b = dir_.file("b.key");
  ASSERT_TRUE(make_certificate(cert_b, key_b, "skit-b"));
  const std::string fp_b = fingerprint_of_file(cert_b);
  ASSERT_NE(fp_a, fp_b);
  const std::string cert_a = dir_.file("a.pem");
  fs::copy_file(cert_, cert_a);
  fs::copy_file(cert_b, cert_, fs::copy_options::overwrite_existing);
  fs::copy_file(key_b, key_, fs::copy_options::overwrite_existing);
  const auto t0 = std::chrono::steady_clock::now();
  server_->signal(SIGHUP);
  ASSERT_TRUE(wait_until([&] { return server_->log().find("certificate reloaded") != std::string::npos; }, 10s))
      << server_->log();
  std::printf("[ measure  ] reload logged %.1f ms after SIGHUP\n",
              std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  WssClient after(server_->port(), cert_b);
  ASSERT_TRUE(after.open()) << after.error();
  EXPECT_EQ(after.peer_fingerprint(), fp_b);
  EXPECT_EQ(get("/healthz", cert_b).status, 200);
  EXPECT_EQ(get("/healthz", cert_a).curl_exit, 60) << "a new connection still got the old certificate";
  // The connection opened before the swap keeps its session and keeps working.
  EXPECT_EQ(before.peer_fingerprint(), fp_a);
  EXPECT_EQ(before.request({{"action", "getpermissions"}}).value("action", ""), "permissions")
      << before.error();

  // A broken file on the next reload: an error in the log, and the certificate in use stays.
  write_file(cert_, "-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n");
  server_->signal(SIGHUP);
  ASSERT_TRUE(wait_until([&] { return server_->log().find("reload failed") != std::string::npos; }, 10s))
      << server_->log();
  EXPECT_NE(server_->log().find("server.cert_path"), std::string::npos) << server_->log();
  WssClient still(server_->port(), cert_b);
  ASSERT_TRUE(still.open()) << still.error();
  EXPECT_EQ(still.peer_fingerprint(), fp_b);
}

TEST(TlsConfig, AMissingCertificateStopsTheStartWithTheKeyAndFileNamed) {
  TempDir dir;
  SkitServer server(config_with_tls(dir.file("missing.pem"), dir.file("missing.key")));
  EXPECT_FALSE(server.up());
  EXPECT_TRUE(wait_until([&] { return !server.running(); }, 10s));
  EXPECT_NE(server.log().find("server.cert_path " + dir.file("missing.pem")), std::string::npos)
      << server.log();
}

}  // namespace
}  // namespace skit::testing

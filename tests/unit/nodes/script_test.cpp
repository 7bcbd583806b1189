// SPDX-License-Identifier: MPL-2.0
// core::script in-process with its real Node.js child: StreamKit's script shapes (sync,
// async, state across packets, dropping), marshalling of every packet kind, errors and
// timeouts passing packets on unchanged, the heap and RSS limits, rejection at creation,
// live tuning, and the sandbox of the Node.js process itself.
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <sstream>

#include "audio_util.hpp"
#include "node_harness.hpp"
#include "script_process.hpp"

namespace skit::testing {
namespace {

using namespace std::chrono_literals;

/// Captures what nodes log (the harness clones the default logger, sinks included).
class LogCapture {
 public:
  LogCapture() : sink_(std::make_shared<spdlog::sinks::ostream_sink_mt>(stream_)) {
    spdlog::default_logger()->sinks().push_back(sink_);
  }
  ~LogCapture() {
    auto& sinks = spdlog::default_logger()->sinks();
    sinks.erase(std::remove(sinks.begin(), sinks.end(), sink_), sinks.end());
  }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;
  std::string text() const { return stream_.str(); }

 private:
  std::ostringstream stream_;
  std::shared_ptr<spdlog::sinks::ostream_sink_mt> sink_;
};

Json script(std::string source, Json extra = Json::object()) {
  extra["script"] = std::move(source);
  return extra;
}

TEST(Script, SyncProcessRewritesTextAndKeepsStateAcrossPackets) {
  NodeHarness h("core::script", script(R"JS(
    let count = 0;
    function process(packet) {
      count += 1;
      return { type: "Text", data: `${count}: ${packet.data.toUpperCase()}` };
    })JS"));
  ASSERT_TRUE(h.ok()) << h.create_status().to_string();
  ASSERT_TRUE(h.prepare().is_ok());
  ASSERT_TRUE(h.push_text(0, "hello", PacketKind::kText, 1000).is_ok());
  ASSERT_TRUE(h.push_text(0, "wörld", PacketKind::kText, 2000).is_ok());
  ASSERT_TRUE(h.finish().is_ok());
  EXPECT_EQ(h.texts(), (std::vector<std::string>{"1: HELLO", "2: WÖRLD"}));
  EXPECT_EQ(h.packets()[1].header.pts_us, 2000);
  EXPECT_EQ(h.packets()[1].header.kind, PacketKind::kText);
}

TEST(Script, AsyncProcessAndNullDrops) {
  NodeHarness h("core::script", script(R"JS(
    const later = (v) => Promise.resolve(v);
    async function process(packet) {
      const text = await later(packet.data);
      if (text.startsWith("drop")) return null;
      return { type: "Text", data: text + "!" };
    })JS"));
  ASSERT_TRUE(h.ok());
  ASSERT_TRUE(h.prepare().is_ok());
  for (const char* t : {"a", "drop me", "b"}) {
    ASSERT_TRUE(h.push_text(0, t).is_ok());
  }
  ASSERT_TRUE(h.finish().is_ok());
  EXPECT_EQ(h.texts(), (std::vector<std::string>{"a!", "b!"}));
}

TEST(Script, MarshalsTranscriptionCustomAudioAndBinary) {
  LogCapture logs;
  NodeHarness h("core::script", script(R"JS(
    function process(p) {
      console.log("seen", p.type, JSON.stringify(p.metadata || {}));
      if (p.type === "Transcription") {
        p.data.text = p.data.text + " (" + p.data.segments.length + " segments)";
        return p;
      }
      if (p.type === "Custom") {
        return { type: "Custom", type_id: p.type_id, encoding: "json",
                 data: { speech: !p.data.speech, seq: p.metadata.sequence } };
      }
      if (p.type === "Audio" && p.metadata.frames === 480) return null;
      return p;
    })JS"));
  ASSERT_TRUE(h.ok());
  ASSERT_TRUE(h.prepare().is_ok());
  ASSERT_TRUE(h.push_text(0, R"({"text":"hi","segments":[{"text":"hi","start_time_ms":0,"end_time_ms":5}]})",
                          PacketKind::kTranscription).is_ok());
  ASSERT_TRUE(h.push_text(0, R"({"type_id":"vad/event@1","data":{"speech":true}})",
                          PacketKind::kCustom).is_ok());
  const std::vector<float> tone(960 * 2, 0.25F);
  ASSERT_TRUE(h.push_audio(0, tone, 48000, 2, 0).is_ok());                         // kept
  ASSERT_TRUE(h.push_audio(0, std::span(tone).first(480), 48000, 1, 20000).is_ok());   // dropped
  ASSERT_TRUE(h.push_text(0, "raw bytes", PacketKind::kBinary).is_ok());
  ASSERT_TRUE(h.finish().is_ok());
  ASSERT_EQ(h.packets().size(), 4U);
  EXPECT_EQ(Json::parse(h.packets()[0].text())["text"], "hi (1 segments)");
  const Json custom = Json::parse(h.packets()[1].text());
  EXPECT_EQ(custom["type_id"], "vad/event@1");
  EXPECT_EQ(custom["data"]["speech"], false);
  EXPECT_EQ(custom["data"]["seq"], 1);
  EXPECT_EQ(h.packets()[2].header.kind, PacketKind::kRawAudio);
  EXPECT_EQ(h.packets()[2].samples().size(), tone.size()) << "audio passes on untouched";
  EXPECT_EQ(h.packets()[2].samples()[7], 0.25F);
  EXPECT_EQ(h.packets()[3].text(), "raw bytes");
  const std::string log = logs.text();
  EXPECT_NE(log.find(R"(seen Audio {"channels":2,"duration_ms":20,"frames":960,"sample_rate":48000})"),
            std::string::npos) << log;
  EXPECT_NE(log.find(R"(seen Binary {"kind":"Binary","size":9})"), std::string::npos) << log;
}

TEST(Script, ErrorsAndTimeoutsPassThePacketOnUnchanged) {
  LogCapture logs;
  NodeHarness h("core::script", script(R"JS(
    function process(p) {
      if (p.data === "throw") throw new Error("boom " + p.data);
      if (p.data === "loop") for (;;) {}
      if (p.data === "async-loop") return (async () => { for (;;) {} })();
      if (p.data === "undefined") return undefined;
      if (p.data === "wrong") return { type: "Audio" };
      return { type: "Text", data: "ok " + p.data };
    })JS", {{"timeout_ms", 50}}));
  ASSERT_TRUE(h.ok());
  ASSERT_TRUE(h.prepare().is_ok());
  const auto t0 = std::chrono::steady_clock::now();
  for (const char* t : {"a", "throw", "loop", "async-loop", "undefined", "wrong", "b"}) {
    ASSERT_TRUE(h.push_text(0, t).is_ok()) << t;
  }
  const auto elapsed = std::chrono::steady_clock::now() - t0;
  ASSERT_TRUE(h.finish().is_ok());
  EXPECT_EQ(h.texts(), (std::vector<std::string>{"ok a", "throw", "loop", "async-loop",
                                                 "undefined", "wrong", "ok b"}));
  EXPECT_LT(elapsed, 2s) << "two 50 ms timeouts";
  const std::string log = logs.text();
  EXPECT_NE(log.find("boom throw"), std::string::npos) << log;
  EXPECT_NE(log.find("script timeout"), std::string::npos) << log;
  EXPECT_NE(log.find("returned undefined"), std::string::npos) << log;
  EXPECT_NE(log.find("type 'Audio' for a Text packet"), std::string::npos) << log;
}

TEST(Script, NoNodeApiInsideTheContext) {
  LogCapture logs;
  NodeHarness h("core::script", script(R"JS(
    function process(p) {
      if (p.data === "require") return { type: "Text", data: String(require("child_process")) };
      if (p.data === "process") return { type: "Text", data: String(globalThis.process.binding("spawn_sync")) };
      if (p.data === "escape") {
        const F = console.log.constructor;
        return { type: "Text", data: String(F("return process")().pid) };
      }
      if (p.data === "eval") return { type: "Text", data: String(eval("1+1")) };
      return { type: "Text", data: [typeof require, typeof Buffer, typeof setTimeout, typeof module].join(",") };
    })JS"));
  ASSERT_TRUE(h.ok());
  ASSERT_TRUE(h.prepare().is_ok());
  for (const char* t : {"require", "process", "escape", "eval", "types"}) {
    ASSERT_TRUE(h.push_text(0, t).is_ok());
  }
  ASSERT_TRUE(h.finish().is_ok());
  EXPECT_EQ(h.texts(), (std::vector<std::string>{"require", "process", "escape", "eval",
                                                 "undefined,undefined,undefined,undefined"}));
  const std::string log = logs.text();
  EXPECT_NE(log.find("require is not defined"), std::string::npos) << log;
  EXPECT_NE(log.find("Code generation from strings disallowed"), std::string::npos) << log;
}

TEST(Script, HeapHogIsContainedAndPacketsKeepFlowing) {
  LogCapture logs;
  NodeHarness h("core::script", script(R"JS(
    const keep = [];
    function process(p) {
      if (p.data === "hog") { for (let i = 0; ; i++) keep.push("x".repeat(1000) + i); }
      return { type: "Text", data: "ok " + p.data };
    })JS", {{"timeout_ms", 20000}, {"memory_limit_mb", 16}}));
  ASSERT_TRUE(h.ok());
  ASSERT_TRUE(h.prepare().is_ok());
  for (const char* t : {"a", "hog", "b"}) {
    ASSERT_TRUE(h.push_text(0, t).is_ok());
  }
  ASSERT_TRUE(h.finish().is_ok());
  EXPECT_EQ(h.texts(), (std::vector<std::string>{"ok a", "hog", "b"}));
  EXPECT_NE(logs.text().find("script process ended"), std::string::npos) << logs.text();
}

TEST(Script, BufferHogOutsideTheHeapIsKilledOnItsResidentSize) {
  LogCapture logs;
  NodeHarness h("core::script", script(R"JS(
    const keep = [];
    function process(p) {
      if (p.data === "hog") { for (;;) keep.push(new Uint8Array(8 << 20).fill(7)); }
      return { type: "Text", data: "ok " + p.data };
    })JS", {{"timeout_ms", 20000}, {"memory_limit_mb", 16}}));
  ASSERT_TRUE(h.ok());
  ASSERT_TRUE(h.prepare().is_ok());
  for (const char* t : {"a", "hog", "b"}) {
    ASSERT_TRUE(h.push_text(0, t).is_ok());
  }
  ASSERT_TRUE(h.finish().is_ok());
  EXPECT_EQ(h.texts(), (std::vector<std::string>{"ok a", "hog", "b"}));
  EXPECT_NE(logs.text().find("resident memory reached"), std::string::npos) << logs.text();
}

TEST(Script, RejectedAtCreation) {
  auto errors = NodeHarness::validate("core::script", {{"script", "  \n "}});
  ASSERT_FALSE(errors.empty());
  EXPECT_NE(errors[0].message().find("empty"), std::string::npos);
  errors = NodeHarness::validate("core::script", Json::object());
  ASSERT_FALSE(errors.empty());
  EXPECT_NE(errors[0].message().find("required"), std::string::npos);
  errors = NodeHarness::validate("core::script", {{"script", "function process(p){return p}"},
                                                  {"headers", {{{"secret", "x"}}}}});
  ASSERT_FALSE(errors.empty());

  NodeHarness syntax("core::script", script("function process(p) { return p; "));
  ASSERT_TRUE(syntax.ok());
  Status s = syntax.prepare();
  ASSERT_FALSE(s.is_ok());
  EXPECT_NE(s.message().find("syntax error"), std::string::npos) << s.to_string();

  NodeHarness missing("core::script", script("const x = 1;"));
  s = missing.prepare();
  ASSERT_FALSE(s.is_ok());
  EXPECT_NE(s.message().find("no process(packet) function"), std::string::npos) << s.to_string();

  NodeHarness throws("core::script", script("throw new Error('bad start'); function process(p) {}"));
  s = throws.prepare();
  ASSERT_FALSE(s.is_ok());
  EXPECT_NE(s.message().find("bad start"), std::string::npos) << s.to_string();
}

TEST(Script, FetchIsRefusedWithoutAnAllowList) {
  NodeHarness h("core::script", script(R"JS(
    function process(p) {
      try { return { type: "Text", data: fetch("http://127.0.0.1:9/x") }; }
      catch (e) { return { type: "Text", data: "refused: " + e.message }; }
    })JS"));
  ASSERT_TRUE(h.ok());
  ASSERT_TRUE(h.prepare().is_ok());
  ASSERT_TRUE(h.push_text(0, "x").is_ok());
  ASSERT_TRUE(h.finish().is_ok());
  EXPECT_NE(h.text().find("refused: fetch refused: fetch is disabled"), std::string::npos) << h.text();
}

TEST(Script, TimeoutIsTunableLive) {
  NodeHarness h("core::script", script(R"JS(
    function process(p) {
      const until = Date.now() + 150; while (Date.now() < until) {}
      return { type: "Text", data: "done" };
    })JS", {{"timeout_ms", 50}}));
  ASSERT_TRUE(h.ok());
  ASSERT_TRUE(h.prepare().is_ok());
  ASSERT_TRUE(h.push_text(0, "slow").is_ok());
  ASSERT_TRUE(h.tune({{"timeout_ms", 1000}}).is_ok());
  ASSERT_TRUE(h.push_text(0, "slow").is_ok());
  ASSERT_TRUE(h.finish().is_ok());
  EXPECT_EQ(h.texts(), (std::vector<std::string>{"slow", "done"}));
  EXPECT_FALSE(h.tune({{"script", "function process(p){return p}"}}).is_ok())
      << "only timeout_ms is tunable";
}

// The OS sandbox of the Node.js child itself, beneath the vm context: full Node.js code (as a
// script escaping the context would run) cannot spawn, open sockets, write or read files.
TEST(ScriptSandbox, NodeChildCannotSpawnConnectOrTouchFiles) {
  const char* probe = R"JS(
    const fs = require('fs'); const r = {};
    const cp = require('child_process');
    const s = cp.spawnSync('/bin/true'); r.spawn = s.error ? (s.error.code || 'error') : 'ran';
    try { fs.writeFileSync('/tmp/skit-script-probe-' + process.pid, 'x'); r.write = 'wrote'; } catch (e) { r.write = e.code; }
    try { fs.readFileSync('/etc/hostname'); r.read = 'read'; } catch (e) { r.read = e.code; }
    const done = () => {
      const body = Buffer.from(JSON.stringify(r));
      const head = Buffer.alloc(5); head.writeUInt32LE(body.length, 0); head[4] = 10;
      fs.writeSync(4, Buffer.concat([head, body]));
      process.exit(0);
    };
    try {
      const sock = require('net').connect(9, '127.0.0.1');
      sock.on('connect', () => { r.socket = 'connected'; done(); });
      sock.on('error', (e) => { r.socket = e.code; done(); });
    } catch (e) { r.socket = e.code || 'threw'; done(); }
  )JS";
  nodes::script::ScriptProcess child;
  nodes::script::SandboxReport report;
  ASSERT_TRUE(child.spawn({.heap_limit_mb = 32, .extra_args = {"-e", probe}}, &report).is_ok());
  auto frame = child.receive(std::chrono::steady_clock::now() + 20s);
  ASSERT_TRUE(frame.is_ok()) << frame.status().to_string();
  const Json r = Json::parse(frame->payload);
  EXPECT_NE(r["spawn"], "ran") << r.dump();
  EXPECT_NE(r["socket"], "connected") << r.dump();
  EXPECT_NE(r["write"], "wrote") << r.dump();
  if (report.landlock_abi > 0) {
    EXPECT_EQ(r["read"], "EACCES") << r.dump();
  }
  std::cout << "sandbox probe: " << r.dump() << " (Landlock ABI " << report.landlock_abi << ")\n";
}

}  // namespace
}  // namespace skit::testing

// SPDX-License-Identifier: MPL-2.0
// POST /api/v1/process: StreamKit's oneshot endpoint. The multipart upload (a `config` part,
// then an optional `media` part) is read as it arrives: the config is compiled before a byte
// of media is taken, the media streams into the run (oneshot_run.hpp) while a writer thread
// streams the pipeline's output back as a chunked response, and a client that goes away
// cancels its run. GET /api/v1/process/{id}: how a recent request ended.
#include <poll.h>
#include <spdlog/spdlog.h>

#include <boost/asio/write.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http.hpp>
#include <thread>

#include "authorization.hpp"
#include "http_routes.hpp"
#include "multipart.hpp"
#include "status_codes.hpp"

namespace skit::gateway {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;

namespace {

/// Streams the run's output as a chunked response; an error before the first byte becomes a
/// proper error response instead. A failure after it: with `TE: trailers` in the request, the
/// body ends properly with an X-Skit-Error trailer (announced in `Trailer:`); otherwise
/// without its last chunk, so that the client sees a truncated body rather than a silent
/// success. Returns the status sent.
unsigned write_response(HttpExchange& ex, const std::string& request_id, OneshotRun& run) {
  auto& socket = ex.socket();
  const HttpHead& req = ex.head();
  std::optional<std::string> first = run.pop();
  if (!first) {
    const Status s = run.output_status();
    if (!s.is_ok()) {
      HttpReply r =
          HttpReply::text(run.upload_failed() ? 413 : http_status_for(s), s.to_string());
      r.headers.emplace_back("X-Skit-Request-Id", request_id);
      if (r.status == 503) {
        r.headers.emplace_back("Retry-After", "1");
      }
      const unsigned code = r.status;
      try {
        ex.send(std::move(r), false);
      } catch (const std::exception&) {
      }
      return code;
    }
  }
  http::response<http::empty_body> res{http::status::ok, req.version()};
  set_common_headers(res);
  res.set(http::field::content_type, run.content_type());
  res.set("X-Skit-Request-Id", request_id);
  const bool trailers = beast::iequals(req[http::field::te], "trailers") ||
                        req[http::field::te].find("trailers") != beast::string_view::npos;
  if (trailers) {
    res.set(http::field::trailer, "X-Skit-Error");
  }
  res.chunked(true);
  res.keep_alive(false);
  http::response_serializer<http::empty_body> sr{res};
  beast::error_code ec;
  http::write_header(socket, sr, ec);
  auto write_chunk = [&](const std::string& data) {
    if (!ec && !data.empty()) {
      net::write(socket, http::make_chunk(net::buffer(data)), ec);
      run.count_bytes_out(ec ? 0 : data.size());
    }
  };
  if (first) {
    write_chunk(*first);
  }
  while (!ec) {
    auto next = run.pop();
    if (!next) {
      break;
    }
    write_chunk(*next);
  }
  if (ec) {
    run.stop(OneshotRun::Stop::kClient);  // the client went away: stop the pipeline
    return 200;
  }
  const Status s = run.output_status();
  if (s.is_ok()) {
    net::write(socket, http::make_chunk_last(), ec);
  } else {
    spdlog::warn("oneshot {} failed after its response started: {}", request_id, s.to_string());
    if (trailers) {
      http::fields trailer;
      trailer.set("X-Skit-Error", error_line(s));
      net::write(socket, http::make_chunk_last(trailer), ec);
    }
  }
  return 200;
}

/// Runs one request. Returns the status code sent.
unsigned run_process(HttpContext& ctx, HttpExchange& ex) {
  const ServerConfig& config = ctx.config;
  // Every answer carries the request's id; its outcome stays queryable for a while
  // (GET /api/v1/process/{id}), for clients that cannot read trailers.
  const std::string request_id = ctx.outcomes.begin();
  auto fail = [&](unsigned status, std::string message, std::vector<Status> errors = {}) {
    ctx.outcomes.finish(request_id, status,
                        errors.empty() ? Status(ErrorCode::kInvalidArgument, message)
                                       : errors.front(),
                        0, 0);
    HttpReply r = HttpReply::text(status, std::move(message));
    r.headers.emplace_back("X-Skit-Request-Id", request_id);
    if (!errors.empty()) {
      // Plain text like StreamKit, one problem per line, each with its place.
      r.body.clear();
      for (const auto& e : errors) {
        r.body += e.to_string() + "\n";
      }
    }
    if (status == 503) {
      r.headers.emplace_back("Retry-After", "1");
    }
    ex.send(std::move(r), false);
    return status;
  };
  if (auto length = ex.content_length(); length && *length > config.max_body_bytes) {
    return fail(413, "the upload is " + std::to_string(*length) +
                         " bytes; limits.max_body_bytes is " +
                         std::to_string(config.max_body_bytes));
  }
  const std::string boundary =
      MultipartReader::boundary_of(ex.header(http::field::content_type));
  if (boundary.empty()) {
    return fail(400,
                "expected a multipart/form-data body with a 'config' part (and optional 'media')");
  }
  // The body parser enforces the limit on chunked uploads too. The request is accepted as
  // far as its head goes: `Expect: 100-continue` is answered before the first read.
  BodyPull& body = ex.body(config.max_body_bytes,
                           "the upload exceeds limits.max_body_bytes (" +
                               std::to_string(config.max_body_bytes) + " bytes)",
                           "the upload");
  MultipartReader parts(std::ref(body), boundary);
  const auto read_failed = [&] { return body.exceeded() ? 413U : 400U; };
  auto first = parts.next_part();
  if (!first || !*first) {
    return fail(read_failed(), first ? "missing the 'config' part" : first.status().message());
  }
  if ((*first)->name != "config") {
    return fail(400, "the first multipart part must be 'config' (got '" + (*first)->name + "')");
  }
  std::string yaml;
  char chunk[64 * 1024];
  while (true) {
    auto n = parts.read(chunk);
    if (!n) {
      return fail(read_failed(), n.status().message());
    }
    if (*n == 0) {
      break;
    }
    yaml.append(chunk, *n);
    if (yaml.size() > config.max_config_bytes) {
      return fail(413, "the 'config' part exceeds limits.max_config_bytes");
    }
  }
  auto second = parts.next_part();
  if (!second) {
    return fail(read_failed(), second.status().message());
  }
  const bool has_media = second->has_value();
  if (has_media && (*second)->name != "media") {
    return fail(400, "unexpected multipart part '" + (*second)->name + "' (expected 'media')");
  }
  auto compiled = ctx.engine.compile_oneshot(yaml, has_media);
  if (!compiled.ok()) {
    return fail(http_status_for(problems_code(compiled.errors)), "", compiled.errors);
  }

  // Run: this thread pumps the upload, the run's thread runs the pipeline, a writer thread
  // streams the response.
  OneshotRun run(ctx.engine, config.request_timeout);
  ctx.oneshots.add(&run);
  run.start(std::move(compiled.pipeline), has_media);
  unsigned code = 200;
  std::thread writer([&] { code = write_response(ex, request_id, run); });
  if (has_media) {
    while (run.stopped_by() == OneshotRun::Stop::kNone) {
      auto n = parts.read(chunk);
      if (!n) {
        if (body.exceeded()) {
          run.fail_upload(n.status());  // the run ends with it: 413
        } else {
          run.end_upload(n.status());
        }
        break;
      }
      if (*n == 0) {
        run.end_upload();
        break;
      }
      if (!run.push(std::string(chunk, *n))) {
        break;
      }
    }
  }
  // The whole request is in: until the run ends, watch the connection, so a client that
  // goes away cancels its pipeline now. Otherwise only the next response write notices,
  // and a pipeline with sparse output (paced, or a muxer that writes at the end) ran to
  // its end for nobody, holding a max_concurrent_oneshots slot and its workers.
  while (!run.ended() && run.stopped_by() == OneshotRun::Stop::kNone && !run.upload_failed()) {
    pollfd p{ex.socket().native_handle(), POLLRDHUP, 0};
    if (::poll(&p, 1, 20) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0) {
      spdlog::info("the client closed the connection: cancelling its pipeline");
      run.stop(OneshotRun::Stop::kClient);
    }
  }
  run.join();
  writer.join();
  ctx.oneshots.remove(&run);
  ctx.outcomes.finish(request_id, code, run.final_status(), run.bytes_in(), run.bytes_out());
  return code;
}

}  // namespace

HttpReply process(HttpContext& ctx, HttpExchange& ex) {
  if (Status s = authorize(ex.role(), Permission::kProcessOneshot, "run pipelines"); !s.is_ok()) {
    return error_reply(s);
  }
  // The body is consumed as a stream: the connection closes after it, simplest and safe.
  ex.answered(run_process(ctx, ex));
  return {};
}

HttpReply process_outcome(HttpContext& ctx, HttpExchange& ex) {
  const std::string& id = ex.param(0);
  auto outcome = ctx.outcomes.find(id);
  return outcome ? HttpReply::json(outcome->dump())
                 : HttpReply::text(404, "no recent request '" + id +
                                            "' (the server keeps the last 1024)");
}

}  // namespace skit::gateway

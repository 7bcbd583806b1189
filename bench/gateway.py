#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
"""Gateway benchmark: oneshot request latency and throughput over HTTP against `skit run`.

Starts the real `skit serve` on a free loopback port, then for a 2 s Ogg/Opus clip runs the
volume boost pipeline (samples/pipelines/oneshot/volume_boost.yml):
  - `skit run` of the same pipeline, sequentially (the per-run baseline: process start-up,
    compile, workers, media);
  - POST /api/v1/process at concurrency 1, 8 and 32 (Python threads with keep-alive-free
    http.client connections; the multipart body is built once in memory).
Prints p50/p99 latency and requests/s per case, the HTTP overhead per request
(p50 HTTP at concurrency 1 minus p50 of `skit run`), and the server's own memory (PSS of the
`skit serve` process alone, without its workers) idle and at its peak.
"""
import http.client
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SKIT = os.environ.get("SKIT", os.path.join(ROOT, "build/release/cli/skit"))
PIPELINE = os.path.join(ROOT, "samples/pipelines/oneshot/volume_boost.yml")
REQUESTS = int(os.environ.get("GATEWAY_REQUESTS", "64"))


def pss_kb(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        return 0
    return 0


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100.0 * (len(values) - 1))))]


def main():
    tmp = tempfile.mkdtemp(prefix="skit-gw-bench-")
    clip = os.path.join(tmp, "clip.ogg")
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                    "sine=frequency=440:duration=2:sample_rate=48000", "-ac", "2",
                    "-c:a", "libopus", "-b:a", "96k", clip], check=True)
    yaml = open(PIPELINE, "rb").read()
    media = open(clip, "rb").read()
    boundary = "skitbenchboundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"config\"; filename=\"p.yml\"\r\n"
            f"Content-Type: application/yaml\r\n\r\n").encode() + yaml + \
           (f"\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"media\"; filename=\"clip.ogg\"\r\n"
            f"Content-Type: audio/ogg\r\n\r\n").encode() + media + f"\r\n--{boundary}--\r\n".encode()

    # Baseline: skit run, sequentially.
    run_times = []
    for _ in range(max(10, REQUESTS // 4)):
        t0 = time.monotonic()
        subprocess.run([SKIT, "run", PIPELINE, "-q", "-i", clip, "-o", os.path.join(tmp, "out.ogg")],
                       check=True, cwd=ROOT)
        run_times.append(time.monotonic() - t0)

    cfg = os.path.join(tmp, "skit.yaml")
    with open(cfg, "w") as f:
        f.write("server:\n  listen: 127.0.0.1:0\n  grpc_listen: \"\"\nlimits:\n  max_concurrent_oneshots: 64\n")
    server = subprocess.Popen([SKIT, "serve", "--config", cfg], cwd=ROOT, stderr=subprocess.PIPE,
                              stdout=subprocess.DEVNULL, text=True)
    port = None
    deadline = time.monotonic() + 10
    while port is None and time.monotonic() < deadline:
        line = server.stderr.readline()
        m = re.search(r"listening on http://[0-9.]+:(\d+)", line)
        if m:
            port = int(m.group(1))
    if port is None:
        server.kill()
        sys.exit("skit serve did not start")
    threading.Thread(target=lambda: [None for _ in server.stderr], daemon=True).start()
    time.sleep(0.2)
    idle_kb = pss_kb(server.pid)
    peak_kb = [idle_kb]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak_kb[0] = max(peak_kb[0], pss_kb(server.pid))
            time.sleep(0.01)
    threading.Thread(target=sample, daemon=True).start()

    def one():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        t0 = time.monotonic()
        conn.request("POST", "/api/v1/process", body=body,
                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        resp = conn.getresponse()
        data = resp.read()
        dt = time.monotonic() - t0
        conn.close()
        if resp.status != 200 or len(data) < 1000:
            raise RuntimeError(f"HTTP {resp.status}: {data[:200]!r}")
        return dt

    results = {}
    for concurrency in (1, 8, 32):
        lat = []
        lock = threading.Lock()
        todo = [REQUESTS]

        def worker():
            while True:
                with lock:
                    if todo[0] == 0:
                        return
                    todo[0] -= 1
                d = one()
                with lock:
                    lat.append(d)
        t0 = time.monotonic()
        threads = [threading.Thread(target=worker) for _ in range(concurrency)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        results[concurrency] = (lat, REQUESTS / (time.monotonic() - t0))
    stop.set()
    server.terminate()
    server.wait(timeout=20)

    print(f"gateway benchmark: volume boost of a 2 s Opus clip, {REQUESTS} requests per case, "
          f"{os.cpu_count()} CPUs")
    print(f"{'case':24} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8}")
    print(f"{'skit run (sequential)':24} {statistics.median(run_times)*1000:8.1f} "
          f"{pct(run_times, 99)*1000:8.1f} {1/statistics.mean(run_times):8.1f}")
    for c, (lat, rps) in results.items():
        print(f"{'HTTP concurrency ' + str(c):24} {statistics.median(lat)*1000:8.1f} "
              f"{pct(lat, 99)*1000:8.1f} {rps:8.1f}")
    overhead = (statistics.median(results[1][0]) - statistics.median(run_times)) * 1000
    print(f"gateway: HTTP p50 overhead over skit run {overhead:+.1f} ms per request (target < 5 ms); "
          f"server memory without workers {idle_kb/1024:.1f} MiB idle, {peak_kb[0]/1024:.1f} MiB peak "
          f"(target < 50 MB); c32 {results[32][1]:.1f} req/s")


if __name__ == "__main__":
    main()

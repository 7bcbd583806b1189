#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
"""Audio benchmark: skit against ffmpeg and gst-launch on the same work, in the same run.

Cases (10-minute 48 kHz stereo Opus input, generated once into bench/out/):
  volume boost: Ogg/Opus -> decode -> gain 2.0 -> Opus 64 kb/s -> Ogg
    skit run samples-equivalent pipeline   vs  ffmpeg -af volume=2 -c:a libopus
                                           vs  gst-launch-1.0 oggdemux ! opusdec ! volume ! opusenc ! oggmux
  mixing: two Ogg/Opus inputs -> decode -> mix -> Opus -> WebM
    skit run (audio::mixer)                vs  ffmpeg -filter_complex amix
Each is timed (median of RUNS) for wall time, CPU time (user+sys of every process) and peak
memory (sum of the PSS of every process of the tool, sampled every 10 ms), on both cores and
pinned to one core (taskset -c 0). Prints a table and one summary line per case.
"""
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SKIT = os.environ.get("SKIT", os.path.join(ROOT, "build/release/cli/skit"))
OUT = os.path.join(ROOT, "bench/out")
RUNS = int(os.environ.get("AUDIO_RUNS", "3"))
MINUTES = int(os.environ.get("AUDIO_MINUTES", "10"))


def sh(cmd, **kw):
    subprocess.run(cmd, check=True, **kw)


def make_inputs():
    os.makedirs(OUT, exist_ok=True)
    seconds = MINUTES * 60
    a = os.path.join(OUT, f"bench_{MINUTES}min_a.ogg")
    b = os.path.join(OUT, f"bench_{MINUTES}min_b.ogg")
    if not os.path.exists(a):
        # Music-like content: a chord plus pink noise, so the encoder does real work.
        sh(["ffmpeg", "-v", "error", "-y",
            "-f", "lavfi", "-i", f"sine=frequency=220:duration={seconds}:sample_rate=48000",
            "-f", "lavfi", "-i", f"sine=frequency=330:duration={seconds}:sample_rate=48000",
            "-f", "lavfi", "-i", f"anoisesrc=d={seconds}:c=pink:r=48000:a=0.05",
            "-filter_complex", "[0][1][2]amix=inputs=3,aformat=channel_layouts=stereo",
            "-c:a", "libopus", "-b:a", "128k", a])
    if not os.path.exists(b):
        sh(["ffmpeg", "-v", "error", "-y",
            "-f", "lavfi", "-i", f"sine=frequency=1000:duration={seconds}:sample_rate=48000",
            "-f", "lavfi", "-i", f"anoisesrc=d={seconds}:c=brown:r=48000:a=0.05",
            "-filter_complex", "[0][1]amix=inputs=2,aformat=channel_layouts=stereo",
            "-c:a", "libopus", "-b:a", "128k", b])
    return a, b


def pss_kb(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def descendants(pid):
    out, frontier = [pid], [pid]
    while frontier:
        nxt = []
        for p in frontier:
            try:
                with open(f"/proc/{p}/task/{p}/children") as f:
                    nxt += [int(c) for c in f.read().split()]
            except OSError:
                pass
        out += nxt
        frontier = nxt
    return out


def measure(cmd):
    """Wall seconds, CPU seconds (process tree), peak summed PSS in MiB."""
    t0 = time.monotonic()
    before = os.times()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, sum(pss_kb(p) for p in descendants(proc.pid)))
        time.sleep(0.01)
    wall = time.monotonic() - t0
    after = os.times()
    err = proc.stderr.read().decode()
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{err}")
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return wall, cpu, peak / 1024.0


def median_of(cmd):
    results = [measure(cmd) for _ in range(RUNS)]
    return tuple(statistics.median(r[i] for r in results) for i in range(3))


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def main():
    a, b = make_inputs()
    tmp = tempfile.mkdtemp(prefix="skit-bench-")
    boost_yml = os.path.join(tmp, "boost.yml")
    write(boost_yml, """name: volume boost (bench)
mode: oneshot
steps:
  - kind: streamkit::http_input
  - kind: containers::ogg::demuxer
  - kind: audio::opus::decoder
  - kind: audio::gain
    params: {gain: 2.0}
  - kind: audio::opus::encoder
    params: {bitrate: 64000}
  - kind: containers::ogg::muxer
    params: {channels: 2}
  - kind: streamkit::http_output
""")
    mix_yml = os.path.join(tmp, "mix.yml")
    write(mix_yml, f"""name: mixing (bench)
mode: oneshot
nodes:
  upload: {{kind: streamkit::http_input}}
  demux_a: {{kind: containers::ogg::demuxer, needs: upload}}
  dec_a: {{kind: audio::opus::decoder, needs: demux_a}}
  music: {{kind: core::file_reader, params: {{path: {b}, chunk_size: 65536}}}}
  demux_b: {{kind: containers::ogg::demuxer, needs: music}}
  dec_b: {{kind: audio::opus::decoder, needs: demux_b}}
  mix: {{kind: audio::mixer, needs: [dec_a, dec_b]}}
  enc: {{kind: audio::opus::encoder, params: {{bitrate: 64000}}, needs: mix}}
  mux: {{kind: containers::webm::muxer, needs: enc}}
  out: {{kind: streamkit::http_output, needs: mux}}
""")
    o = lambda name: os.path.join(tmp, name)
    cases = {
        "boost": {
            "skit": [SKIT, "run", boost_yml, "-q", "-i", a, "-o", o("skit.ogg")],
            "ffmpeg": ["ffmpeg", "-v", "error", "-y", "-i", a, "-af", "volume=2", "-c:a", "libopus",
                       "-b:a", "64k", o("ffmpeg.ogg")],
            "gst": ["gst-launch-1.0", "-q", "filesrc", f"location={a}", "!", "oggdemux", "!", "opusdec",
                    "!", "volume", "volume=2", "!", "opusenc", "bitrate=64000", "!", "oggmux", "!",
                    "filesink", f"location={o('gst.ogg')}"],
        },
        "mixing": {
            "skit": [SKIT, "run", mix_yml, "-q", "-i", a, "-o", o("skit.webm")],
            "ffmpeg": ["ffmpeg", "-v", "error", "-y", "-i", a, "-i", b, "-filter_complex",
                       "amix=inputs=2:duration=longest", "-c:a", "libopus", "-b:a", "64k", o("ffmpeg.webm")],
        },
    }
    print(f"audio benchmark: {MINUTES}-minute 48 kHz stereo Opus input, median of {RUNS} runs, "
          f"{os.cpu_count()} CPUs")
    print(f"{'case':8} {'cores':6} {'tool':7} {'wall s':>8} {'cpu s':>8} {'peak MiB':>9} "
          f"{'wall/ffmpeg':>11} {'cpu/ffmpeg':>10} {'mem/ffmpeg':>10}")
    summaries = []
    for case, tools in cases.items():
        for pin in ("all", "one"):
            prefix = ["taskset", "-c", "0"] if pin == "one" else []
            res = {tool: median_of(prefix + cmd) for tool, cmd in tools.items()}
            ff = res["ffmpeg"]
            for tool, (w, c, m) in res.items():
                print(f"{case:8} {pin:6} {tool:7} {w:8.2f} {c:8.2f} {m:9.1f} {w / ff[0]:11.2f} "
                      f"{c / ff[1]:10.2f} {m / ff[2]:10.2f}")
            sk = res["skit"]
            line = (f"{case} ({'2 cores' if pin == 'all' else 'taskset -c 0'}): skit/ffmpeg wall "
                    f"{sk[0] / ff[0]:.2f}x, cpu {sk[1] / ff[1]:.2f}x, peak memory {sk[2] / ff[2]:.2f}x")
            if "gst" in res:
                line += f"; skit/gst-launch wall {sk[0] / res['gst'][0]:.2f}x"
            summaries.append(line)
    for s in summaries:
        print("audio: " + s)
    # Check the outputs are real: same duration as the input, within a frame.
    for f in ("skit.ogg", "ffmpeg.ogg", "skit.webm"):
        dur = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of",
                              "csv=p=0", o(f)], capture_output=True, text=True).stdout.strip()
        print(f"audio: output {f}: {dur} s")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
"""Plugin and script benchmark: what a node in a plugin or a script costs, in the same run.

The work is the audio benchmark's volume boost (10-minute 48 kHz stereo Ogg/Opus -> decode ->
gain -> Opus 64 kb/s -> Ogg, about 30 000 packets of 20 ms) run four ways:

  builtin   audio::gain (gain 2.0) in skit's own node set
  plugin    plugin::native::gain (gain_db 6.0206), the official SDK example, in a worker of its
            own as every plugin node is (the library loaded under the sandbox)
  script    audio::gain plus a core::script passthrough (`process(p) { return p; }`) after the
            decoder: every audio packet makes a round trip to a sandboxed Node.js child
  ffmpeg    ffmpeg -af volume=2 -c:a libopus, the reference for the ratios

Each is timed (median of RUNS) for wall time, CPU time (every process of the tool) and peak PSS.
Prints a table, the plugin's CPU overhead against the built-in node (target: within 10%), and the
script's per-packet cost (extra CPU and wall time over the builtin case, divided by the packets).
"""
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import audio  # noqa: E402  (shares the inputs, the measuring and the medians)

ROOT = audio.ROOT
SKIT = audio.SKIT
PLUGINS_DIR = os.environ.get("SKIT_PLUGINS_DIR", os.path.join(ROOT, "build/release/plugins"))

STEPS_HEAD = """mode: oneshot
steps:
  - kind: streamkit::http_input
  - kind: containers::ogg::demuxer
  - kind: audio::opus::decoder
"""
STEPS_TAIL = """  - kind: audio::opus::encoder
    params: {bitrate: 64000}
  - kind: containers::ogg::muxer
    params: {channels: 2}
  - kind: streamkit::http_output
"""
BUILTIN_GAIN = "  - kind: audio::gain\n    params: {gain: 2.0}\n"
PLUGIN_GAIN = "  - kind: plugin::native::gain\n    params: {gain_db: 6.0206}\n"
SCRIPT_PASS = """  - kind: core::script
    params:
      timeout_ms: 1000
      script: |
        function process(packet) { return packet; }
"""


def packets_of(path):
    """Opus packets in the input (one per decoded frame, one per script round trip)."""
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "a:0", "-count_packets",
                          "-show_entries", "stream=nb_read_packets", "-of", "csv=p=0", path],
                         capture_output=True, text=True, check=True).stdout.strip()
    return int(out)


def duration_of(path):
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of",
                          "csv=p=0", path], capture_output=True, text=True).stdout.strip()
    return float(out) if out else 0.0


def main():
    if not os.path.exists(os.path.join(PLUGINS_DIR, "native", "libskit_gain.so")):
        sys.exit(f"no gain plugin at {PLUGINS_DIR}/native/libskit_gain.so (build target skit_gain)")
    src, _ = audio.make_inputs()
    packets = packets_of(src)
    tmp = tempfile.mkdtemp(prefix="skit-bench-plugins-")
    ymls = {
        "builtin": STEPS_HEAD + BUILTIN_GAIN + STEPS_TAIL,
        "plugin": STEPS_HEAD + PLUGIN_GAIN + STEPS_TAIL,
        "script": STEPS_HEAD + SCRIPT_PASS + BUILTIN_GAIN + STEPS_TAIL,
    }
    cmds = {}
    for name, body in ymls.items():
        yml = os.path.join(tmp, f"{name}.yml")
        audio.write(yml, f"name: plugins bench ({name})\n" + body)
        cmds[name] = [SKIT, "run", yml, "-q", "--plugins-dir", PLUGINS_DIR, "-i", src, "-o",
                      os.path.join(tmp, f"{name}.ogg")]
    cmds["ffmpeg"] = ["ffmpeg", "-v", "error", "-y", "-i", src, "-af", "volume=2", "-c:a",
                      "libopus", "-b:a", "64k", os.path.join(tmp, "ffmpeg.ogg")]

    print(f"plugins benchmark: {audio.MINUTES}-minute 48 kHz stereo Opus boost, {packets} packets, "
          f"median of {audio.RUNS} runs, {os.cpu_count()} CPUs")
    print(f"{'case':8} {'wall s':>8} {'cpu s':>8} {'peak MiB':>9} {'cpu/ffmpeg':>10} "
          f"{'cpu/builtin':>11} {'out s':>8}")
    res = {name: audio.median_of(cmd) for name, cmd in cmds.items()}
    ff, bi = res["ffmpeg"], res["builtin"]
    for name, (w, c, m) in res.items():
        out = duration_of(os.path.join(tmp, f"{name}.ogg"))
        print(f"{name:8} {w:8.2f} {c:8.2f} {m:9.1f} {c / ff[1]:10.2f} {c / bi[1]:11.3f} {out:8.2f}")
    pl, sc = res["plugin"], res["script"]
    overhead = (pl[1] / bi[1] - 1.0) * 100.0
    verdict = "within" if overhead <= 10.0 else "OVER"
    print(f"plugins: plugin gain in its own worker vs audio::gain: cpu {overhead:+.1f}% "
          f"({verdict} the 10% target), wall {pl[0] / bi[0]:.2f}x, peak memory {pl[2] / bi[2]:.2f}x; "
          f"skit plugin/ffmpeg cpu {pl[1] / ff[1]:.2f}x")
    per_cpu_us = (sc[1] - bi[1]) / packets * 1e6
    per_wall_us = (sc[0] - bi[0]) / packets * 1e6
    print(f"plugins: core::script passthrough: {per_cpu_us:.1f} us CPU and {per_wall_us:.1f} us wall "
          f"per packet ({packets} audio packets), peak memory +{sc[2] - bi[2]:.1f} MiB")


if __name__ == "__main__":
    main()

#!/usr/bin/env bash
# Generates the short clips in samples/audio/ that the sample pipelines and the integration
# tests use. Everything is synthesized (espeak-ng speech, ffmpeg lavfi tones and chords), so
# no third-party recordings are needed. Output is deterministic for a given ffmpeg/espeak-ng
# build (bit-exact muxing, no metadata, fixed Ogg serial numbers).
#
#   scripts/make_sample_media.sh [OUT_DIR]      # default: samples/audio
#
# Needs ffmpeg (with libopus and libmp3lame) and espeak-ng: scripts/bootstrap.sh installs them.
set -euo pipefail
cd "$(dirname "$0")/.."

out=${1:-samples/audio}
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Quiet, reproducible ffmpeg: no banner, no encoder/version tags, no random stream serials.
ff() { ffmpeg -nostdin -hide_banner -loglevel error -y "$@"; }
exact=(-map_metadata -1 -fflags +bitexact -flags:a +bitexact)

# --- speech: espeak-ng at 22.05 kHz, resampled to 48 kHz mono and lowered by 6 dB (peak about
# -8 dBFS) so that volume_boost's 2x gain does not clip.
espeak-ng -v en-us -s 160 -p 45 -w "$work/speech_raw.wav" \
  "This is StreamKit. One, two, three, four."
ff -i "$work/speech_raw.wav" -af volume=0.5 -ar 48000 -ac 1 -c:a pcm_s16le "$work/speech48.wav"

# speech.ogg: Ogg/Opus, 48 kHz mono, 32 kb/s (the upload for volume_boost and mixing).
ff -i "$work/speech48.wav" -c:a libopus -b:a 32k -application voip "${exact[@]}" "$out/speech.ogg"
# speech.mp3: MP3, 48 kHz mono, 64 kb/s CBR (mp3_to_opus_webm).
ff -i "$work/speech48.wav" -c:a libmp3lame -b:a 64k "${exact[@]}" -write_xing 0 "$out/speech.mp3"
# speech.m4a: AAC-LC in MP4, 48 kHz mono, 64 kb/s (aac_mp4_to_opus_ogg).
ff -i "$work/speech48.wav" -c:a aac -b:a 64k "${exact[@]}" -movflags +faststart "$out/speech.m4a"

# --- music: a 4-second synthesized piece, C major then A minor pad chords under a plucked
# melody (one note every 0.5 s with an exponential decay). Peak level stays below 0.8.
pad='0.09*(if(lt(t,2),sin(2*PI*261.63*t)+sin(2*PI*329.63*t)+sin(2*PI*392.00*t),sin(2*PI*220.00*t)+sin(2*PI*261.63*t)+sin(2*PI*329.63*t)))'
note='if(lt(t,0.5),523.25,if(lt(t,1),659.25,if(lt(t,1.5),783.99,if(lt(t,2),659.25,if(lt(t,2.5),880.00,if(lt(t,3),783.99,if(lt(t,3.5),659.25,523.25)))))))'
melody="0.25*exp(-5*mod(t,0.5))*sin(2*PI*${note}*t)"
fade='min(1,t/0.02)*min(1,(4-t)/0.05)'
ff -f lavfi -i "aevalsrc=exprs='(${pad}+${melody})*${fade}':s=48000:d=4:c=mono" \
  -c:a pcm_s16le "$work/music48.wav"

# music.ogg: Ogg/Opus, 48 kHz mono, 48 kb/s (the local music file of the mixing sample).
ff -i "$work/music48.wav" -c:a libopus -b:a 48k "${exact[@]}" "$out/music.ogg"
# music.flac: FLAC, 48 kHz stereo (same left and right), first 3 s (flac_to_opus_webm).
ff -i "$work/music48.wav" -t 3 -af 'pan=stereo|c0=c0|c1=c0' -c:a flac -compression_level 8 "${exact[@]}" "$out/music.flac"

# --- tone_440.wav: 2 s of a 440 Hz sine at half scale (-6 dBFS peak), 48 kHz mono 16-bit PCM
# (wav_to_opus_ogg, resample_16k_mono_wav).
ff -f lavfi -i "aevalsrc=exprs='0.5*sin(2*PI*440*t)':s=48000:d=2:c=mono" \
  -c:a pcm_s16le "${exact[@]}" "$out/tone_440.wav"

echo "make_sample_media: wrote to $out/"
( cd "$out" && ls -l speech.ogg speech.mp3 speech.m4a music.ogg music.flac tone_440.wav \
    | awk '{ total += $5; print "  " $9 "  " $5 " bytes" } END { print "  total " total " bytes" }' )

"""Commands to browse and hear the sound bank: ``avworld sounds list`` and ``avworld sounds play``.

``list`` prints every built-in sound type with its category, kind, natural clip length,
clip count and how its clips split into train / val / test (the unheard-sounds protocol,
:func:`~avworld.sounds.splits.split_clips`); ``--json`` prints the same as JSON.
``play TYPE --out FILE.wav`` writes a clip of one type (seeded: the same seed, type and
clip give the same samples as the simulator hears). numpy / scipy / soundfile only.
"""

from __future__ import annotations

import json
from pathlib import Path

from avworld.sounds.registry import SoundError, UnknownSoundError, close_matches

AUDIO_SUFFIXES = {".wav": "PCM_16", ".flac": "PCM_16", ".ogg": "VORBIS"}
MAX_PLAY_S = 600.0
TEXTURES = {"solo": "solo", "bass": "with a bass line", "chords": "with chords", "arpeggio": "arpeggiated"}


class SoundCliError(SoundError):
    """Bad command-line input for ``avworld sounds``."""


def add_commands(sub) -> None:
    """Add ``sounds list`` and ``sounds play`` to the ``avworld`` sub-command parsers."""
    sounds = sub.add_parser("sounds", help="browse and hear the built-in sound bank (list, play)",
                            description="The built-in sound bank: rings and alarms, 100 synthetic speakers, music "
                                        "and background textures, all synthesized from a seed (docs/sounds.md).")
    ssub = sounds.add_subparsers(dest="sounds_command", required=True)

    ls = ssub.add_parser("list", help="sound types with category, kind, clip length, clips and their split")
    ls.add_argument("--category", choices=["static", "dynamic"], default=None,
                    help="only static (periodic: rings, alarms) or dynamic (speech, music, background) types")
    ls.add_argument("--kind", default=None,
                    help="only one kind: ring, alarm, beeper, chime, clock, speech, music or background")
    ls.add_argument("--json", action="store_true", help="print a JSON list (one object per type) instead of a table")
    _bank_options(ls)
    ls.set_defaults(func=_cmd_list)

    play = ssub.add_parser("play", help="write a clip of one sound type to a .wav/.flac/.ogg file")
    play.add_argument("type", metavar="TYPE", help="sound type, e.g. telephone_ringing or speaker_017 "
                                                   "(`avworld sounds list` shows them)")
    play.add_argument("--out", required=True, help="output audio file (.wav, .flac or .ogg)")
    play.add_argument("--duration", type=float, default=5.0,
                      help="seconds to write (default 5); periodic sounds loop seamlessly")
    play.add_argument("--clip", type=int, default=0,
                      help="clip index of the type (default 0; `sounds list` shows how many clips each has)")
    _bank_options(play)
    play.set_defaults(func=_cmd_play)


def _bank_options(parser) -> None:
    parser.add_argument("--seed", type=int, default=0,
                        help="sound bank seed (default 0, the simulator's): another seed, other voices and clips")
    parser.add_argument("--sample-rate", type=int, default=16000, help="sample rate in Hz, >= 8000 (default 16000)")


def _bank(args):
    from avworld.sounds.bank import SoundBank

    return SoundBank(sample_rate_hz=args.sample_rate, seed=args.seed)


def check_type(bank, name: str) -> None:
    """:class:`UnknownSoundError` with "did you mean" close matches if ``bank`` has no type ``name``."""
    if name in bank:
        return
    hint = close_matches(name, bank.names())
    msg = f"unknown sound type {name!r}"
    msg += f"; did you mean {', '.join(map(repr, hint))}?" if hint else ""
    raise UnknownSoundError(msg + " (`avworld sounds list` shows all types)")


def sound_table(bank, category: str | None = None, kind: str | None = None) -> list[dict]:
    """One dict per type: name, category, kind, duration_s, clips, split counts, description."""
    from avworld.sounds.splits import split_clips

    kinds = sorted({t.kind for t in bank.types})
    if kind is not None and kind not in kinds:
        hint = close_matches(kind, kinds)
        raise SoundCliError(f"unknown kind {kind!r}" + (f"; did you mean {hint[0]!r}?" if hint else "") +
                            f" (kinds: {', '.join(kinds)})")
    names = bank.names(category, kind)
    splits = split_clips(bank, types=names)
    counts = {n: dict.fromkeys(splits, 0) for n in names}
    for split, clips in splits.items():
        for name, _ in clips:
            counts[name][split] += 1
    rows = []
    for name in names:
        t = bank.get(name)
        rows.append({"type": name, "category": t.category, "kind": t.kind,
                     "duration_s": bank.natural_duration_s(name), "clips": bank.num_clips(name),
                     "split": counts[name], "description": describe(t)})
    return rows


def describe(sound_type) -> str:
    """A few words on what a type sounds like (from its synthesis parameters)."""
    p = sound_type.param_dict
    if "description" in p:
        return str(p["description"])
    if sound_type.kind == "speech" and "f0_hz" in p:
        return f"{'female' if p.get('female') else 'male'} voice, mean F0 {p['f0_hz']:.0f} Hz, " \
               f"{p.get('syllables_per_s', 0):.1f} syllables/s"
    if sound_type.kind == "music" and "instrument" in p:
        texture = TEXTURES.get(p.get("texture"), p.get("texture", ""))
        return f"{p['instrument']}, {p.get('scale', '?')} scale, {p.get('tempo_bpm', 0):.0f} bpm, {texture}"
    if sound_type.kind == "background":
        return f"{sound_type.name.removeprefix('bg_')} texture"
    return sound_type.kind


def _cmd_list(args) -> int:
    rows = sound_table(_bank(args), args.category, args.kind)
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    header = ("type", "category", "kind", "clip s", "clips", "train/val/test", "description")
    lines = [header] + [(r["type"], r["category"], r["kind"], f"{r['duration_s']:g}", str(r["clips"]),
                         "/".join(str(v) for v in r["split"].values()), r["description"]) for r in rows]
    widths = [max(len(line[k]) for line in lines) for k in range(len(header) - 1)]
    for line in lines:
        print("  ".join(v.ljust(w) for v, w in zip(line, widths)) + "  " + line[-1])
    print(f"{len(rows)} types; clip s: a static type's one cycle (it loops), a dynamic type's clip length; "
          f"train/val/test: its clips in the unheard-sounds split (docs/sounds.md)")
    return 0


def write_clip(bank, name: str, out: str | Path, duration_s: float = 5.0, clip: int = 0) -> dict:
    """Write ``duration_s`` seconds of clip ``clip`` of type ``name`` to ``out``; returns what was written."""
    import numpy as np
    import soundfile as sf

    out = Path(out)
    if out.suffix.lower() not in AUDIO_SUFFIXES:
        raise SoundCliError(f"--out {out}: write a {', '.join(AUDIO_SUFFIXES)} file (e.g. {out.stem}.wav)")
    if not (np.isfinite(duration_s) and 0 < duration_s <= MAX_PLAY_S):
        raise SoundCliError(f"--duration must be in (0, {MAX_PLAY_S:g}] seconds, got {duration_s}")
    check_type(bank, name)
    fs = bank.sample_rate_hz
    n = max(1, int(round(duration_s * fs)))
    x = np.asarray(bank.clip(name, clip, duration_s=duration_s), dtype=np.float32)
    x = np.tile(x, -(-n // len(x)))[:n]  # static clips are whole cycles (>= duration): cut to the length asked
    out.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(out), x, fs, subtype=AUDIO_SUFFIXES[out.suffix.lower()])
    t = bank.get(name)
    return {"out": str(out), "type": name, "category": t.category, "kind": t.kind, "clip": clip,
            "duration_s": n / fs, "sample_rate_hz": fs, "seed": bank.config.seed}


def _cmd_play(args) -> int:
    info = write_clip(_bank(args), args.type, args.out, args.duration, args.clip)
    print(f"wrote {info['out']}: {info['type']} ({info['category']} {info['kind']}) clip {info['clip']}, "
          f"{info['duration_s']:g} s at {info['sample_rate_hz']} Hz, seed {info['seed']}")
    return 0

"""User audio: load_audio (mixdown, resampling, errors) and folders in flat / LibriSpeech / ESC-50 / MUSIC layouts."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from avworld.sounds import (
    REFERENCE_RMS_DBFS,
    AudioFileError,
    CombinedSource,
    SampleRateError,
    SoundBank,
    SoundError,
    UnknownSoundError,
    UserSoundFolder,
    active_rms,
    load_audio,
)

FS = 16000


def tone(freq_hz: float, seconds: float, fs: int, channels: int = 1, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(round(seconds * fs))) / fs
    x = amp * np.sin(2 * np.pi * freq_hz * t)
    return x if channels == 1 else np.stack([x * (1 + 0.1 * c) for c in range(channels)], axis=1)


def write(path, data, fs, **kw):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), data, fs, **kw)
    return path


def peak_hz(x: np.ndarray, fs: int) -> float:
    spec = np.abs(np.fft.rfft(x.astype(np.float64) * np.hanning(x.size)))
    return float(np.fft.rfftfreq(x.size, 1 / fs)[np.argmax(spec)])


# ---------------------------------------------------------------- load_audio
def test_load_audio_mixes_down_and_resamples(tmp_path):
    p = write(tmp_path / "stereo.wav", tone(440.0, 1.5, 44100, channels=2), 44100, subtype="PCM_16")
    x = load_audio(p, FS)
    assert x.dtype == np.float32 and x.ndim == 1 and x.size == round(1.5 * FS)
    assert peak_hz(x, FS) == pytest.approx(440.0, abs=2.0)
    assert np.sqrt(np.mean(x[1000:-1000] ** 2)) == pytest.approx(0.3 * 1.05 / np.sqrt(2), rel=0.02)
    for fmt, rate in (("flac", 22050), ("ogg", 48000)):
        q = write(tmp_path / f"mono.{fmt}", tone(1000.0, 1.0, rate), rate)
        y = load_audio(q, FS)
        assert y.size == pytest.approx(FS, abs=1) and peak_hz(y, FS) == pytest.approx(1000.0, abs=3.0)
    same = write(tmp_path / "same.wav", tone(300.0, 0.5, FS), FS, subtype="FLOAT")
    assert np.allclose(load_audio(same, FS, resample_to_rate=False), tone(300.0, 0.5, FS), atol=1e-6)


def test_load_audio_errors(tmp_path):
    with pytest.raises(AudioFileError, match="does not exist"):
        load_audio(tmp_path / "missing.wav", FS)
    with pytest.raises(AudioFileError, match="not a file"):
        load_audio(tmp_path, FS)
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"this is not audio" * 50)
    with pytest.raises(AudioFileError, match="cannot read audio file .*junk.wav"):
        load_audio(junk, FS)
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(200))
    with pytest.raises(AudioFileError, match="ffmpeg"):
        load_audio(video, FS)
    empty = write(tmp_path / "empty.wav", np.zeros(0), FS)
    with pytest.raises(AudioFileError, match="no samples"):
        load_audio(empty, FS)
    nan = write(tmp_path / "nan.wav", np.array([0.0, np.nan, 0.1]), FS, subtype="FLOAT")
    with pytest.raises(AudioFileError, match="NaN"):
        load_audio(nan, FS)
    ok = write(tmp_path / "ok.wav", tone(440.0, 0.2, 44100), 44100)
    for bad in (0, -16000, 16000.0, "16000", True, None):
        with pytest.raises(SampleRateError, match="sample_rate_hz"):
            load_audio(ok, bad)
    with pytest.raises(SampleRateError, match="44100 Hz but 16000 Hz is required"):
        load_audio(ok, FS, resample_to_rate=False)


# ---------------------------------------------------------------- folder layouts
def make_librispeech(root, fs=FS, subset="train-clean-100"):
    base = root / subset if subset else root
    for spk, freq in (("19", 200.0), ("250", 330.0)):
        for chap in ("198", "1001"):
            for utt in range(3):
                name = f"{spk}-{chap}-{utt:04d}.flac"
                write(base / spk / chap / name, tone(freq * (1 + 0.01 * utt), 1.0 + 0.5 * utt, fs), fs)
        (base / spk / "198" / f"{spk}-198.trans.txt").write_text("TEXT\n")
    return root


def test_librispeech_layout(tmp_path):
    root = make_librispeech(tmp_path / "LibriSpeech", fs=44100)
    src = UserSoundFolder(root, FS)  # auto-detected, subset folder found
    assert src.layout == "librispeech"
    assert src.names() == ["libri_19", "libri_250"]
    t = src.get("libri_19")
    assert t.kind == "speech" and t.category == "dynamic" and src.num_clips("libri_19") == 6
    assert [f.name for f in src.files("libri_19", 0)] == ["19-198-0000.flac"]
    x = src.clip("libri_250", 1)
    assert x.dtype == np.float32 and x.size == round(1.5 * FS)  # 44.1 kHz stereo-free flac resampled
    assert peak_hz(x, FS) == pytest.approx(330.0 * 1.01, abs=2.0)
    assert 20 * np.log10(active_rms(x, FS)) == pytest.approx(REFERENCE_RMS_DBFS, abs=0.05)
    # the paper's long clips: utterances of a speaker joined until >= 4 s
    joined = UserSoundFolder(root / "train-clean-100", FS, layout="librispeech", min_clip_s=4.0)
    assert joined.num_clips("libri_19") == 2  # 1 + 1.5 + 2 s per chapter
    assert [f.name for f in joined.files("libri_19", 1)] == ["19-1001-0000.flac", "19-1001-0001.flac",
                                                             "19-1001-0002.flac"]
    assert joined.clip("libri_19", 0).size == round(4.5 * FS)
    assert joined.clip("libri_19", 0, duration_s=2.0).size == 2 * FS
    longer = UserSoundFolder(root, FS, min_clip_s=5.0)
    assert longer.num_clips("libri_19") == 1 and longer.clip("libri_19", 0).size == 9 * FS  # remainder joins
    tiny = UserSoundFolder(root, FS, min_clip_s=20.0)  # a speaker with only 9 s: looped to 27 s
    assert tiny.num_clips("libri_19") == 1 and tiny.clip("libri_19", 0).size == 27 * FS


def make_esc50(root, with_meta=True):
    rows = ["filename,fold,target,category,esc10,src_file,take"]
    for target, category, freq in ((0, "dog", 500.0), (38, "clock_tick", 2000.0)):
        for k, take in enumerate("AB"):
            name = f"{k + 1}-1000{target}-{take}-{target}.wav"
            write(root / "audio" / name, tone(freq, 5.0, 44100, channels=2), 44100)
            rows.append(f"{name},{k + 1},{target},{category},False,1000{target},{take}")
    if with_meta:
        (root / "meta").mkdir(parents=True, exist_ok=True)
        (root / "meta" / "esc50.csv").write_text("\n".join(rows) + "\n")
    return root


def test_esc50_layout(tmp_path):
    src = UserSoundFolder(make_esc50(tmp_path / "ESC-50-master"), FS, min_clip_s=20.0, static_types=["clock_tick"])
    assert src.layout == "esc50"
    assert src.names() == ["esc50_clock_tick", "esc50_dog"]
    assert src.get("esc50_clock_tick").category == "static" and src.get("esc50_dog").kind == "background"
    x = src.clip("esc50_dog", 1)
    assert x.size == 20 * FS  # a 5 s clip repeated 4 times, as in the paper
    assert np.allclose(x[: 5 * FS], x[5 * FS : 10 * FS])
    plain = UserSoundFolder(make_esc50(tmp_path / "nometa", with_meta=False), FS)
    assert plain.names() == ["esc50_class_00", "esc50_class_38"] and plain.clip("esc50_class_00").size == 5 * FS


def test_music_layout(tmp_path):
    for inst, freq in (("acoustic_guitar", 196.0), ("violin", 659.0)):
        for k in range(2):
            write(tmp_path / "MUSIC" / "solo" / inst / f"vid{k}.wav", tone(freq, 2.0, 22050), 22050)
    write(tmp_path / "MUSIC" / "duet" / "violin_guitar" / "v.wav", tone(300.0, 1.0, 22050), 22050)
    src = UserSoundFolder(tmp_path / "MUSIC", FS, layout="music")
    assert src.names() == ["music_acoustic_guitar", "music_violin"]
    assert src.get("music_violin").kind == "music" and src.num_clips("music_violin") == 2
    assert peak_hz(src.clip("music_violin", 0), FS) == pytest.approx(659.0, abs=2.0)


def test_flat_layout(tmp_path):
    write(tmp_path / "rain_01.wav", tone(100.0, 0.5, FS), FS)
    write(tmp_path / "rain_02.wav", tone(110.0, 0.5, FS), FS)
    write(tmp_path / "kettle.ogg", tone(900.0, 0.5, FS), FS)
    write(tmp_path / "voices" / "alice" / "a.wav", tone(220.0, 0.5, FS), FS)
    (tmp_path / "notes.txt").write_text("not audio")
    src = UserSoundFolder(tmp_path, FS)
    assert src.layout == "flat"
    assert src.names() == ["kettle", "rain", "voices"]
    assert src.num_clips("rain") == 2 and src.get("rain").kind == "user"
    raw = UserSoundFolder(tmp_path, FS, prefix="my_", normalize=False)
    assert np.allclose(raw.clip("my_rain", 1), tone(110.0, 0.5, FS), atol=1e-4)  # 16-bit wav, no scaling
    assert np.corrcoef(raw.clip("my_kettle"), tone(900.0, 0.5, FS))[0, 1] > 0.99  # lossy ogg


def test_combined_with_builtin_bank(tmp_path):
    libri = UserSoundFolder(make_librispeech(tmp_path / "ls", subset=None), FS)
    esc = UserSoundFolder(make_esc50(tmp_path / "esc"), FS)
    both = CombinedSource([libri, esc, SoundBank(num_speakers=2, num_music=1, num_background=1)])
    assert {"libri_19", "esc50_dog", "speaker_001", "telephone"} <= set(both.names())
    assert both.clip("esc50_dog").size == 5 * FS and both.num_clips("speaker_001") == 25
    with pytest.raises(SoundError, match="appears in two sources"):
        CombinedSource([libri, libri])
    with pytest.raises(SampleRateError, match="one sample rate"):
        CombinedSource([libri, UserSoundFolder(tmp_path / "esc", 22050)])


def test_folder_errors(tmp_path):
    with pytest.raises(SoundError, match="does not exist"):
        UserSoundFolder(tmp_path / "nowhere", FS)
    (tmp_path / "empty").mkdir()
    with pytest.raises(SoundError, match="no audio files"):
        UserSoundFolder(tmp_path / "empty", FS)
    (tmp_path / "videos" / "violin").mkdir(parents=True)
    (tmp_path / "videos" / "violin" / "a.mp4").write_bytes(b"\x00" * 10)
    with pytest.raises(SoundError, match="extract their audio"):
        UserSoundFolder(tmp_path / "videos", FS, layout="music")
    with pytest.raises(SoundError, match="layout must be one of"):
        UserSoundFolder(tmp_path, FS, layout="timit")
    with pytest.raises(SampleRateError):
        UserSoundFolder(tmp_path, 0)
    write(tmp_path / "bad" / "x_1.wav", tone(100.0, 0.5, FS), FS)
    (tmp_path / "bad" / "x_2.wav").write_bytes(b"garbage" * 100)
    src = UserSoundFolder(tmp_path / "bad", FS)
    assert src.clip("x", 0).size == FS // 2
    with pytest.raises(AudioFileError, match="x_2.wav"):
        src.clip("x", 1)
    with pytest.raises(AudioFileError, match="x_2.wav"):
        UserSoundFolder(tmp_path / "bad", FS, min_clip_s=2.0)
    with pytest.raises(UnknownSoundError, match="did you mean 'x'"):
        src.clip("xx")
    write(tmp_path / "quiet" / "q.wav", np.zeros(800), FS)
    with pytest.raises(AudioFileError, match="silent"):
        UserSoundFolder(tmp_path / "quiet", FS).clip("q")

"""π-AVAS data: per environment, source audio x_tx, listener poses, and aligned x_sim / x_rx.

Layout of a data folder (one ``.npz`` per environment and source placement, a "video")::

    manifest.json                 config, format version
    env000_p0.npz ... envNNN_pK.npz

Each ``.npz`` holds ``x_tx`` (N, T) float32, ``x_sim`` and ``x_rx`` (N, 2, T) float32, ``poses``
(N, 4) listener (x, y, z, yaw_rad), ``source`` (3,), and scalars ``sample_rate_hz``, ``env``,
``placement``, ``sound``. The seed's protocol: placement 0 of every environment is the training
"video", the other placements are held out (:func:`load_split`).

Generation is seeded (same config, same bytes), resumable (a file is written atomically and never
rewritten; a run continues with the files that are missing) and shows a progress bar.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from avworld.data.synthesis_scenes import (
    Environment,
    LengthMismatchError,
    SampleRateMismatchError,
    SimPhysics,
    SynthesisDataError,
)

FORMAT, VERSION = "avworld-synthesis", 1


@dataclass(frozen=True)
class SynthesisDataConfig:
    """What :func:`generate` builds. Defaults: the ``cpu`` preset's data."""

    num_envs: int = 6
    num_rooms: int = 6
    house_seed: int = 0
    #: source placements ("videos") per environment: the first trains, the others are held out
    placements: int = 3
    poses_per_placement: int = 48
    clip_s: float = 0.5
    #: source audio played before each clip so the clip hears a steady reverberant field
    preroll_s: float = 0.5
    sample_rate_hz: int = 16000
    kinds: tuple[str, ...] = ("speech", "music")
    source_height_m: float = 1.2
    listener_height_m: float = 1.5
    min_distance_m: float = 0.7
    max_distance_m: float = 6.0
    #: microphone noise of x_rx (white, seeded), relative to the example's clean RMS
    mic_snr_db: float = 40.0
    rx_ism_order: int = 3
    #: source audio RMS (the bank's clips are rescaled to it)
    source_rms: float = 0.1
    sim: SimPhysics = field(default_factory=SimPhysics)
    seed: int = 0

    def __post_init__(self) -> None:
        def bad(name, msg):
            raise SynthesisDataError(f"SynthesisDataConfig.{name}: {msg}")

        if isinstance(self.sim, dict):
            object.__setattr__(self, "sim", SimPhysics(**self.sim))
        object.__setattr__(self, "kinds", tuple(self.kinds))
        if self.num_envs < 1:
            bad("num_envs", f"needs at least 1, got {self.num_envs}")
        if self.placements < 2:
            bad("placements", f"needs at least 2 (one to train on, one held out), got {self.placements}")
        if self.poses_per_placement < 1:
            bad("poses_per_placement", f"needs at least 1, got {self.poses_per_placement}")
        if not 0.05 <= self.clip_s <= 10:
            bad("clip_s", f"must lie in [0.05, 10] s, got {self.clip_s}")
        if not set(self.kinds) <= {"speech", "music"} or not self.kinds:
            bad("kinds", f"pick from ('speech', 'music'), got {self.kinds}")
        if not 0 < self.min_distance_m < self.max_distance_m:
            bad("min_distance_m", "needs 0 < min_distance_m < max_distance_m")

    @property
    def clip_samples(self) -> int:
        return int(round(self.clip_s * self.sample_rate_hz))

    def to_dict(self) -> dict:
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_dict(cls, d: dict) -> SynthesisDataConfig:
        d = dict(d)
        d["sim"] = SimPhysics(**d.get("sim", {}))
        return cls(**d)


def _rng(seed: int, *parts) -> np.random.Generator:
    h = hashlib.sha256(repr((int(seed),) + parts).encode()).digest()
    return np.random.default_rng(int.from_bytes(h[:8], "little"))


def check_example(x_tx, x_sim, x_rx, rates=None) -> None:
    """Typed errors when x_tx (T,) / x_sim (2, T) / x_rx (2, T) disagree in length or sample rate.

    ``rates`` is an optional (rate_tx, rate_sim, rate_rx) triple.
    """
    if rates is not None and len(set(int(r) for r in rates)) != 1:
        raise SampleRateMismatchError(
            f"x_tx, x_sim and x_rx have sample rates {tuple(int(r) for r in rates)} Hz; resample them to one rate")
    x_tx, x_sim, x_rx = (np.asarray(a) for a in (x_tx, x_sim, x_rx))
    if x_sim.ndim != 2 or x_sim.shape[0] != 2 or x_rx.ndim != 2 or x_rx.shape[0] != 2:
        raise LengthMismatchError(f"x_sim and x_rx must be binaural (2, T), got {x_sim.shape} and {x_rx.shape}")
    lengths = (x_tx.shape[-1], x_sim.shape[-1], x_rx.shape[-1])
    if len(set(lengths)) != 1:
        raise LengthMismatchError(
            f"x_tx, x_sim and x_rx have {lengths} samples; cut them to the same time span before training")


def _placement(env: Environment, cfg: SynthesisDataConfig, rng: np.random.Generator) -> tuple[np.ndarray, list]:
    """A source position and the listener poses (x, y, z, yaw) within the distance range."""
    src_xy = env.nav.sample_navigable(rng, 1)[0]
    src = np.array([src_xy[0], src_xy[1], cfg.source_height_m])
    poses = []
    tries = 0
    while len(poses) < cfg.poses_per_placement:
        tries += 1
        if tries > 2000 * cfg.poses_per_placement:
            raise SynthesisDataError(f"env seed {env.seed}: too few listener points within "
                                     f"{cfg.min_distance_m}-{cfg.max_distance_m} m of the source")
        xy = env.nav.sample_navigable(rng, 1)[0]
        d = np.linalg.norm(xy - src_xy)
        if cfg.min_distance_m <= d <= cfg.max_distance_m:
            poses.append((xy[0], xy[1], cfg.listener_height_m, rng.uniform(-np.pi, np.pi)))
    return src, poses


def _source_audio(bank, cfg: SynthesisDataConfig, env_i: int, placement: int, rng) -> tuple[str, np.ndarray]:
    kind = cfg.kinds[(env_i * cfg.placements + placement) % len(cfg.kinds)]
    names = bank.names("dynamic", kind=kind)
    name = names[int(rng.integers(len(names)))]
    clip = np.asarray(bank.clip(name, index=int(rng.integers(bank.num_clips(name)))), np.float64)
    clip = clip * (cfg.source_rms / max(float(np.sqrt(np.mean(clip ** 2))), 1e-9))
    return name, clip


def generate_placement(env: Environment, bank, cfg: SynthesisDataConfig, env_i: int, placement: int) -> dict:
    """One "video": a source placement, its source audio and every pose's (x_tx, x_sim, x_rx)."""
    rng = _rng(cfg.seed, "placement", env_i, placement)
    src, poses = _placement(env, cfg, rng)
    name, clip = _source_audio(bank, cfg, env_i, placement, rng)
    T = cfg.clip_samples
    pre = int(round(cfg.preroll_s * cfg.sample_rate_hz))
    span = T + pre
    if len(clip) < span:
        clip = np.tile(clip, int(np.ceil(span / len(clip))) + 1)
    n = len(poses)
    x_tx = np.zeros((n, T), np.float32)
    x_sim = np.zeros((n, 2, T), np.float32)
    x_rx = np.zeros((n, 2, T), np.float32)
    hop = max(1, (len(clip) - span) // max(n, 1))
    for k, (x, y, z, yaw) in enumerate(poses):
        seg = clip[k * hop: k * hop + span]
        sim, rx = env.render(src, (x, y, z), yaw, seg)
        x_tx[k] = seg[pre:]
        x_sim[k] = sim[:, pre:]
        clean = rx[:, pre:]
        rms = float(np.sqrt(np.mean(clean.astype(np.float64) ** 2)))
        noise = rng.standard_normal(clean.shape) * rms * 10.0 ** (-cfg.mic_snr_db / 20.0)
        x_rx[k] = clean + noise.astype(np.float32)
    return {"x_tx": x_tx, "x_sim": x_sim, "x_rx": x_rx, "poses": np.asarray(poses, np.float64),
            "source": src, "sample_rate_hz": np.int64(cfg.sample_rate_hz), "env": np.int64(env_i),
            "placement": np.int64(placement), "sound": np.str_(name),
            "scene_hash": np.str_(env.scene.content_hash)}


def file_name(env_i: int, placement: int) -> str:
    return f"env{env_i:03d}_p{placement}.npz"


def _write_atomic(path: Path, arrays: dict) -> None:
    tmp = path.with_name(path.name + ".tmp.npz")
    try:
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _check_manifest(out: Path, cfg: SynthesisDataConfig) -> None:
    man = out / "manifest.json"
    want = {"format": FORMAT, "version": VERSION, "config": cfg.to_dict()}
    if man.exists():
        have = json.loads(man.read_text())
        if have != want:
            raise SynthesisDataError(
                f"{out} holds π-AVAS data of another config; use a new --out folder (or the same options) "
                "to resume")
    else:
        out.mkdir(parents=True, exist_ok=True)
        man.write_text(json.dumps(want, indent=1))


def generate(cfg: SynthesisDataConfig, out_dir: str | Path, progress: bool = True) -> list[Path]:
    """Write every (environment, placement) file that is not there yet; returns all the files."""
    from rich.progress import Progress

    from avworld.sounds import SoundBank

    out = Path(out_dir)
    _check_manifest(out, cfg)
    bank = SoundBank(sample_rate_hz=cfg.sample_rate_hz, seed=cfg.seed)
    todo = [(e, p) for e in range(cfg.num_envs) for p in range(cfg.placements)]
    paths = [out / file_name(e, p) for e, p in todo]
    missing = [(e, p) for (e, p), path in zip(todo, paths) if not path.exists()]
    hrtfs: dict = {}
    with Progress(disable=not progress) as bar:
        task = bar.add_task("π-AVAS data", total=len(todo), completed=len(todo) - len(missing))
        env, env_i = None, -1
        for e, p in missing:
            if e != env_i:
                env = Environment(cfg.house_seed + e, cfg.num_rooms, cfg.sample_rate_hz, cfg.sim,
                                  cfg.rx_ism_order, hrtfs)
                env_i = e
            _write_atomic(out / file_name(e, p), generate_placement(env, bank, cfg, e, p))
            bar.advance(task)
    return paths


def manifest_config(data_dir: str | Path) -> dict:
    """The ``config`` entry of a data folder's manifest (generated or converted from RWAVS)."""
    man = Path(data_dir) / "manifest.json"
    if not man.exists():
        raise SynthesisDataError(f"{data_dir}: no manifest.json; build the data with `avworld synthesis data`")
    d = json.loads(man.read_text())
    if d.get("format") != FORMAT:
        raise SynthesisDataError(f"{man}: not π-AVAS data (format {FORMAT!r} expected)")
    return d["config"]


def read_config(data_dir: str | Path) -> SynthesisDataConfig:
    """The :class:`SynthesisDataConfig` a data folder was generated with."""
    return SynthesisDataConfig.from_dict(manifest_config(data_dir))


def load_split(data_dir: str | Path, split: str, envs: list[int] | None = None) -> dict:
    """Concatenated arrays of one split: ``train`` = placement 0 of every environment, ``test`` = the rest.

    Also ``env`` and ``placement`` (N,) per example and ``source`` (N, 3).
    """
    if split not in ("train", "test", "all"):
        raise SynthesisDataError(f"split must be 'train', 'test' or 'all', got {split!r}")
    data_dir = Path(data_dir)
    files = sorted(data_dir.glob("env*_p*.npz"))
    if not files:
        raise SynthesisDataError(f"{data_dir}: no env*_p*.npz files; build them with `avworld synthesis data`")
    parts: dict[str, list] = {k: [] for k in ("x_tx", "x_sim", "x_rx", "poses", "source", "env", "placement")}
    rate = None
    for f in files:
        with np.load(f) as z:
            pl, e = int(z["placement"]), int(z["env"])
            if (split == "train" and pl != 0) or (split == "test" and pl == 0) or (envs is not None and e not in envs):
                continue
            n = len(z["x_tx"])
            sr = int(z["sample_rate_hz"])
            if rate is not None and sr != rate:
                raise SampleRateMismatchError(f"{f}: {sr} Hz, other files {rate} Hz")
            rate = sr
            for k in ("x_tx", "x_sim", "x_rx", "poses"):
                parts[k].append(z[k])
            parts["source"].append(np.repeat(z["source"][None], n, 0))
            parts["env"].append(np.full(n, e))
            parts["placement"].append(np.full(n, pl))
    if rate is None:
        raise SynthesisDataError(f"{data_dir}: no examples in split {split!r}")
    out = {k: np.concatenate(v) for k, v in parts.items()}
    out["sample_rate_hz"] = rate
    return out

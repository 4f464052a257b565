"""The navigation demo (``avworld demo``): a house, a ringing phone, two agents, one HTML report.

Writes ``report.html`` with the top-down map and the agents' paths (metre ticks, scale bar,
room labels, legend) beside an egocentric video with the binaural audio track per agent
(each view upscaled to at least 256 px), the spectrograms of what each heard, the binaural
RIR at the start pose, and the metrics table (the demo episode plus a few more in the
same house). With a navigation checkpoint (``DemoConfig.checkpoint``; ``avworld demo`` shows the
shipped AV-Nav agent, see :mod:`avworld.viz.demo_agent`), the trained agent runs the
same episodes as a third agent, in an env built as it was trained (image size, pointgoal).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from avworld.acoustics.features import stft_magnitude
from avworld.acoustics.synthesis import binaural_rir, mono_rir
from avworld.eval.nav_metrics import aggregate, format_table
from avworld.eval.nav_runner import Rollout, run_episode
from avworld.sim.config import PRESETS as MOTION_PRESETS
from avworld.tasks.audiogoal import AudioGoalEnv
from avworld.tasks.baselines import make_agent
from avworld.tasks.episodes import EpisodeConfig, make_episodes
from avworld.viz.colorize import _RAMP, depth_to_rgb
from avworld.viz.demo_agent import DEFAULT_CHECKPOINTS, default_checkpoint  # noqa: F401 (re-exported)
from avworld.viz.html import HtmlReport
from avworld.viz.rir_report import write_rir_report
from avworld.viz.video import write_video_with_audio

PATH_COLOURS = {"oracle": (30, 110, 230), "heuristic": (230, 80, 30), "random": (120, 120, 120),
                "forward": (150, 60, 170), "learned": (20, 150, 60)}


class DemoError(ValueError):
    """The demo cannot run as configured (e.g. a checkpoint without torch installed)."""


@dataclass(frozen=True)
class DemoConfig:
    """What the demo simulates: house ``house_seed`` with ``rooms`` rooms, ``episodes`` episodes."""

    house_seed: int = 3
    rooms: int = 4
    episodes: int = 4
    agents: tuple[str, ...] = ("oracle", "heuristic")
    image_size: int = 128
    step_limit: int = 200
    seed: int = 0
    checkpoint: str | None = None  # a trained navigation agent (``avworld train nav``) to show as "learned"
    learned_note: str = ""  # without a checkpoint: why the report shows no learned agent


def _spectrogram_image(audio: np.ndarray, sample_rate_hz: int) -> np.ndarray:
    """(2, n) audio -> an image of both ears' STFT magnitude in dB (left on top), time to the right."""
    rows = []
    for ch in audio:
        mag = stft_magnitude(ch[None], n_fft=512, hop_length=160, win_length=400)[0]  # (F, T)
        db = 20 * np.log10(mag + 1e-6)
        x = np.clip((db - (db.max() - 70.0)) / 70.0, 0, 1)[::-1] * (len(_RAMP) - 1)  # low frequencies at the bottom
        i = np.minimum(x.astype(int), len(_RAMP) - 2)
        f = (x - i)[..., None]
        rows.append((_RAMP[i] * (1 - f) + _RAMP[i + 1] * f).astype(np.uint8))
        rows.append(np.full((4, x.shape[1], 3), 255, np.uint8))
    img = np.concatenate(rows[:-1], axis=0)
    return np.asarray(Image.fromarray(img).resize((min(1200, max(300, img.shape[1] * 2)), img.shape[0])))


#: Each egocentric view in the demo videos is upscaled (nearest neighbour, by a whole factor of
#: at least 2) to at least this many pixels: 128 px baselines play at 2x, 64 px learned agents at 4x.
VIDEO_VIEW_PX = 256


def video_scale(size: int) -> int:
    """The whole upscaling factor (>= 2) that shows a ``size`` px view at >= :data:`VIDEO_VIEW_PX` px."""
    return max(2, -(-VIDEO_VIEW_PX // max(1, int(size))))


def _frames(ro: Rollout, size: int, max_depth_m: float) -> np.ndarray:
    """Video frames: RGB | depth, each view upscaled by :func:`video_scale` for viewing."""
    k = video_scale(size)
    frames = []
    for rgb, depth in zip(ro.rgb, ro.depth):
        strip = np.concatenate([rgb, depth_to_rgb(depth[..., 0] * max_depth_m, max_depth_m)], axis=1)
        frames.append(np.asarray(Image.fromarray(strip).resize((2 * k * size, k * size), Image.NEAREST)))
    return np.stack(frames)


def _map_with_paths(env: AudioGoalEnv, rollouts: dict[str, Rollout]) -> np.ndarray:
    """The framed map (metre ticks, scale bar, room labels, legend beside it) with every agent's path."""
    from avworld.viz.map_figure import map_figure

    ep = env.episode
    paths = {name: (np.asarray(ro.poses, float)[:, :2], PATH_COLOURS.get(name, (0, 0, 0)))
             for name, ro in rollouts.items()}
    return map_figure(env.world_.scene, env.world_.nav, 40.0, sources=[ep.source_position], goal=ep.goal_xy,
                      agent=ep.start_pose, paths=paths)


def _load_learned(config: DemoConfig):
    """The checkpoint's :class:`LearnedAgent` (loaded once) and the env options it was trained with."""
    try:
        from avworld.train.nav import LearnedAgent
    except ImportError as exc:
        raise DemoError(f"showing the checkpoint {config.checkpoint} needs torch ({exc}); install "
                        "avworld[torch] or run the demo without a checkpoint") from None
    path = Path(config.checkpoint)
    if not path.exists():
        raise DemoError(f"checkpoint {path} does not exist; train one with `avworld train nav` or leave it out")
    loaded = LearnedAgent.from_checkpoint(path, seed=config.seed, device="cpu")
    return loaded, loaded.checkpoint.get("run_info", {}).get("env", {})


def _learned_run(config: DemoConfig, episodes, loaded, saved: dict, motion: str) -> tuple:
    """("learned", env, agent factory, image size): the loaded agent in an env shaped like its training env."""
    from avworld.train.nav import LearnedAgent

    size = int(saved.get("size", config.image_size))
    env = AudioGoalEnv(episodes=episodes, width=size, height=size, step_limit=config.step_limit, seed=config.seed,
                       pointgoal=bool(saved.get("pointgoal", False)), preset=motion)  # audiovisual: rgb for video

    def make():  # a fresh agent (same seed) per episode, like the baselines, on the policy loaded once
        return LearnedAgent(loaded.policy, seed=config.seed, device="cpu")

    return "learned", env, make, size


def run_demo(out_dir: str | Path, config: DemoConfig = DemoConfig(),  # noqa: B008
             progress: Callable[[str], None] | None = None) -> Path:
    """Run the demo and write ``report.html`` (plus media) into ``out_dir``; returns its path."""
    from avworld.geometry.spec import house_spec

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    say = progress or (lambda _msg: None)
    spec = house_spec(config.house_seed, config.rooms)
    learned = _load_learned(config) if config.checkpoint else None
    # every agent walks with the learned agent's motion (e.g. SoundSpaces 1's grid), so all share the episodes
    motion = learned[1].get("motion", "soundspaces2") if learned else "soundspaces2"
    step = MOTION_PRESETS[motion]
    episode_cfg = EpisodeConfig(min_geodesic_m=3.0, forward_step_m=step["forward_step_m"], turn_deg=step["turn_deg"])
    episodes = make_episodes([spec], config.episodes, episode_cfg, seed=config.seed)
    env = AudioGoalEnv(episodes=episodes, width=config.image_size, height=config.image_size,
                       step_limit=config.step_limit, seed=config.seed, preset=motion)
    say(f"house {spec}: {len(episodes)} episodes")

    runs = [(name, env, lambda name=name: make_agent(name, seed=config.seed), config.image_size)
            for name in config.agents]
    if learned:
        runs.append(_learned_run(config, episodes, *learned, motion))
    rollouts: dict[str, Rollout] = {}
    per_agent: dict[str, list[dict]] = {name: [] for name, *_ in runs}
    sizes = {name: size for name, _, _, size in runs}
    for name, agent_env, make, _size in runs:
        for k in range(len(episodes)):
            metrics, ro = run_episode(agent_env, make(), episode_index=k, seed=config.seed, record=(k == 0))
            per_agent[name].append(metrics)
            if k == 0:
                rollouts[name] = ro
            say(f"{name}: episode {k + 1}/{len(episodes)}")

    env.reset(options={"episode_index": 0})  # back to the demo episode for the map and the RIR
    ep, sc = env.episode, env.sim_config
    report = HtmlReport("avworld demo: AudioGoal navigation in a procedural house")
    report.paragraph(
        f"House {spec} ({env.world_.scene.num_faces} triangles). A telephone rings at "
        f"({ep.source_position[0]:.2f}, {ep.source_position[1]:.2f}, {ep.source_position[2]:.2f}) m; the agent "
        f"starts {ep.geodesic_distance_m:.1f} m away (geodesic) and must stop within 1 m of it. Motion: "
        f"{sc.forward_step_m} m steps, {sc.turn_deg:g}° turns, {sc.step_s} s per step. Everything here was "
        f"simulated on this machine from seeds; nothing was downloaded."
    )
    Image.fromarray(_map_with_paths(env, rollouts)).save(out / "map.png")
    report.heading("The demo episode: the map and what the agents saw and heard")
    figs, videos = [], []
    for name, ro in rollouts.items():
        audio = np.concatenate(ro.audio, axis=1)
        frames = _frames(ro, sizes[name], env.config.max_depth_m)
        write_video_with_audio(out / f"{name}.mp4", frames, audio, sc.sample_rate_hz, fps=1.0 / sc.step_s)
        videos.append(report.video_html(
            f"{name}.mp4", f"{name}: egocentric RGB | depth ({video_scale(sizes[name])}x) with the binaural sound "
                           f"(use headphones); {len(ro.actions)} actions, success={bool(ro.metrics['success'])}",
            width=frames.shape[2]))
        Image.fromarray(_spectrogram_image(audio, sc.sample_rate_hz)).save(out / f"{name}_spectrogram.png")
        figs.append((f"{name}_spectrogram.png", f"{name}: spectrogram of the left (top) and right ear, 0-8 kHz"))
        say(f"{name}: video written")
    report.row([report.figure_html("map.png", "top-down map: navigable area (green), the sound source (red), the "
                                              "goal ring, the start arrow and each agent's path; axes in metres")],
               videos)
    report.figures(figs)

    report.heading("Binaural room impulse response at the start pose")
    world = env.world_
    ear = world.ear_position(*ep.start_pose[:2])
    srir = world.rirs.get(np.asarray(ep.source_position), ear)
    rir_info = write_rir_report(binaural_rir(srir, world.hrtf, ep.start_pose[2]), mono_rir(srir), sc.sample_rate_hz,
                                out / "rir", info={"source": list(ep.source_position), "listener": ear.tolist()})
    report.figures([("rir/rir.png", "left and right ear RIR"), ("rir/edc.png", "energy decay per octave band")])
    rt = rir_info["rt60_s"]
    report.paragraph(f"Broadband RT60 {rt:.2f} s." if rt is not None else "RT60 not measurable.")

    if not learned and config.learned_note:
        report.paragraph(config.learned_note)
    if learned:
        ck = learned[0].checkpoint
        report.paragraph(f"learned: the {ck.get('agent', '?')} agent of checkpoint {config.checkpoint}, trained "
                         f"{ck.get('global_step', 0):,} steps (`avworld train nav`); {motion} motion, "
                         f"{sizes['learned']}x{sizes['learned']} images, actions sampled from its policy.")
    report.heading(f"Metrics over {len(episodes)} episodes in this house (mean ± 95% CI)")
    results = {name: aggregate(per) for name, per in per_agent.items()}
    header, rows = format_table(results)
    report.table(header, rows)
    (out / "metrics.json").write_text(json.dumps({"scene": spec, "motion": motion, "aggregate": results,
                                                  "per_episode": per_agent}, indent=2))
    return report.write(out / "report.html")

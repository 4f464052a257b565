"""``avworld eval --agent NAME ... --episodes FILE``: the baseline agents over an episode file.

The parser lives with the task commands (:mod:`avworld.tasks.cli`); this is what it runs. Names
are checked before anything is built; with ``--out`` each finished episode's row is written at
once and a rerun of the same command resumes (:mod:`avworld.eval.resume`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from avworld.eval.choices import check_choice
from avworld.tasks.cli import TaskCliError as EvalCliError  # the error type `avworld eval` always raised


def check_eval_args(args) -> None:
    """Validate ``avworld eval``'s names (agents, preset, observation set) when the command starts."""
    from avworld.sim.config import PRESETS
    from avworld.tasks.audiogoal import OBSERVATION_SETS
    from avworld.tasks.baselines import AGENTS

    missing = [flag for flag, v in (("--agent", args.agent), ("--episodes", args.episodes)) if not v]
    if missing:
        raise EvalCliError(f"avworld eval needs {' and '.join(missing)} (e.g. --agent oracle --episodes test.jsonl); a "
                           "trained checkpoint is evaluated with `avworld eval nav --checkpoint CKPT --episodes FILE`")
    for name in args.agent:
        check_choice("--agent", name, AGENTS, EvalCliError)
    if len(set(args.agent)) < len(args.agent):
        raise EvalCliError(f"--agent {' --agent '.join(args.agent)}: each agent once")
    if args.preset is not None:
        check_choice("--preset", args.preset, PRESETS, EvalCliError)
    check_choice("--observations", args.observations, OBSERVATION_SETS, EvalCliError)
    if "heuristic" in args.agent and "audio" not in OBSERVATION_SETS[args.observations]:
        raise EvalCliError("the heuristic agent listens: use --observations audiovisual, audiodepth or audio")
    if args.num is not None and args.num < 1:
        raise EvalCliError(f"--num {args.num}: evaluate at least one episode (or leave --num out: all)")
    if args.size < 1:
        raise EvalCliError(f"--size {args.size}: must be >= 1 pixel")


def episode_preset(path) -> str | None:
    """The motion preset an episode file was planned for (from its header), or None if none matches."""
    from avworld.sim.config import PRESETS
    from avworld.tasks.episodes import episode_config_of, load_episodes

    ec = episode_config_of(load_episodes(path)[0])
    for name, p in PRESETS.items():
        if (p["forward_step_m"], p["turn_deg"]) == (ec.forward_step_m, ec.turn_deg):
            return name
    return None


def cmd_eval(args) -> int:
    """Run ``avworld eval`` (baselines); Ctrl-C prints one line and exits with 130."""
    check_eval_args(args)
    try:
        return _run(args)
    except KeyboardInterrupt:
        return report_interrupted(args.out)


def report_interrupted(out) -> int:
    """The one line an interrupted evaluation prints (resumable with ``--out``); returns 130."""
    hint = ("rerun the same command to resume" if out else
            "nothing was saved (add --out DIR to keep finished episodes and resume)")
    print(f"interrupted; {hint}", file=sys.stderr)
    return 130


def _run(args) -> int:
    import gymnasium as gym
    from rich.progress import Progress

    import avworld.tasks  # noqa: F401
    from avworld.eval.nav_metrics import aggregate, print_table, write_episodes_csv
    from avworld.eval.nav_runner import agent_state, evaluate, set_agent_state
    from avworld.eval.resume import EpisodeLog, file_digest
    from avworld.tasks.baselines import make_agent

    preset = args.preset or episode_preset(args.episodes) or "soundspaces2"
    env = gym.make("avworld/AudioGoal-v0", episodes=args.episodes, observations=args.observations,
                   preset=preset, width=args.size, height=args.size, seed=args.seed)
    n = len(env.unwrapped.episodes) if args.num is None else min(args.num, len(env.unwrapped.episodes))
    if n < 1:
        raise EvalCliError(f"{args.episodes} has no episodes to evaluate")
    log = None
    per_agent, results = {}, {}
    with Progress() as progress:
        if args.out:
            identity = {"command": "eval", "episodes": str(Path(args.episodes).resolve()),
                        "episodes_sha256": file_digest(args.episodes), "observations": args.observations,
                        "preset": preset, "size": args.size, "seed": args.seed}
            log = EpisodeLog(args.out, identity)
            if log.note:
                progress.console.print(log.note)
        for name in args.agent:
            agent = make_agent(name, seed=args.seed)
            done = log.resume(name, n, progress.console.print) if log is not None else []
            if done:
                set_agent_state(agent, log.states[name])
            task = progress.add_task(name, total=n, completed=len(done))

            def on_episode(_k, metrics, name=name, agent=agent):
                if log is not None:
                    log.add(name, metrics, agent_state(agent))

            per_agent[name] = done + evaluate(env, agent, n, seed=args.seed, start=len(done), on_episode=on_episode,
                                              progress=lambda *_, t=task: progress.advance(t))
            results[name] = aggregate(per_agent[name])
    env.close()
    print_table(results, f"AudioGoal ({preset} motion), {n} episodes of {args.episodes} (mean ± 95% CI)")
    if args.out:
        out = Path(args.out)
        (out / "metrics.json").write_text(json.dumps({"episodes": str(args.episodes), "num_episodes": n,
                                                      "preset": preset, "aggregate": results,
                                                      "per_episode": per_agent}, indent=2))
        write_episodes_csv(out / "episodes.csv", per_agent)
        print(f"metrics written to {out / 'metrics.json'} and {out / 'episodes.csv'}")
    return 0

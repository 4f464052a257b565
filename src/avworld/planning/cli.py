"""``avworld plan``: planning with a world model (seed 001 §5.5). No torch at import time."""

from __future__ import annotations

import json


def add_commands(sub) -> None:
    p = sub.add_parser("plan", help="plan with a world model (AV-CDiT or the simulator as the Oracle WM): "
                                    "evaluate, report, make episodes in a dataset's houses")
    psub = p.add_subparsers(dest="plan_command", required=True)

    ev = psub.add_parser(
        "eval", help="run an AV-Nav checkpoint alone or with beam-search planning over an episode file",
        description="At every step: K candidate actions sampled from the policy, each rolled through the world "
                    "model for H steps (later actions from the policy on the predicted observations, GRU state "
                    "carried), branches scored by discounted predicted rewards plus the policy's value at the "
                    "leaf, the best B kept per depth; the first action of the best sequence is executed. Writes "
                    "metrics.json (success, SPL, SoftSPL, NA, SNA with 95%% CIs, seconds per step), episodes.csv, "
                    "paths.json and a video with sound of the first episode(s). See docs/planning.md.")
    ev.add_argument("--agent", required=True, metavar="CKPT",
                    help="AV-Nav checkpoint or run directory (AudioGoal-v0, discrete actions)")
    ev.add_argument("--world-model", default="none", metavar="CKPT|oracle|none",
                    help="a stage-3 AV-CDiT checkpoint (RUN/stages/stage3.pt), 'oracle' (the simulator) or 'none' "
                         "(the plain policy; default)")
    ev.add_argument("--episodes", required=True, help="episode file planned for the agent's motion")
    ev.add_argument("--beam", type=int, default=1, help="B: branches kept per depth (default 1)")
    ev.add_argument("--horizon", type=int, default=1, help="H: look-ahead depth (default 1)")
    ev.add_argument("--candidates", type=int, default=3, help="K: actions sampled per expanded branch (default 3)")
    ev.add_argument("--gamma", type=float, default=0.99, help="discount of predicted rewards and leaf values")
    ev.add_argument("--steps", type=int, default=10, help="denoising steps of the AV-CDiT sampler (default 10)")
    ev.add_argument("--sampler", default="ddim", choices=("ddim", "ddpm"), help="AV-CDiT sampler (default ddim)")
    ev.add_argument("--num", type=int, default=None, help="evaluate only the first NUM episodes")
    ev.add_argument("--seed", type=int, default=0, help="seed of the policy's samples and the world model's noise")
    ev.add_argument("--video-episodes", type=int, default=1, help="episodes to write as video with sound (default 1)")
    ev.add_argument("--image", default="image", help="image tokenizer of the world model (default: the shipped one)")
    ev.add_argument("--audio", default="audio", help="audio tokenizer of the world model (default: the shipped one)")
    ev.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    ev.add_argument("--out", default=None, help="output directory (metrics.json, episodes.csv, paths.json, videos)")
    ev.add_argument("--no-progress", action="store_true", help="no per-episode lines")
    ev.set_defaults(func=_cmd_eval)

    rep = psub.add_parser("report", help="one page: the table of several `plan eval` runs and top-down paths of "
                                         "their agents on the same episodes (seed 001's Fig. 7)")
    rep.add_argument("--runs", required=True, nargs="+", metavar="DIR", help="`plan eval --out` directories")
    rep.add_argument("--maps", type=int, default=4, help="episodes drawn as top-down maps (default 4)")
    rep.add_argument("--out", required=True, help="directory for report.html and its images")
    rep.set_defaults(func=_cmd_report)

    mk = psub.add_parser("episodes", help="AudioGoal episodes in the houses of an AVW dataset split (the world "
                                          "model's training or test houses), with the dataset's motion and sound")
    mk.add_argument("--data", required=True, help="AVW dataset directory (its manifest.json lists the splits)")
    mk.add_argument("--split", default="test", help="dataset split (default test)")
    mk.add_argument("--per-scene", type=int, default=8, help="episodes per house (default 8)")
    mk.add_argument("--min-geodesic", type=float, default=2.0, help="minimum start-goal geodesic distance (m)")
    mk.add_argument("--max-geodesic", type=float, default=12.0, help="maximum start-goal geodesic distance (m)")
    mk.add_argument("--seed", type=int, default=0, help="sampling seed (same seed, same file)")
    mk.add_argument("--out", required=True, help="episode file to write (.jsonl)")
    mk.set_defaults(func=_cmd_episodes)


def _cmd_eval(args) -> int:
    from avworld.eval.plan_eval import run_plan_eval

    def progress(k, n, row):
        if not args.no_progress:
            print(f"episode {k + 1}/{n}: success {row['success']:.0f} spl {row['spl']:.3f} na {row['na']:.0f} "
                  f"{row['step_seconds_mean']:.3f} s/step", flush=True)

    res = run_plan_eval(args.agent, args.episodes, args.world_model, args.beam, args.horizon, args.candidates,
                        args.gamma, args.num, args.seed, args.steps, args.sampler, args.out, args.video_episodes,
                        args.threads, progress, args.image, args.audio)
    from avworld.eval.nav_metrics import print_table

    print_table({res["label"]: res["aggregate"]}, f"{res['label']} on {res['num_episodes']} episodes "
                                                   f"({res['seconds_per_step']['mean']:.3f} s per step)")
    print(json.dumps({"label": res["label"], "seconds_per_step": res["seconds_per_step"],
                      "aggregate": {k: v["mean"] for k, v in res["aggregate"].items()}, "out": args.out}))
    return 0


def _cmd_report(args) -> int:
    from avworld.eval.plan_report import write_report

    print(write_report(args.runs, args.out, maps=args.maps))
    return 0


def _cmd_episodes(args) -> int:
    from avworld.planning.episodes import make_dataset_episodes

    path = make_dataset_episodes(args.data, args.split, args.per_scene, args.out, seed=args.seed,
                                 min_geodesic_m=args.min_geodesic, max_geodesic_m=args.max_geodesic)
    print(path)
    return 0

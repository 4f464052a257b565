"""Line of sight from the listener's ears to the sound source, per frame of an AVW dataset.

The shards record each frame's pose and the scene's source position but not whether the
source was visible; evaluations that report line-of-sight clips separately (the tokenizers'
audio numbers, issue 17) recompute it here: a segment from the ear point (pose x, y at the
floor height plus the camera's height, as the simulator places the listener) to the source,
tested against the scene mesh with Embree. No torch.
"""

from __future__ import annotations

import numpy as np

from avworld.data.reader import AVWDataset


def line_of_sight(data: AVWDataset) -> np.ndarray:
    """(num_frames,) bool over the frames of ``data`` in trajectory order (trajectory 0's frames,
    then trajectory 1's, ...): True where nothing of the scene lies between ears and source."""
    from avworld.geometry.navigation import NavConfig, NavGrid
    from avworld.geometry.raycast import RayCaster
    from avworld.geometry.spec import load_scene_spec

    sim = data.config.trajectory.sim_config()
    out = []
    cache: dict[int, tuple] = {}
    for i, traj in enumerate(data.trajectories):
        if traj.shard not in cache:
            rec = data.shards[traj.shard]
            scene = load_scene_spec(rec["scene"])
            rc = RayCaster(scene)
            nav = NavGrid.build(scene, NavConfig(resolution_m=sim.nav_resolution_m, agent_radius_m=sim.agent_radius_m,
                                                 agent_height_m=sim.camera.height_m), raycaster=rc)
            cache = {traj.shard: (rc, nav.floor_z, np.asarray(rec["source_position"], dtype=np.float64))}
        rc, floor_z, source = cache[traj.shard]
        pose = data.small(i)["pose"]
        ears = np.column_stack([pose[:, 0], pose[:, 1], np.full(len(pose), floor_z + sim.camera.height_m)])
        out.append(~rc.occluded(ears, np.broadcast_to(source, ears.shape)))
    return np.concatenate(out) if out else np.zeros(0, bool)

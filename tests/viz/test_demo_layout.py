"""The demo report shows each video at a watchable size, beside the readable map."""

from __future__ import annotations

import re

import numpy as np
from PIL import Image

from avworld.viz.nav_demo import DemoConfig, run_demo, video_scale


def test_video_scale_is_at_least_2x_and_reaches_256_px():
    assert [video_scale(s) for s in (32, 64, 128, 256, 300)] == [8, 4, 2, 2, 2]


def test_the_report_puts_the_map_beside_the_upscaled_videos(tmp_path):
    cfg = DemoConfig(house_seed=1, rooms=2, episodes=1, agents=("oracle",), image_size=32, step_limit=12)
    html = run_demo(tmp_path, cfg).read_text()
    row = re.search(r'<div class="row"><div class="col"><figure><img src="map.png".*?</div>'
                    r'<div class="col">(.*?)</div></div>', html, re.S)
    assert row, "the map and the videos share one row"
    assert re.search(r'<video [^>]*src="oracle.mp4" width="512">', row.group(1))  # 32 px views at 8x: 2 x 256
    assert "(8x)" in row.group(1)
    fig = np.asarray(Image.open(tmp_path / "map.png"))
    assert fig.shape[1] > fig.shape[0]  # the legend panel sits beside the map

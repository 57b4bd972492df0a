"""The demo world: MotionShapes clips, the small demo generator, its training, and the rebuild of ``precomputed/``.

None of this is the method. The engine (``motive_core``) never imports it; the demo model reaches the engine
only through the ``motive_adapter.json`` its folder carries (see ``motive_core.models``).
"""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEMO_MODEL_DIR = REPO / "precomputed" / "model"

"""A Lightning callback that kills a run at a chosen step, for resume tests.

Kept out of ``neuroai.testing``'s namespace so that importing the generators does not
import Lightning: ``from neuroai.testing.training import CrashAtStep``.
"""

from __future__ import annotations

import lightning as L


class CrashAtStep(L.Callback):
    """Raise ``RuntimeError("simulated kill")`` once ``trainer.global_step`` reaches ``step``.

    A run killed this way leaves its last periodic checkpoint behind, as a job killed by
    the scheduler would; a resume test compares the resumed run with an uninterrupted one.
    """

    def __init__(self, step: int) -> None:
        self.step = int(step)

    def on_train_batch_end(self, trainer, *args) -> None:
        if trainer.global_step == self.step:
            raise RuntimeError("simulated kill")

"""Fixtures shared by the trainer tests: one torch thread, and a parameter watcher."""

from typing import Any

import pytest


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Tiny models gain nothing from threads, and on a busy 2-core machine they lose a lot."""
    try:
        import torch
    except ImportError:  # the modules that need torch skip themselves
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def param_watch() -> Any:
    """A TrainerCallback that snapshots every parameter when training starts and ends."""
    transformers = pytest.importorskip("transformers")

    class ParamWatch(transformers.TrainerCallback):
        def on_train_begin(self, args, state, control, model=None, **kwargs):
            self.before = self._snapshot(model)

        def on_train_end(self, args, state, control, model=None, **kwargs):
            self.after = self._snapshot(model)

        @staticmethod
        def _snapshot(model):
            return {
                name: (param.requires_grad, param.detach().cpu().clone())
                for name, param in model.named_parameters()
            }

        def trainable(self):
            """Names of the parameters that required gradients."""
            return [name for name, (grad, _) in self.before.items() if grad]

        def changed(self, name):
            """Whether training changed the parameter ``name``."""
            return not self.before[name][1].equal(self.after[name][1])

    return ParamWatch()

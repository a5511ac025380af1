"""Training the reference networks: hjsym's Adam is torch's, number for number, without importing torch._dynamo."""

import copy
import subprocess
import sys

import pytest
import torch

from hjsym.networks.training import Adam


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_adam_matches_torch_optim_adam_bit_for_bit(dtype):
    gen = torch.Generator().manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1)).to(dtype)
    twin = copy.deepcopy(model)
    x, y = torch.randn(64, 3, generator=gen, dtype=dtype), torch.randn(64, 1, generator=gen, dtype=dtype)
    ours, theirs = Adam(model.parameters(), lr=2e-2), torch.optim.Adam(twin.parameters(), lr=2e-2)
    for _ in range(200):
        for m, opt in ((model, ours), (twin, theirs)):
            opt.zero_grad()
            torch.mean((m(x) - y) ** 2).backward()
            opt.step()
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), twin.parameters()))


def test_training_a_reference_network_does_not_import_dynamo(tmp_path):
    code = ("import sys; from hjsym.networks.lse import train_lse_layer; train_lse_layer(2, seed=0, cache=False); "
            "print('torch._dynamo' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"HJSYM_CACHE_DIR": str(tmp_path), "PATH": ""})
    assert out.stdout.strip() == "False"

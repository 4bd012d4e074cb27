import json
import os
import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from avemo.models.audio import AudioNet
from avemo.params import Loop
from avemo.training.loop import seed_everything, train
from tests.training.test_loop import CLASSES, TINY, tiny_data


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), GLOO_SOCKET_IFNAME="lo", OMP_NUM_THREADS="1")
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        seed_everything(0)
        model = AudioNet(TINY, 4)
        torch.save(model.state_dict(), Path(out) / f"initial{rank}.pt")
        data = tiny_data(16)
        history = train(model, data, data, CLASSES, Loop(epochs=1, batch_size=8, lr=1e-2, device="cpu"),
                        Path(out) / f"checkpoints{rank}")
        torch.save(model.state_dict(), Path(out) / f"rank{rank}.pt")
        (Path(out) / f"history{rank}.json").write_text(json.dumps(history.epochs))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_gloo_processes_train_one_step_and_end_with_identical_weights(tmp_path):
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    initial = torch.load(tmp_path / "initial0.pt")
    a, b = torch.load(tmp_path / "rank0.pt"), torch.load(tmp_path / "rank1.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)  # gradients were averaged: the replicas agree
    assert any(not torch.equal(a[k], initial[k]) for k in a)  # and a step was taken
    h0, h1 = (json.loads((tmp_path / f"history{r}.json").read_text()) for r in (0, 1))
    assert h0 == h1  # the training loss is reduced across ranks; validation is the same on both
    assert (tmp_path / "checkpoints0" / "last.pt").exists()
    assert not (tmp_path / "checkpoints1" / "last.pt").exists()  # only rank 0 saves

    # Each rank saw its own 8 items; averaged gradients equal one step on all 16 in one process.
    seed_everything(0)
    single = AudioNet(TINY, 4)
    train(single, tiny_data(16), tiny_data(16), CLASSES, Loop(epochs=1, batch_size=16, lr=1e-2, device="cpu"),
          tmp_path / "single")
    assert all(torch.allclose(a[k], v, atol=1e-6) for k, v in single.state_dict().items())

"""Progress of a long sweep: one line per epoch, its place, the time left."""

from keras_adv.evaluation.eta import Eta
from keras_adv.evaluation.eta import duration
from keras_adv.experiments.progress import Progress
from tests.conftest import run_cli
from tests.test_cli import TINY


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def started(label, models_after, epochs):
    """A `Progress` at the start of training, its printed lines and its clock."""
    lines, clock = [], Clock()
    progress = Progress(lines.append, label, models_after, clock)
    progress.set_params({"epochs": epochs})
    progress.on_train_begin()
    return progress, lines, clock


def test_each_epoch_says_where_the_sweep_is_and_the_time_left():
    progress, lines, clock = started("model 1/3 (train eps 0)", 2, epochs=4)
    clock.now = 30.0
    progress.on_epoch_end(0, {"accuracy": 0.5, "loss": 1.0})
    clock.now = 50.0
    progress.on_epoch_end(1, {"accuracy": 0.75, "adv_accuracy": 0.25})
    # 3 epochs left at 30 s; then 2 models of 4 epochs each at that pace.
    assert lines == [
        "model 1/3 (train eps 0) | training, 4 epochs",  # the model's header
        "model 1/3 (train eps 0) | epoch 1/4 | accuracy 0.500 | 30.0 s/epoch | "
        "about 1.5 min left for this model, 5.5 min for the sweep's trainings",
        "model 1/3 (train eps 0) | epoch 2/4 | accuracy 0.750 | adv accuracy "
        "0.250 | 25.0 s/epoch | about 50 s left for this model, 4.2 min for the "
        "sweep's trainings",
    ]


def test_the_last_model_says_only_its_own_time_left():
    progress, lines, clock = started("model 2/2 (train eps 0.1)", 0, epochs=1)
    clock.now = 4.0
    progress.on_epoch_end(0, {"adv_robust_accuracy": 0.4})
    assert lines == [
        "model 2/2 (train eps 0.1) | training, 1 epoch",
        "model 2/2 (train eps 0.1) | epoch 1/1 | held-out robust accuracy 0.400 | "
        "4.0 s/epoch | about 0 s left for this model",
    ]


def test_durations_read_in_seconds_minutes_or_hours():
    assert [duration(s) for s in (45, 750, 3 * 3600)] == ["45 s", "12.5 min", "3.0 h"]


def test_the_eta_counts_places_and_time_left_past_a_resumed_start():
    clock = Clock()
    eta = Eta(8, done=3, clock=clock)  # 3 of 8 finished by an earlier run
    clock.now = 10.0
    assert eta.step() == "4/8 | 10 s so far, about 40 s left"  # 4 more at 10 s
    clock.now = 30.0
    assert eta.step() == "5/8 | 30 s so far, about 45 s left"


def test_a_sweep_prints_a_line_per_epoch_per_model_and_none_when_resumed(tmp_path):
    code, out, err = run_cli("sweep", "--name", "p", *TINY, cwd=tmp_path)
    assert code == 0, err
    epochs = [line for line in out.splitlines() if "| epoch " in line]
    assert [line.split(" | ")[0:2] for line in epochs] == [
        ["model 1/2 (train eps 0)", "epoch 1/1"],
        ["model 2/2 (train eps 0.1)", "epoch 1/1"],
    ]
    assert "for the sweep's trainings" in epochs[0]
    assert "/step" not in out  # Keras's own progress lines are replaced
    cells = [line for line in out.splitlines() if " | cell " in line]
    assert [line.split(" | cell ")[1].split(" |")[0] for line in cells] == [
        "1/2", "2/2", "1/2", "2/2"
    ]  # fmt: skip
    code, out, _ = run_cli("sweep", "--name", "p", *TINY, cwd=tmp_path)
    assert code == 0 and "| epoch " not in out  # nothing trained again
    assert out.splitlines()[:2] == [
        "train eps 0 | done in an earlier run, skipped",
        "train eps 0.1 | done in an earlier run, skipped",
    ]

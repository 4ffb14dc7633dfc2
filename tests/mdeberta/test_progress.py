import pytest

from mdeberta.progress import LineProgress, progress


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_a_log_file_gets_a_line_every_interval_and_one_at_the_end(capsys):
    clock = Clock()
    bar = LineProgress(total=300, desc="train", unit="step", seconds=30, clock=clock)
    for step in range(1, 301):
        clock.now = step * 0.5  # 2 steps/s: 150 s in all
        bar.set_postfix(mlm=f"{6 - step / 100:.2f}")
        bar.update()
    bar.close()
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 6  # at 30, 60, 90, 120 and 150 s, then the closing line
    assert lines[0] == "train: 60/300 steps (20%), 2 steps/s, mlm=5.40"
    assert lines[-1] == "train: 300/300 steps (100%), 2 steps/s, mlm=3.00"


def test_a_transient_bar_prints_nothing_when_quick_and_never_a_carriage_return(capsys):
    for _ in progress(range(5), desc="de", unit="batch", leave=False, interactive=False):
        pass
    bar = progress(total=3, desc="fine-tune", unit="step", interactive=False)
    bar.update(3)
    bar.close()
    err = capsys.readouterr().err
    assert err == "fine-tune: 3/3 steps (100%), " + err.split(", ", 1)[1]
    assert "\r" not in err and err.count("\n") == 1


@pytest.mark.parametrize("interactive", [True, False])
def test_progress_is_a_bar_only_on_a_terminal(interactive):
    bar = progress(total=1, interactive=interactive)
    assert (type(bar).__name__ == "tqdm") == interactive
    bar.close()

"""How far a long run is, and the time left: shared by evaluation and the sweep."""

import time


def duration(seconds: float) -> str:
    """`"45 s"`, `"12.5 min"` or `"3.2 h"`."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


class Eta:
    """Counts finished steps of `total` and says the time spent and left.

    The time left assumes the remaining steps cost what the finished ones
    did on average.

    Args:
        total: how many steps there are.
        done: how many were finished before this count started (a resumed
            run): they count towards the place, not the time. Defaults to 0.
        clock: the time source. Defaults to `time.perf_counter`.
    """

    def __init__(self, total: int, done: int = 0, clock=time.perf_counter):
        self.total, self.before, self.now = total, done, 0
        self.clock = clock
        self.start = clock()

    def step(self) -> str:
        """Counts one finished step; returns `"3/8 | 12 s so far, about 20 s left"`."""
        self.now += 1
        spent = self.clock() - self.start
        left = spent / self.now * (self.total - self.before - self.now)
        return (
            f"{self.before + self.now}/{self.total} | {duration(spent)} so far, "
            f"about {duration(left)} left"
        )

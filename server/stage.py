"""The stage contract every streaming step of the listening path keeps, and a chain of stages.

A *stage* takes blocks at ``rate_in`` samples per second and gives what they complete, counted
on a clock of ``rate_out`` samples per second: the causal resampler (samples in, samples out) and
every ear (samples in, activation frames out; frame ``k`` is stamped at sample ``(k + 1) * hop``
of the ear's ``sample_rate``, so an ear's ``rate_in == rate_out == sample_rate``).

``latency`` is counted in samples of ``rate_out``: from an input instant to the output where it
weighs most (the resampler: where an impulse peaks; an ear: see ``Ear.latency``). A
:class:`Chain` sums its stages' latencies the way cached_conv sums its layers' cumulative delay:
what came before is carried through each stage's rate change, then the stage adds its own.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Stage(Protocol):
    """``process`` / ``reset`` / ``latency``, after pedalboard's plugins and cached_conv's layers.

    Feeding any split of a signal through :meth:`process` gives what one call on the whole
    signal gives; :meth:`reset` returns the stage to the state it was built in.
    """

    @property
    def rate_in(self) -> int:
        """Samples per second of what :meth:`process` takes."""
        ...

    @property
    def rate_out(self) -> int:
        """Samples per second of the clock the output and :attr:`latency` are counted on."""
        ...

    @property
    def latency(self) -> int:
        """Samples of ``rate_out`` from an input instant to the output where it weighs most."""
        ...

    def process(self, block: Any) -> Any:
        """The next block of input -> the output it completes (possibly empty)."""
        ...

    def reset(self) -> None:
        """Forget all input, as if the stream started from silence."""
        ...


class Chain:
    """Stages run one after another; itself a :class:`Stage`.

    Each stage's ``rate_in`` must be the ``rate_out`` of the stage before it (a wiring mistake,
    not a user's: ``ValueError``).
    """

    def __init__(self, *stages: Stage) -> None:
        if not stages:
            raise ValueError("a chain needs at least one stage")
        for before, after in zip(stages, stages[1:], strict=False):
            if before.rate_out != after.rate_in:
                raise ValueError(
                    f"{type(before).__name__} gives {before.rate_out} Hz "
                    f"but {type(after).__name__} takes {after.rate_in} Hz"
                )
        self.stages = stages

    @property
    def rate_in(self) -> int:
        return self.stages[0].rate_in

    @property
    def rate_out(self) -> int:
        return self.stages[-1].rate_out

    @property
    def delay(self) -> Fraction:
        """The exact cumulative latency in samples of ``rate_out`` (may fall between samples)."""
        total = Fraction(0)
        for stage in self.stages:
            # What came before, on this stage's output clock, plus the stage's own delay.
            total = total * Fraction(stage.rate_out, stage.rate_in) + stage.latency
        return total

    @property
    def latency(self) -> int:
        """:attr:`delay` rounded to whole samples of ``rate_out``."""
        return round(self.delay)

    @property
    def seconds(self) -> float:
        """The cumulative latency in seconds."""
        return float(self.delay / self.rate_out)

    def process(self, block: Any) -> Any:
        for stage in self.stages:
            block = stage.process(block)
        return block

    def reset(self) -> None:
        for stage in self.stages:
            stage.reset()

"""``earsight dream`` and ``earsight auralise``: files in, files out, options from the table."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
import soundfile
from sonify_signals import SR, tone

from earsight.errors import BadRequest
from earsight.sonify import cli


def test_cli_dream_and_auralise_write_files(tmp_path: Path) -> None:
    from earsight.cli import STAGE_COMMANDS

    assert STAGE_COMMANDS["dream"][0] == STAGE_COMMANDS["auralise"][0] == "earsight.sonify.cli"
    folder = tmp_path
    source = folder / "in.wav"
    soundfile.write(str(source), tone(0.4), SR)
    parser = argparse.ArgumentParser()
    cli.add_dream_arguments(parser)
    dreamed = folder / "dream.wav"
    args = parser.parse_args([str(source), "--layer", "conv2", "--channel", "3", "--out", str(dreamed), "--iterations", "4"])
    assert cli.run_dream(args) == 0
    audio, sr = soundfile.read(str(dreamed))
    assert sr == SR and audio.shape[0] == int(0.4 * SR) and np.isfinite(audio).all()
    assert dreamed.with_suffix(".png").stat().st_size > 10000  # the spectrograms beside it
    with pytest.raises(BadRequest):  # never overwrite unless asked
        cli.run_dream(args)
    heard = folder / "aur.flac"
    parser = argparse.ArgumentParser()
    cli.add_auralise_arguments(parser)
    args = parser.parse_args([str(source), "--layer", "conv3", "--channel", "2", "--out", str(heard)])
    assert cli.run_auralise(args) == 0
    assert heard.exists() and heard.with_suffix(".png").stat().st_size > 1000


def test_parameter_options_come_from_the_table() -> None:
    p = argparse.ArgumentParser()
    cli.add_dream_arguments(p)
    args = p.parse_args(["f.wav", "--layer", "conv1", "--out", "o.wav", "--hf-penalty", "0.5", "--lr", "0.02"])
    assert args.hf_penalty == 0.5 and args.lr == 0.02

"""Hearing what the ear hears: *dream* (input optimisation) and *auralise* (deconvolution).

One module per stage, each arrow pointing down; importing this package imports nothing (the
command table reads :mod:`.params` and must stay free of torch):

- :mod:`.params` -- the control surface: every ``/ear/sonify/<param>`` (torch-free);
- :mod:`.target` -- which neurons (:class:`~.target.Target`), and the ear's layer on them,
  differentiably;
- :mod:`.dream` -- objective, parameterisation, transforms, composed by :func:`~.dream.dream`;
- :mod:`.deconv` -- the deconvnet and :func:`~.deconv.auralise`;
- :mod:`.dsp` -- pure numpy helpers: STFT frames, overlap-add, soft limiting, crossfades,
  the loudness bound;
- :mod:`.files` -- offline: a whole signal sonified, render paths, writing audio;
- :mod:`.live` -- the :class:`~.live.Sonifier` thread that plays beside the server;
- :mod:`.cli` -- ``earsight dream`` and ``earsight auralise``; :mod:`.bench` -- its figures.

What an ear does differently (its front end, a shortcut to a layer, its network input, a
layer's resting level) it declares itself: the sonification hooks of :class:`earsight.ears.base.Ear`.
"""

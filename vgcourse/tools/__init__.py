"""The course's maintainer and learner tools, behind the ``vgcourse`` command (``cli``): the
notebook format, ``release`` (exercises from solutions), ``build`` (the HTML copy),
``workspace`` (the learner's copy) and ``doctor`` (the environment check)."""

"""The course's maintainer and learner tools, behind the ``vgcourse`` command (``cli``), none of
them importing torch: ``notebook_format`` (the one definition of the course's notebook format),
``exercise`` (an exercise from its solution), ``release`` (``exercises/`` from ``solutions/``),
``build`` (the HTML copy), ``workspace`` (the learner's copy) and ``doctor`` (the environment check)."""

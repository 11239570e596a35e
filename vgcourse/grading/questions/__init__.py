"""The course's graded questions, one module per exercise notebook (``ex01`` … ``ex10``), each
defining ``QUESTIONS``: the content, apart from the engine in :mod:`vgcourse.grading`."""

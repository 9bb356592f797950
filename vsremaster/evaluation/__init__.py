"""Evaluation: metrics, the paper's Sec. 5.1 protocol with baselines, reference suite."""

"""Evaluation: metrics, the paper's Sec. 5.1 protocol with baselines, temporal
consistency (`consistency`), seam studies (`seams`), the reference-behaviour suite."""

"""Evaluation against ground truth: metrics, summaries, the paper's analyses, plots, HTML report."""

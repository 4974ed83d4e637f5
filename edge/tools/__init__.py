"""Measuring tools (benchmarks, evaluation, scene generators); no runtime module imports them."""

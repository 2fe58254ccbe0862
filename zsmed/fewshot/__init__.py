"""Few-shot evaluation machinery: cached frozen features, episode sampler, baselines, benchmark.

Shared by the SGPS generator (``zsmed.synth``) and the ``zsmed eval fewshot`` command, so every
method sees the same cached backbone outputs and the same episodes.
"""

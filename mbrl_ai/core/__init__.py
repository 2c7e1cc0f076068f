"""What everything else stands on: replay buffers, optimisers, the checkpoint file format, the
run's errors, seeding and devices, JSONL files and the statistics of reports. Nothing here imports
another part of ``mbrl_ai``."""

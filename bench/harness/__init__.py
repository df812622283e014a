"""The Tollway benchmark harness (bench/run.py). Not part of the tollway package or its tests."""

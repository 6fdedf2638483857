"""The real-ttnn validation lane: ttnn 0.81.1 in a Python 3.12 venv on a mock device judges the
emulator (and, later, the generated code). Oracle scripts run there in subprocesses with timeouts."""

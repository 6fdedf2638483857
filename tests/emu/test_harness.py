"""The pytest plugin that makes `import ttnn` find the emulator when real ttnn is absent."""

import subprocess
import sys
import textwrap


def _pytest(tmp_path, *args, env=None):
    (tmp_path / "test_probe.py").write_text(
        textwrap.dedent(
            """
            import ttnn
            import ttnn.experimental

            def test_probe():
                assert ttnn.EMULATED
                assert ttnn.experimental.rotary_embedding_llama
                device = ttnn.open_device(device_id=0)
                assert device.compute_with_storage_grid_size().x == 8
                ttnn.close_device(device)
            """
        )
    )
    import os

    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args, str(tmp_path)],
                          capture_output=True, text=True, env=full_env)  # fmt: skip


def test_auto_selects_emulator_without_real_ttnn(tmp_path):
    proc = _pytest(tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_explicit_emu_and_header(tmp_path):
    proc = _pytest(tmp_path, "--ttnn=emu", "-v")
    assert proc.returncode == 0 and "ttnn backend: ttgen emulator" in proc.stdout


def test_real_requested_but_absent_is_a_usage_error(tmp_path):
    proc = _pytest(tmp_path, env={"TTGEN_TTNN": "real"})
    assert proc.returncode == 4 and "real ttnn package is not importable" in proc.stderr

"""Small helpers shared by tests (import with `from helpers import ...`)."""
from pathlib import Path


def write_script(folder: Path, body: str, name: str = "train.py") -> Path:
    """Writes a training script into `folder` and returns its path."""
    path = Path(folder) / name
    path.write_text(body)
    return path


SUMMARY_SCRIPT = '''
import os
value = float(os.environ.get("VALUE", "1.0"))
print("---")
print(f"val_bpb:          {value:.6f}")
print("training_seconds: 0.1")
print("peak_vram_mb:     0.0")
'''


def all_gone(pids: list[int]) -> bool:
    """Returns True when none of `pids` is still running (a zombie counts as gone)."""
    import psutil
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                return False
        except psutil.Error:
            pass
    return True

"""`btc predict`: class probabilities (and Grad-CAM overlays) for new images."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from btc.commands.ui import err, out
from btc.engine.checkpoint import load_checkpoint
from btc.engine.inference import collect_images, predict_images, prepare_step, write_cams
from btc.errors import BtcError
from btc.io import atomic_write, refuse_foreign_file, starts_with


def run(checkpoint: Path, inputs: list[Path], *, csv: Path | None = None, cam: Path | None = None,
        device: str = "auto", batch_size: int = 32) -> dict[str, Any]:
    if csv is not None:
        refuse_foreign_file(csv, "--csv", starts_with("path,predicted,prob_"))
    ck = load_checkpoint(checkpoint)
    step = prepare_step(Path(checkpoint))
    if step.note:
        err.print(f"note: {step.note}")
    paths, skipped = collect_images(inputs)
    read, probs, unreadable = predict_images(ck, paths, device=device, batch_size=batch_size, step=step)
    skipped += unreadable
    for path, reason in skipped:
        err.print(f"skipped {path}: {reason}")
    if not read:
        raise BtcError("no readable image among the inputs" if paths or skipped else "no input image")
    frame_rows = []
    for path, row in zip(read, probs, strict=True):
        frame_rows.append({"path": str(path), "predicted": ck.classes[int(row.argmax())],
                           **{f"prob_{c}": float(p) for c, p in zip(ck.classes, row, strict=True)}})
    if csv is not None:
        import pandas as pd

        frame = pd.DataFrame(frame_rows, columns=["path", "predicted"] + [f"prob_{c}" for c in ck.classes])
        atomic_write(csv, lambda tmp: frame.to_csv(tmp, index=False, lineterminator="\n", float_format="%.8g"))
        out.print(f"wrote {len(frame)} predictions to {csv}")
    else:
        for path, row in zip(read, probs, strict=True):
            parts = "  ".join(f"{c}={p:.4f}" for c, p in zip(ck.classes, row, strict=True))
            print(f"{path}  {ck.classes[int(row.argmax())]}  {parts}")
    written: list[Path] = []
    if cam is not None:
        written = write_cams(ck, read, Path(cam), device=device, batch_size=batch_size, step=step)
        out.print(f"wrote {len(written)} Grad-CAM overlays to {cam}")
    return {"paths": read, "probabilities": probs, "skipped": skipped, "cams": written, "prepare": step}

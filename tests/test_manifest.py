"""The manifest contract: valid rows pass, a missing column or bad value names row and column."""

import pandas as pd
import pytest

from btc.data.manifest import (
    ManifestError,
    load_dataset,
    read_manifest,
    validate_manifest,
    write_manifest,
)


def _row(**changes):
    row = {"path": "images/a.png", "label": "glioma", "split": "train", "patient_id": "p1",
           "source": "kaggle", "orig_path": "Training/glioma/a.jpg", "height": "512", "width": "512",
           "sha256": "ab" * 32, "phash": "0123456789abcdef"}
    row.update(changes)
    return row


def test_valid_manifest_round_trip(tmp_path):
    df = pd.DataFrame([_row(), _row(path="images/b.png", split="", patient_id="", fold="3")])
    write_manifest(df, tmp_path)
    back = read_manifest(tmp_path, classes=["glioma"])
    assert back["height"].tolist() == [512, 512]
    assert back["fold"].isna().tolist() == [True, False] and back["fold"].iloc[1] == 3
    assert back["split"].tolist() == ["train", ""]


def test_missing_column_is_named():
    df = pd.DataFrame([_row()]).drop(columns=["sha256"])
    with pytest.raises(ManifestError, match="missing column.*sha256"):
        validate_manifest(df)


@pytest.mark.parametrize("column,value,why", [
    ("split", "validation", "train, test or empty"),
    ("height", "-3", "positive integer"),
    ("width", "wide", "positive integer"),
    ("sha256", "xyz", "64 lowercase hex"),
    ("phash", "123", "16 lowercase hex"),
    ("path", "/abs/a.png", "relative"),
    ("path", "../a.png", "relative"),
    ("source", "hospital", "must be one of"),
    ("fold", "x", "integer or empty"),
])
def test_bad_value_names_row_and_column(column, value, why):
    df = pd.DataFrame([_row(path="images/ok.png"), _row(**{column: value})])
    with pytest.raises(ManifestError) as e:
        validate_manifest(df)
    message = str(e.value)
    assert f"row 2, column '{column}'" in message and why in message


def test_duplicate_path_and_unknown_label():
    with pytest.raises(ManifestError, match="row 2, column 'path': duplicate"):
        validate_manifest(pd.DataFrame([_row(), _row()]))
    with pytest.raises(ManifestError, match="row 1, column 'label'"):
        validate_manifest(pd.DataFrame([_row(label="astrocytoma")]), classes=["glioma"])


def test_load_dataset_checks_task_labels(tmp_path):
    write_manifest(pd.DataFrame([_row()]), tmp_path)
    (tmp_path / "dataset.yaml").write_text("classes: [glioma]\ntasks: {presence: {tumor: [glioma, other]}}\n")
    with pytest.raises(ManifestError, match="unknown label"):
        load_dataset(tmp_path)
    (tmp_path / "dataset.yaml").write_text("classes: [glioma, notumor]\ntasks: {presence: {tumor: [glioma], none: [notumor]}}\n")
    ds = load_dataset(tmp_path)
    assert ds.task_labels("presence") == (["tumor", "none"], {"glioma": 0, "notumor": 1})
    assert ds.task_labels("multiclass")[0] == ["glioma", "notumor"]

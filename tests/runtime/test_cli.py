"""``zsmed predict`` and ``zsmed bundle`` from the command line (in-process)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from zsmed.cli.main import main


def test_predict_folder_json_with_a_bad_file(reference_bundle: Path, tmp_path: Path, isolated_dirs: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    Image.new("RGB", (120, 90), (190, 130, 110)).save(folder / "a.jpg")
    Image.new("L", (64, 64), 255).save(folder / "sub" / "b.png")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    code = main(["predict", str(reference_bundle), str(folder), "--json", "--backend", "onnxruntime",
                 "--batch-size", "2"])
    assert code == 0
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.out.splitlines()]
    assert [Path(r["source"]).name for r in lines] == ["a.jpg", "broken.png", "b.png"]
    assert "error" in lines[1] and lines[1]["label"] is None
    assert all(set(r["probabilities"]) == {"nv", "mel", "bkl", "bcc"} for r in (lines[0], lines[2]))
    assert "1 of 3 inputs could not be read" in captured.err


def test_predict_refuses_unsigned_where_required(reference_bundle: Path, tmp_path: Path, isolated_dirs: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bundle", "keygen", str(tmp_path / "site")]) == 0
    image = tmp_path / "x.png"
    Image.new("RGB", (64, 64)).save(image)
    code = main(["predict", str(reference_bundle), str(image), "--require-signature",
                 "--trusted-key", str(tmp_path / "site.pub")])
    assert code == 2
    assert "not signed, and this site requires signed bundles" in capsys.readouterr().err
    assert main(["bundle", "keygen", str(tmp_path / "site")]) == 2  # never overwrites a key


def test_key_files_that_are_not_keys_give_one_line_errors(tmp_path: Path, isolated_dirs: Path) -> None:
    from zsmed.errors import BundleError
    from zsmed.runtime.format import load_private_key, load_public_key

    image = tmp_path / "x.png"
    Image.new("RGB", (64, 64)).save(image)
    assert main(["bundle", "keygen", str(tmp_path / "site")]) == 0
    private, public = tmp_path / "site.key", tmp_path / "site.pub"
    assert load_private_key(private) is not None and load_public_key(public) is not None
    from cryptography.hazmat.primitives import serialization

    encrypted = tmp_path / "encrypted.key"
    encrypted.write_bytes(load_private_key(private).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"site passphrase")))
    hint = " (make one with `zsmed bundle keygen`)"
    cases = [
        (load_public_key, image, "the trusted public key is not a PEM key file" + hint),  # a photo picked by mistake
        (load_public_key, tmp_path / "missing.pub", "cannot read the trusted public key (file not found)"),
        (load_public_key, private, "the trusted public key is not a PEM key file" + hint),  # the private half
        (load_private_key, public, "the signing key is not a PEM key file" + hint),  # the public half
        (load_private_key, tmp_path, "cannot read the signing key (is a directory, not a file)"),
        (load_private_key, encrypted, "the signing key is protected by a passphrase; zsmed signs with an "
                                      "unencrypted key (keep it on a drive only the signing account can read)"),
    ]
    for loader, path, message in cases:
        with pytest.raises(BundleError) as caught:
            loader(path)
        assert str(caught.value) == f"{path}: {message}"


def test_outputs_that_cannot_be_written_are_one_line_errors(tmp_path: Path, isolated_dirs: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    not_a_folder = tmp_path / "file.txt"
    not_a_folder.write_text("x")
    assert main(["bundle", "keygen", str(not_a_folder / "site")]) == 2  # e.g. a read-only or full stick
    err = capsys.readouterr().err
    assert err.startswith(f"zsmed: error: {not_a_folder}") and "Traceback" not in err, err
    assert not_a_folder.read_text() == "x"


def test_bundle_info_and_verify(
    reference_bundle: Path, isolated_dirs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bundle", "info", str(reference_bundle), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["manifest"]["format"] == "zsmed-bundle" and info["card"]["class_names"]
    assert main(["bundle", "verify", str(reference_bundle), "--backend", "openvino"]) == 0
    assert "OK" in capsys.readouterr().out
    assert main(["predict", str(reference_bundle), str(reference_bundle.parent / "absent.png")]) == 2


def test_predict_every_frame_of_a_multi_frame_dicom(reference_bundle: Path, tmp_path: Path, isolated_dirs: Path,
                                                    capsys: pytest.CaptureFixture[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A 10-frame MR image gives one result per frame (each frame decoded and predicted on its
    own), ``--frames first`` only the first, and ``--series`` one entry over all frames."""
    import numpy as np
    import pydicom

    from tests.conftest import dicom_test_file
    from zsmed.runtime.predict import load_predictor

    multi = dicom_test_file("emri_small.dcm")
    single = dicom_test_file("CT_small.dcm")
    assert int(pydicom.dcmread(multi, stop_before_pixels=True).NumberOfFrames) == 10
    code = main(["predict", str(reference_bundle), str(multi), str(single), "--json", "--backend", "onnxruntime",
                 "--series"])
    assert code == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    per_frame = [r for r in lines if "series" not in r and r["source"] == str(multi)]
    assert [r["frame"] for r in per_frame] == list(range(10))
    assert next(r for r in lines if "series" not in r and r["source"] == str(single)).get("frame") is None
    # frames differ, so their embeddings (OOD scores) differ: no frame is a copy of frame 0
    assert len({r["ood_score"] for r in per_frame}) > 5
    assert sum("series" in r for r in lines) == 2  # the MR series and the CT series
    predictor = load_predictor(reference_bundle, backend="onnxruntime")
    # the 10 frames come from one read of the file, with the same results as frame-by-frame reads
    import zsmed.dicom

    opened: list[str] = []
    real_open = zsmed.dicom.open_dataset

    def counting_open(path: Path, **kwargs: object) -> object:
        opened.append(str(path))
        return real_open(path, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(zsmed.dicom, "open_dataset", counting_open)
    again = predictor.predict_files([multi], batch_size=3, trusted_input=True)  # in-process: the fast path
    assert opened == [str(multi)]
    assert [r.ood_score for r in again] == [r["ood_score"] for r in per_frame]
    # untrusted input (the default) is decoded in the contained worker: same results, nothing read here
    opened.clear()
    contained = predictor.predict_files([multi], batch_size=3)
    assert opened == []
    assert [r.ood_score for r in contained] == [r["ood_score"] for r in per_frame]
    first = predictor.predict_files([multi], frames="first")
    assert len(first) == 1 and first[0].frame is None
    assert np.isclose(first[0].ood_score, per_frame[0]["ood_score"], atol=1e-3)


def test_predict_on_a_messy_folder_keeps_stderr_to_its_own_lines(reference_bundle: Path, tmp_path: Path) -> None:
    """pydicom's test files (broken headers, crafted JPEG 2000, 12-bit JPEG, reports): codec and
    pydicom complaints go into each file's error entry, not onto the terminal between results."""
    import os
    import subprocess
    import sys

    import pydicom.data

    folder = Path(pydicom.data.__file__).parent / "test_files"
    env = {**os.environ, "ZSMED_DATA_DIR": str(tmp_path / "data"), "ZSMED_CACHE_DIR": str(tmp_path / "cache")}
    run = subprocess.run([sys.executable, "-m", "zsmed", "predict", str(reference_bundle), str(folder),
                          "--backend", "onnxruntime"], capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    err_lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert err_lines and all(line.startswith("zsmed:") for line in err_lines), err_lines[:10]
    results = run.stdout.splitlines()
    assert len(results) > 200
    # the crafted JPEG 2000 file's reason includes what OpenJPEG printed
    crafted = next(line for line in results if "JPEG2000-embedded-sequence-delimiter.dcm" in line)
    assert "error: cannot decode JPEG 2000" in crafted and "Invalid number of tiles" in crafted


def test_predict_reads_the_images_a_dicomdir_references(reference_bundle: Path, tmp_path: Path, isolated_dirs: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """A CD handed over as its DICOMDIR: the images its records reference are predicted (here CT, MR
    and CR studies, all unlike the skin model's images), and a referenced file missing from the disc
    is named, not skipped."""
    import shutil

    import pydicom
    import pydicom.data

    source = Path(pydicom.data.__file__).parent / "test_files" / "dicomdirtests"
    disc = tmp_path / "disc"
    shutil.copytree(source, disc, symlinks=True)
    referenced = [r for r in pydicom.dcmread(disc / "DICOMDIR").DirectoryRecordSequence if r.get("ReferencedFileID")]
    (disc / "98892003" / "MR700" / "4618").unlink()  # a file lost from the copy
    assert main(["predict", str(reference_bundle), str(disc / "DICOMDIR"), "--json", "--backend", "onnxruntime"]) == 0
    results = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(results) == len(referenced) == 31
    assert not any(Path(r["source"]).name.upper().startswith("DICOMDIR") for r in results)
    lost = [r for r in results if r.get("error")]
    assert [Path(r["source"]).name for r in lost] == ["4618"] and "not found" in lost[0]["error"]
    assert all(r["abstain"] and r["label"] is None for r in results)


def test_predict_works_on_a_locked_down_profile(reference_bundle: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """No writable data or cache folder (a locked-down hospital account): no log file, no backend
    memory, no optimised-model cache, but the prediction itself still runs."""
    blocked = tmp_path / "not_a_folder"
    blocked.write_text("a file where the folders would go")
    monkeypatch.setenv("ZSMED_DATA_DIR", str(blocked / "data"))
    monkeypatch.setenv("ZSMED_CACHE_DIR", str(blocked / "cache"))
    image = tmp_path / "x.png"
    Image.new("RGB", (224, 224), (190, 130, 110)).save(image)
    for backend in ("auto", "onnxruntime", "openvino"):
        assert main(["predict", str(reference_bundle), str(image), "--json", "--backend", backend]) == 0
        result = json.loads(capsys.readouterr().out)
        assert result["source"] == str(image) and "error" not in result, result

from __future__ import annotations

import numpy as np
import torch

from zsmed.encoders import create_image_encoder
from zsmed.encoders.efficientnet_lite import LITE_VARIANTS, EfficientNetLite, load_efficientnet_lite


def test_lite0_has_published_size_and_loads_strictly() -> None:
    model = load_efficientnet_lite("efficientnet-lite0")
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params == 4_652_008  # EfficientNet-Lite0: 4.65 M parameters with the 1000-class head


def test_lite2_architecture_matches_its_weights() -> None:
    model = load_efficientnet_lite("efficientnet-lite2")
    assert model.head_in == 352 and len(model._blocks) == 21


def test_same_padding_matches_tf_for_odd_and_even_inputs() -> None:
    model = EfficientNetLite(LITE_VARIANTS["efficientnet-lite0"]).eval()
    with torch.no_grad():
        # TF 'same': output = ceil(input / 32) at any size (small inputs keep the test fast).
        assert model.forward_features(torch.zeros(1, 3, 96, 96)).shape == (1, 1280, 3, 3)
        assert model.forward_features(torch.zeros(1, 3, 97, 97)).shape == (1, 1280, 4, 4)


def test_encoder_features_are_deterministic_and_discriminative(shared_data) -> None:
    from zsmed.imageio import read_image
    from zsmed.preprocess import to_model_input

    encoder = create_image_encoder("efficientnet-lite0")
    skin = sorted((shared_data / "ham10000_fs" / "base" / "nv").glob("*.jpg"))[:3]
    xray = sorted((shared_data / "cxr_kermany" / "NORMAL").glob("*.jpeg"))[:3]
    batch = np.stack([to_model_input(read_image(p), encoder.preprocess) for p in skin + xray])
    first = encoder.encode(batch)
    assert first.shape == (6, 1280) and np.isfinite(first).all()
    np.testing.assert_array_equal(first, encoder.encode(batch))
    unit = first / np.linalg.norm(first, axis=1, keepdims=True)
    sim = unit @ unit.T
    within = (sim[:3, :3].sum() - 3) / 6 + (sim[3:, 3:].sum() - 3) / 6
    across = sim[:3, 3:].mean()
    # Skin photos resemble each other more than they resemble chest films.
    assert within / 2 > across + 0.1

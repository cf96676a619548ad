"""A board's element as a fixed random physical layer: encoding, configuration, sharing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hilt.host.backends import BackendError, open_backend
from hilt.host.backends.board_layer import BoardLayer, as_layer, random_configuration
from hilt.host.train.blocks import input_width, physical_queries
from hilt.host.train.goodness import LabelLayout
from hilt.host.train.mfff import MFFFConfig, train_mfff
from hilt.host.train.run import block_urls, close_layers, open_layers
from hilt.quant.binary_golden import popcount_matches


@pytest.fixture
def binary():
    layer = BoardLayer(open_backend("golden:icebreaker?pe=binary"), seed=3)
    yield layer
    layer.close()


def test_a_binary_layer_answers_the_threshold_bits_of_its_random_configuration(binary):
    config = random_configuration(binary.board, 3)
    x = np.random.default_rng(0).random((20, 64))
    bits = (x > 0.5).astype(np.uint8)
    counts = popcount_matches(bits, config["weights"])
    assert np.array_equal(binary.forward(x), (counts >= config["thresholds"]).astype(float))
    assert binary.forward(x).dtype == np.float64
    thresholds = config["thresholds"]
    assert thresholds.min() >= 28 and thresholds.max() <= 36 and len(set(thresholds)) > 3


def test_the_configuration_follows_the_seed(binary):
    same = random_configuration(binary.board, 3)
    other = random_configuration(binary.board, 4)
    assert np.array_equal(same["weights"], random_configuration(binary.board, 3)["weights"])
    assert not np.array_equal(same["weights"], other["weights"])


def test_integer_elements_get_scaled_clipped_inputs():
    with BoardLayer(open_backend("golden:icebreaker?pe=synapse"), seed=0,
                    full_scale=2.0) as layer:
        encoded = layer.encode(np.array([[0.0, 0.5, 1.0, 2.0, 9.0, -0.5, -2.0, -9.0]]))
        assert encoded.tolist() == [[0, 2, 4, 7, 7, -2, -7, -8]]
        state = layer.board.read_state()
        config = random_configuration(layer.board, 0)
        assert np.array_equal(state["plus"], config["plus"])
        x = np.array([[1.0, 0, 0, 0, 0, 0, 0, 0]])
        weights = config["plus"] - config["minus"]
        assert np.array_equal(layer.forward(x)[0], weights[:, 0] * 4)


def test_a_shift_array_gets_signed_powers_of_two():
    with BoardLayer(open_backend("golden:icebreaker?pe=shift"), seed=1) as layer:
        weights = random_configuration(layer.board, 1)["weights"]
        magnitudes = np.abs(weights)
        assert np.all(magnitudes & (magnitudes - 1) == 0) and (weights < 0).any()
        x = np.full((2, 64), 1.0)
        assert np.array_equal(layer.forward(x), np.tile(weights.sum(axis=1) * 127, (2, 1)))


def test_queries_are_the_boards_and_bad_inputs_are_refused(binary):
    binary.forward(np.zeros((5, 64)))
    assert binary.stats is binary.board.stats and binary.stats.queries == 5
    with pytest.raises(BackendError, match="finite"):
        binary.forward(np.full((1, 64), np.nan))
    with pytest.raises(BackendError, match=r"shape \(N >= 1, 64\)"):
        binary.forward(np.zeros((1, 74)))
    assert binary.describe()["board_layer"] == {"element": "binary_layer", "seed": 3,
                                                "bits_above": 0.5}


def test_a_physical_system_is_its_own_layer():
    with open_backend("physical:optical?in=4&out=8") as system:
        assert as_layer(system) is system


def test_blocks_with_one_board_url_share_one_board():
    blank = LabelLayout(64, 10, tuple(range(10)))
    urls = block_urls(["golden:icebreaker?pe=binary"], blocks=2, hidden=64, layout=blank)
    layers = open_layers(urls, seed=0)
    try:
        assert layers[0] is layers[1] and isinstance(layers[0], BoardLayer)
        layers[0].forward(np.zeros((3, 64)))
        assert physical_queries(layers) == 3
    finally:
        close_layers(layers)
    assert input_width(0, 64, blank) == 64 and input_width(0, 64, LabelLayout(64, 10)) == 74


def test_a_64_wide_board_takes_the_image_with_the_label_around_it_or_in_its_blank_pixels(
        split):
    layers = open_layers(["golden:icebreaker?pe=binary"], seed=0)
    try:
        with pytest.raises(BackendError, match="64 features but the block's input has 74"):
            train_mfff(split, layers, MFFFConfig(blocks=1, hidden=16, epochs=1,
                                                 label_path="physical"), progress=False)
        around = train_mfff(split, layers, MFFFConfig(blocks=1, hidden=64, epochs=2),
                            progress=False)
        config = MFFFConfig(blocks=1, hidden=64, skip=True, label="blank", lr=0.02,
                            batch_size=16, epochs=2)
        result = train_mfff(split, layers, config, progress=False)
    finally:
        close_layers(layers)
    assert around.test_accuracy > 0.6 and around.queries_per_sample == 1.0
    assert result.test_accuracy > 0.6 and result.queries_per_sample == 3.0
    assert torch.isfinite(result.net.blocks[0].digital.weight).all()

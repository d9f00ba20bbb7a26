"""The Word2Bits quantizers against the paper's definitions (Lam 2018, section 3.2)."""
import numpy as np
import pytest

from gensim_bits.quantizers import check_bits, levels, quantize, quantize_codes


def paper_q1(x):
    return 1 / 3 if x >= 0 else -1 / 3


def paper_q2(x):
    if x > 0.5:
        return 3 / 4
    if 0 <= x <= 0.5:
        return 1 / 4
    if -0.5 <= x < 0:
        return -1 / 4
    return -3 / 4


def around(thresholds):
    """Each threshold, its float32 neighbours, and points a little further out."""
    points = []
    for t in np.asarray(thresholds, dtype=np.float32):
        points += [t, np.nextafter(t, np.float32(-np.inf)), np.nextafter(t, np.float32(np.inf)),
                   t - np.float32(1e-3), t + np.float32(1e-3)]
    return np.array(points + [-7.0, -1.0, 1.0, 7.0], dtype=np.float32)


def test_levels_are_the_papers():
    np.testing.assert_allclose(levels(1), [-1 / 3, 1 / 3], rtol=1e-7)
    np.testing.assert_allclose(levels(2), [-3 / 4, -1 / 4, 1 / 4, 3 / 4], rtol=1e-7)
    for bits in (4, 8):
        values = levels(bits)
        assert len(values) == 2 ** bits
        np.testing.assert_allclose(np.diff(values), 2 / 2 ** bits, rtol=1e-5)
        np.testing.assert_allclose(values, -values[::-1], atol=1e-7)


def test_one_bit_matches_definition_around_zero():
    x = np.concatenate([around([0.0]), np.array([-0.0], dtype=np.float32)])
    expected = np.array([paper_q1(value) for value in x], dtype=np.float32)
    np.testing.assert_array_equal(quantize(x, 1), expected)


def test_two_bits_match_definition_around_every_threshold():
    x = around([-0.5, 0.0, 0.5])
    expected = np.array([paper_q2(value) for value in x], dtype=np.float32)
    np.testing.assert_array_equal(quantize(x, 2), expected)


@pytest.mark.parametrize("bits", [4, 8])
def test_uniform_levels_split_at_every_bin_edge(bits):
    half = 2 ** (bits - 1)
    edges = np.arange(-half + 1, half) / half  # interior thresholds k / half
    x = around(edges)
    q = quantize(x, bits)
    assert set(q.tolist()) <= set(levels(bits).tolist())
    # Each value goes to the level of the bin it lies in: |x - Q(x)| <= half a bin,
    # except beyond [-1, 1] where it clips to the outermost level.
    inside = np.abs(x) <= 1
    assert np.all(np.abs(x[inside] - q[inside]) <= 0.5 / half + 1e-6)
    assert np.all(np.diff(quantize(np.sort(x), bits)) >= 0)  # monotone
    # Ties follow the two-bit rule: positive edges round down, negative edges round up.
    for edge in edges:
        value = quantize(np.float32(edge), bits)
        assert value == pytest.approx(edge - 0.5 / half if edge > 0 else edge + 0.5 / half, abs=1e-6)


def test_codes_index_levels():
    x = np.linspace(-1.5, 1.5, 101, dtype=np.float32)
    for bits in (1, 2, 4, 8):
        np.testing.assert_array_equal(levels(bits)[quantize_codes(x, bits)], quantize(x, bits))


def test_thirty_two_bits_is_identity():
    x = np.array([-2.5, 0.1, 3.0], dtype=np.float32)
    np.testing.assert_array_equal(quantize(x, 32), x)
    with pytest.raises(ValueError):
        levels(32)


@pytest.mark.parametrize("bad", [0, 3, 16, 64, True, 1.0, "1", None])
def test_unsupported_bits_raise(bad):
    with pytest.raises(ValueError, match="bits must be one of"):
        check_bits(bad)


def test_the_kernels_bit_widths_are_the_quantizers():
    # The compiled kernel keeps its own copy of the widths (it imports no project module).
    from gensim_bits import packing, word2bits_inner
    from gensim_bits.quantizers import FLOAT_BITS, SUPPORTED_BITS
    assert word2bits_inner.SUPPORTED_BITS == SUPPORTED_BITS
    assert packing.PACKED_BITS == tuple(bits for bits in SUPPORTED_BITS if bits != FLOAT_BITS)
    rng = np.random.default_rng(0)
    context = rng.uniform(-1.2, 1.2, 64).astype(np.float32)
    cum_table = np.full(2, 2 ** 31 - 1, dtype=np.uint32)  # every negative draw is row 0, the context word
    for bits in SUPPORTED_BITS:
        syn0 = np.stack([context, np.zeros(64, np.float32)])
        syn1neg = np.zeros((2, 64), dtype=np.float32)
        word2bits_inner.cbow_step(syn0, syn1neg, cum_table, [0], 1, 0.5, bits, 1)
        # The centre word's output row moves by g * Q(context): the kernel's Q is quantizers'.
        update = syn1neg[1] / (syn1neg[1] @ quantize(context, bits)) * (quantize(context, bits) ** 2).sum()
        np.testing.assert_allclose(update, quantize(context, bits), rtol=1e-5, atol=1e-7)
    for bits in (3, 16):
        with pytest.raises(ValueError, match="bits must be one of"):
            word2bits_inner.cbow_step(syn0, syn1neg, cum_table, [0], 1, 0.5, bits, 1)

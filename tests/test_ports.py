"""Each pytest-xdist worker picks test ports from its own slice (prodstate.testing.ports)."""

from __future__ import annotations

from prodstate.testing.ports import _share

BAND = range(10000, 32768)


def test_outside_xdist_the_whole_band_is_used():
    assert _share(BAND, "", "") == BAND
    assert _share(BAND, "master", "3") == BAND


def test_workers_get_disjoint_slices_of_the_band():
    slices = [_share(BAND, f"gw{n}", "3") for n in range(3)]
    assert all(len(s) == len(BAND) // 3 for s in slices)
    for a in range(3):
        for b in range(a + 1, 3):
            assert not set(slices[a]) & set(slices[b])
    assert all(s.start >= BAND.start and s.stop <= BAND.stop for s in slices)

"""Synthetic sweeps and SVG helpers for the plot tests (imported by name, like scaling_synth)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import numpy as np

from service.scaling import Chinchilla, RunArrays

TRUTH = Chinchilla(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)
BUDGETS = np.array([1e18, 3e18, 1e19, 3e19, 1e20])
SIZES = 9
OUTLIER_ROW = 12
SVG_NS = "{http://www.w3.org/2000/svg}"


def sweep(noise: float = 0.004, seed: int = 0, outlier: bool = False) -> RunArrays:
    """SIZES sizes per budget, symmetric in log N around the true optimum; lognormal noise."""
    rng = np.random.default_rng(seed)
    N, D = [], []
    for C in BUDGETS:
        n_opt = TRUTH.G * (C / 6.0) ** TRUTH.a
        for x in np.linspace(-1.2, 1.2, SIZES):
            N.append(n_opt * np.exp(x))
            D.append(C / (6.0 * N[-1]))
    N_arr, D_arr = np.array(N), np.array(D)
    L = TRUTH.predict(N_arr, D_arr) * np.exp(rng.normal(0.0, noise, N_arr.size))
    if outlier:
        L[OUTLIER_ROW] *= 1.15
    return RunArrays.from_arrays(N_arr, D_arr, L)


def parse(svg: bytes) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == SVG_NS + "svg"
    return root


def gids(root: ET.Element, pattern: str) -> list[str]:
    """Element ids matching ``pattern`` in full, sorted."""
    rx = re.compile(pattern)
    return sorted(i for e in root.iter() if (i := e.get("id")) is not None and rx.fullmatch(i))


def element(root: ET.Element, gid: str) -> ET.Element:
    found = [e for e in root.iter() if e.get("id") == gid]
    assert len(found) == 1, f"{len(found)} elements with id {gid!r}"
    return found[0]


def n_markers(root: ET.Element, gid: str) -> int:
    """Markers drawn by the scatter with this gid: the SVG backend draws each as a <use> of a
    path defined once in <defs>, or (for few markers) as a <path> of its own."""

    def count(e: ET.Element) -> int:
        if e.tag == SVG_NS + "defs":
            return 0
        own = e.tag in (SVG_NS + "use", SVG_NS + "path")
        return int(own) + sum(count(c) for c in e)

    return count(element(root, gid))


def text_of(root: ET.Element, gid: str) -> str:
    return "".join(element(root, gid).itertext())

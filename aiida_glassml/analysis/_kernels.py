"""Numba kernels for the analysis library (optional: callers fall back to numpy/scipy when numba is missing).

``cache=True`` stores the compiled code next to this file, so only the first call on a machine pays the compile.
"""

from __future__ import annotations

import numpy as np

try:
    import numba
except ImportError:  # pragma: no cover - numba comes with the package; keep the library usable without it
    numba = None

__all__ = ('HAVE_NUMBA', 'pair_histogram_orthorhombic')

HAVE_NUMBA = numba is not None

#: cells per cutoff length along each axis; longer runs of contiguous atoms vectorise better than finer culling
CELLS_PER_CUTOFF = 1.0


def _gap(delta, n, width):
    """Smallest minimum-image distance along one axis between points in two cells ``delta`` cells apart."""
    delta = delta % n
    return max(0, min(delta, n - delta) - 1) * width


def _half_window(budget, width, n):
    """Cells either side that can hold a partner when the squared gap may reach ``budget`` (n: the whole axis)."""
    if budget <= 0.0:
        return 0
    return min(int(np.ceil(np.sqrt(budget) / width)), n)


def _pair_histogram_orthorhombic(wrapped, box, codes, row_of_pair, n_rows, cutoff, dr, n_bins, cells_per_cutoff):
    """Counts of unordered pairs closer than ``cutoff`` per species-pair row and distance bin (minimum image).

    ``wrapped`` (n, 3) lies in [0, box); ``row_of_pair[a * ns + b]`` is the histogram row of species codes a, b.
    Distances and bins are computed with the same floating-point operations as the pair-list path
    (``neighbors.neighbor_pairs`` + ``bincount``) so both give identical integer counts.
    """
    n_atoms = wrapped.shape[0]
    ns = int(np.sqrt(row_of_pair.shape[0]) + 0.5)
    stride = n_bins + 1
    hist = np.zeros(n_rows * stride, dtype=np.int64)
    n_cells = np.empty(3, dtype=np.int64)
    width = np.empty(3)
    most = int(np.cbrt(2.0 * n_atoms)) + 1  # few atoms per cell, whatever the cutoff: bounded memory
    for axis in range(3):
        n_cells[axis] = min(most, max(1, int(box[axis] / cutoff * cells_per_cutoff + 1e-9)))
        width[axis] = box[axis] / n_cells[axis]
    total_cells = n_cells[0] * n_cells[1] * n_cells[2]
    # counting sort of the atoms by cell, positions in contiguous columns
    cell_of = np.empty(n_atoms, dtype=np.int64)
    for k in range(n_atoms):
        flat = 0
        for axis in range(3):
            c = int(wrapped[k, axis] / width[axis])
            if c >= n_cells[axis]:
                c = n_cells[axis] - 1
            flat = flat * n_cells[axis] + c
        cell_of[k] = flat
    start = np.zeros(total_cells + 1, dtype=np.int64)
    for k in range(n_atoms):
        start[cell_of[k] + 1] += 1
    for c in range(total_cells):
        start[c + 1] += start[c]
    fill = start[:-1].copy()
    xs = np.empty(n_atoms)
    ys = np.empty(n_atoms)
    zs = np.empty(n_atoms)
    species = np.empty(n_atoms, dtype=np.int64)
    for k in range(n_atoms):
        slot = fill[cell_of[k]]
        fill[cell_of[k]] += 1
        xs[slot] = wrapped[k, 0]
        ys[slot] = wrapped[k, 1]
        zs[slot] = wrapped[k, 2]
        species[slot] = codes[k]
    lx, ly, lz = box[0], box[1], box[2]
    hx, hy, hz = 0.5 * lx, 0.5 * ly, 0.5 * lz
    cut2 = cutoff * cutoff * (1.0 + 1e-9)  # lenient, for skipping cell pairs
    tol_x, tol_y, tol_z = 1e-12 * hx, 1e-12 * hy, 1e-12 * hz
    bins = np.empty(n_atoms, dtype=np.int64)
    runs = np.empty((2, 2), dtype=np.int64)
    for ca in range(total_cells):
        ax = ca // (n_cells[1] * n_cells[2])
        ay = (ca // n_cells[2]) % n_cells[1]
        az = ca % n_cells[2]
        # cells along x, then y, then a run of cells along z (contiguous atoms), that can hold a partner within the
        # cutoff: the gap between cells delta apart along an axis is at least (delta - 1) cell widths (minimum image)
        kx = _half_window(cut2, width[0], n_cells[0])
        for ox in range(-kx, kx + 1) if 2 * kx + 1 < n_cells[0] else range(n_cells[0]):
            bx = (ax + ox) % n_cells[0]
            gx = _gap(bx - ax, n_cells[0], width[0])
            ky = _half_window(cut2 - gx * gx, width[1], n_cells[1])
            for oy in range(-ky, ky + 1) if 2 * ky + 1 < n_cells[1] else range(n_cells[1]):
                by = (ay + oy) % n_cells[1]
                gy = _gap(by - ay, n_cells[1], width[1])
                rem = cut2 - gx * gx - gy * gy
                if rem <= 0.0:
                    continue
                kz = _half_window(rem, width[2], n_cells[2])
                row = (bx * n_cells[1] + by) * n_cells[2]
                n_runs = 0
                if 2 * kz + 1 >= n_cells[2]:
                    runs[0, 0], runs[0, 1] = row, row + n_cells[2]
                    n_runs = 1
                else:
                    lo, hi = az - kz, az + kz + 1
                    if lo < 0:
                        runs[0, 0], runs[0, 1] = row, row + hi
                        runs[1, 0], runs[1, 1] = row + lo + n_cells[2], row + n_cells[2]
                        n_runs = 2
                    elif hi > n_cells[2]:
                        runs[0, 0], runs[0, 1] = row + lo, row + n_cells[2]
                        runs[1, 0], runs[1, 1] = row, row + hi - n_cells[2]
                        n_runs = 2
                    else:
                        runs[0, 0], runs[0, 1] = row + lo, row + hi
                        n_runs = 1
                for r in range(n_runs):
                    # atoms sorted by cell: j > i visits each unordered pair once over the symmetric stencil
                    for i in range(start[ca], start[ca + 1]):
                        j0 = max(start[runs[r, 0]], i + 1)
                        j1 = start[runs[r, 1]]
                        if j1 <= j0:
                            continue
                        xi, yi, zi = xs[i], ys[i], zs[i]
                        row_base = species[i] * ns
                        # pass 1 (vectorised; slices so that the loads are contiguous): bin of each pair, n_bins
                        # for pairs beyond the cutoff
                        xb, yb, zb = xs[j0:j1], ys[j0:j1], zs[j0:j1]
                        near = False
                        for k in range(j1 - j0):
                            dx = xb[k] - xi
                            dy = yb[k] - yi
                            dz = zb[k] - zi
                            rx = dx - lx if dx > hx else (dx + lx if dx < -hx else dx)
                            ry = dy - ly if dy > hy else (dy + ly if dy < -hy else dy)
                            rz = dz - lz if dz > hz else (dz + lz if dz < -hz else dz)
                            d = np.sqrt(rx * rx + ry * ry + rz * rz)
                            b = min(int(d / dr), n_bins - 1)
                            bins[k] = b if d < cutoff else n_bins
                            near |= ((abs(abs(dx) - hx) < tol_x) | (abs(abs(dy) - hy) < tol_y)
                                     | (abs(abs(dz) - hz) < tol_z))
                        if near:
                            # where dx/box rounds to exactly 0.5, match np.round (half to even)
                            for j in range(j0, j1):
                                dx = xs[j] - xi
                                dy = ys[j] - yi
                                dz = zs[j] - zi
                                rx = dx - lx * np.rint(dx / lx)
                                ry = dy - ly * np.rint(dy / ly)
                                rz = dz - lz * np.rint(dz / lz)
                                d = np.sqrt(rx * rx + ry * ry + rz * rz)
                                b = min(int(d / dr), n_bins - 1)
                                bins[j - j0] = b if d < cutoff else n_bins
                        # pass 2: scatter into the species-pair rows (column n_bins collects the misses)
                        sb = species[j0:j1]
                        for k in range(j1 - j0):
                            hist[row_of_pair[row_base + sb[k]] * stride + bins[k]] += 1
    return hist.reshape(n_rows, stride)[:, :n_bins].copy()


if HAVE_NUMBA:
    _gap = numba.njit(cache=True, inline='always')(_gap)
    _half_window = numba.njit(cache=True, inline='always')(_half_window)
    _pair_histogram_orthorhombic = numba.njit(cache=True)(_pair_histogram_orthorhombic)


def pair_histogram_orthorhombic(wrapped, box, codes, row_of_pair, n_rows, cutoff, dr, n_bins):
    """Typed entry point of the compiled kernel (see ``_pair_histogram_orthorhombic``)."""
    return _pair_histogram_orthorhombic(
        np.ascontiguousarray(wrapped, dtype=np.float64), np.ascontiguousarray(box, dtype=np.float64),
        np.ascontiguousarray(codes, dtype=np.int64), np.ascontiguousarray(row_of_pair, dtype=np.int64),
        int(n_rows), float(cutoff), float(dr), int(n_bins), float(CELLS_PER_CUTOFF),
    )  # fmt: skip

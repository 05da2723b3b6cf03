"""The verdicts of docs/results, computed under the results' rule from the numbers the pages hold.

python benchmarks/page_verdicts.py [PAGE ...]   # e.g. ham10000_deepknn; default: every page

The benchmark folders behind the pages are not kept in the repository; the pages keep the
per-seed values where they were written down, otherwise the mean ± std over seeds. With per-seed
values the verdict is :func:`medknn.evaluation.verdict.compare` (the same function the table
scripts call on run folders); with means ± std only, :func:`summary_verdict` decides what those
can decide and says ``undetermined`` otherwise. Every verdict line on the pages is a line of this
script's output; a rerun replaces them with the table scripts' lines from the runs. The
constellation pages make constellation_table.py's comparisons among the rows they hold, and
name the rows of issue 19 they do not hold yet with the command that runs them.
"""

from __future__ import annotations

import argparse
import importlib.util
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from medknn.evaluation.verdict import compare, summary_verdict, verdict_lines

Line = Callable[[], str]

# ham10000_deepknn.md: per seed (Acc, MCR, RS), seeds 0, 1, 2
DEEPKNN = {
    "knn-imagenet": ((0.681, 0.241, 0.000), (0.688, 0.273, 0.000), (0.696, 0.283, 0.000)),
    "triplet": ((0.678, 0.342, 0.000), (0.669, 0.321, 0.000), (0.688, 0.312, 0.000)),
    "weighted-ce": ((0.666, 0.662, 0.625), (0.669, 0.610, 0.348), (0.624, 0.606, 0.375)),
    "deepknn": ((0.691, 0.492, 0.292), (0.700, 0.472, 0.304), (0.693, 0.484, 0.292)),
    "deepknn-star": ((0.748, 0.591, 0.417), (0.742, 0.571, 0.304), (0.737, 0.568, 0.333)),
    "deepknn-bank": ((0.638, 0.439, 0.208), (0.660, 0.443, 0.304), (0.642, 0.473, 0.375)),
}
DEEPKNN_COLUMNS = ("Acc", "MCR", "RS")
# ham10000_deepknn.md, issue 19's five seeds on one machine (the Deep kNN comparison and the
# bank's runs): per seed 0-4 (accuracy, MCR, RS, kNN BAC, AUC); the K_p = 1 rows are the same runs
# re-scored by deepknn_tables.py
DEEPKNN_5SEEDS: dict[str, tuple[tuple[float | None, ...], ...]] = {
    "deepknn": (
        (0.695, 0.504, 0.500, 0.514, 0.787),
        (0.683, 0.442, 0.391, 0.453, 0.780),
        (0.701, 0.505, 0.292, 0.510, 0.772),
        (0.692, 0.468, 0.348, 0.484, 0.797),
        (0.705, 0.466, 0.304, 0.471, 0.773),
    ),
    "deepknn (K_p = 1)": (
        (0.655, 0.459, 0.458, None, 0.688),
        (0.657, 0.430, 0.348, None, 0.672),
        (0.667, 0.440, 0.208, None, 0.679),
        (0.672, 0.450, 0.435, None, 0.687),
        (0.668, 0.433, 0.304, None, 0.676),
    ),
    "deepknn-bank": (
        (0.643, 0.452, 0.375, 0.472, 0.791),
        (0.643, 0.432, 0.304, 0.444, 0.766),
        (0.640, 0.441, 0.250, 0.458, 0.785),
        (0.656, 0.447, 0.174, 0.465, 0.793),
        (0.641, 0.418, 0.174, 0.426, 0.775),
    ),
    "deepknn-bank (K_p = 1)": (
        (0.612, 0.412, 0.333, None, 0.663),
        (0.610, 0.396, 0.217, None, 0.654),
        (0.607, 0.413, 0.208, None, 0.665),
        (0.632, 0.426, 0.174, None, 0.672),
        (0.623, 0.412, 0.174, None, 0.665),
    ),
    "deepknn-star": (
        (0.741, 0.559, 0.292, 0.563, 0.799),
        (0.746, 0.576, 0.435, 0.590, 0.814),
        (0.735, 0.596, 0.458, 0.600, 0.806),
        (0.743, 0.587, 0.435, 0.590, 0.811),
        (0.726, 0.555, 0.217, 0.556, 0.797),
    ),
    "deepknn-star (K_p = 1)": (
        (0.710, 0.528, 0.250, None, 0.730),
        (0.722, 0.546, 0.435, None, 0.738),
        (0.716, 0.564, 0.375, None, 0.748),
        (0.722, 0.556, 0.435, None, 0.745),
        (0.710, 0.529, 0.217, None, 0.731),
    ),
    "knn-imagenet": (
        (0.681, 0.241, 0.000, 0.264, 0.721),
        (0.688, 0.273, 0.000, 0.276, 0.694),
        (0.696, 0.283, 0.000, 0.299, 0.745),
        (0.699, 0.271, 0.000, 0.295, 0.718),
        (0.709, 0.287, 0.000, 0.299, 0.729),
    ),
    "knn-imagenet (K_p = 1)": (
        (0.648, 0.291, 0.083, None, 0.598),
        (0.637, 0.280, 0.000, None, 0.593),
        (0.644, 0.280, 0.042, None, 0.594),
        (0.645, 0.283, 0.087, None, 0.595),
        (0.663, 0.310, 0.043, None, 0.610),
    ),
    "triplet": (
        (0.688, 0.323, 0.042, 0.328, 0.717),
        (0.668, 0.249, 0.000, 0.261, 0.696),
        (0.691, 0.328, 0.000, 0.345, 0.730),
        (0.700, 0.327, 0.000, 0.343, 0.731),
        (0.689, 0.338, 0.000, 0.344, 0.722),
    ),
    "triplet (K_p = 1)": (
        (0.641, 0.347, 0.125, None, 0.623),
        (0.615, 0.291, 0.043, None, 0.592),
        (0.632, 0.323, 0.042, None, 0.612),
        (0.633, 0.333, 0.043, None, 0.618),
        (0.648, 0.347, 0.087, None, 0.626),
    ),
    "weighted-ce": (
        (0.670, 0.620, 0.500, 0.505, 0.915),
        (0.677, 0.635, 0.522, 0.511, 0.918),
        (0.680, 0.627, 0.458, 0.517, 0.916),
        (0.684, 0.642, 0.565, 0.532, 0.924),
        (0.654, 0.600, 0.391, 0.502, 0.896),
    ),
}  # fmt: skip
DEEPKNN_5SEEDS_KEYS = ("accuracy", "mcr", "rs", "knn_bac", "auc")
# ham10000_deepknn.md: mean ± std (3 seeds) of the columns without per-seed values
DEEPKNN_SUMMARY = {
    ("weighted-ce", "kNN BAC"): (0.507, 0.036),
    ("deepknn", "kNN BAC"): (0.490, 0.002),
    ("deepknn-star", "kNN BAC"): (0.582, 0.016),
    ("knn-imagenet", "AUC"): (0.720, 0.026),
    ("triplet", "AUC"): (0.724, 0.011),
    ("deepknn", "AUC"): (0.779, 0.006),
    ("knn-imagenet (K_p = 1)", "MCR"): (0.284, 0.006),
    ("triplet (K_p = 1)", "MCR"): (0.327, 0.013),
    ("deepknn (K_p = 1)", "MCR"): (0.458, 0.018),
}
# ham10000_deepknn.md: the M line (K = 5, K_p = 5), MCR of seeds 0, 1, 2; the K × M grid's
# MCR at K_p = 5, seed 0
M_LINE = {
    "K5_M3": (0.509, 0.462, 0.467),
    "K5_M5": (0.504, 0.442, 0.505),
    "K5_M7": (0.517, 0.448, 0.504),
}
KM_GRID_KP5 = {
    (1, 3): 0.507, (5, 3): 0.509, (9, 3): 0.451,
    (1, 5): 0.536, (5, 5): 0.504, (9, 5): 0.457,
    (1, 7): 0.493, (5, 7): 0.517, (9, 7): 0.472,
}  # fmt: skip
# ../feature_vectors.md: per seed (Acc, MCR, RS) in %
FEATURES = {
    "kNN-basic": ((69.0, 26.1, 0.0), (69.1, 26.8, 0.0), (68.8, 28.2, 4.2)),
    "NCA": ((68.9, 25.9, 0.0), (68.6, 26.2, 4.3), (68.7, 28.8, 0.0)),
    "LMNN": ((68.3, 27.3, 0.0), (66.5, 25.9, 4.3), (65.7, 26.3, 0.0)),
    "MLP+triplets": ((69.5, 32.1, 0.0), (68.1, 29.0, 0.0), (68.6, 29.8, 8.3)),
    "MLP+CE": ((72.0, 38.7, 4.2), (70.0, 37.8, 17.4), (69.7, 38.8, 4.2)),
    "MLP+deep-kNN": ((70.5, 39.0, 20.8), (69.3, 36.2, 8.7), (68.8, 40.4, 4.2)),
}
# pneumoniamnist_bstriplet.md: per seed (SEN, SPE, ACC, AUC), seeds 0-4
BSTRIPLET = {
    "CE (RS)": (
        (0.967, 0.628, 0.840, 0.936),
        (0.977, 0.573, 0.825, 0.946),
        (0.979, 0.637, 0.851, 0.958),
        (0.987, 0.603, 0.843, 0.943),
        (0.979, 0.624, 0.846, 0.943),
    ),
    "CE (DM)": (
        (0.982, 0.590, 0.835, 0.942),
        (0.979, 0.603, 0.838, 0.941),
        (0.964, 0.709, 0.869, 0.944),
        (0.990, 0.603, 0.845, 0.957),
        (0.972, 0.650, 0.851, 0.949),
    ),
    "CE+BST (RS)": (
        (0.964, 0.607, 0.830, 0.927),
        (0.979, 0.560, 0.822, 0.922),
        (0.974, 0.675, 0.862, 0.950),
        (0.992, 0.517, 0.814, 0.937),
        (0.997, 0.568, 0.837, 0.953),
    ),
    "CE+BST (DM)": (
        (0.951, 0.603, 0.821, 0.904),
        (0.962, 0.641, 0.841, 0.934),
        (0.974, 0.650, 0.853, 0.934),
        (0.969, 0.603, 0.832, 0.929),
        (0.982, 0.607, 0.841, 0.934),
    ),
    "CE+Triplet": (
        (0.979, 0.624, 0.846, 0.948),
        (0.964, 0.611, 0.832, 0.934),
        (0.974, 0.650, 0.853, 0.953),
        (0.985, 0.590, 0.837, 0.950),
        (0.992, 0.611, 0.849, 0.953),
    ),
    "CE+LS": (
        (0.985, 0.594, 0.838, 0.939),
        (0.987, 0.577, 0.833, 0.949),
        (0.972, 0.667, 0.857, 0.935),
        (0.977, 0.568, 0.824, 0.926),
        (0.990, 0.632, 0.856, 0.952),
    ),
    "CE+BST (DM-equal)": (
        (0.959, 0.739, 0.877, 0.952),
        (0.959, 0.701, 0.862, 0.946),
        (0.951, 0.791, 0.891, 0.949),
        (0.977, 0.675, 0.864, 0.938),
        (0.962, 0.722, 0.872, 0.955),
    ),
    "CE (DM-equal)": (
        (0.969, 0.679, 0.861, 0.952),
        (0.967, 0.654, 0.849, 0.944),
        (0.969, 0.735, 0.881, 0.952),
        (0.982, 0.705, 0.878, 0.955),
        (0.990, 0.714, 0.886, 0.955),
    ),
}  # fmt: skip
BSTRIPLET_COLUMNS = ("SEN", "SPE", "ACC", "AUC")
# ham10000_supcon.md: mean ± std over 3 seeds (Acc, macro F1, F1 majority, middle, minority)
SUPCON = {
    "ce": ((0.778, 0.001), (0.534, 0.003), (0.895, 0.001), (0.500, 0.013), (0.461, 0.012)),
    "focal": ((0.743, 0.018), (0.506, 0.011), (0.873, 0.014), (0.456, 0.032), (0.438, 0.029)),
    "ldam": ((0.752, 0.007), (0.469, 0.038), (0.882, 0.009), (0.417, 0.045), (0.392, 0.060)),
    "supcon": ((0.602, 0.004), (0.382, 0.013), (0.797, 0.015), (0.345, 0.044), (0.296, 0.007)),
    "ce+resample": (
        (0.703, 0.025), (0.543, 0.019), (0.842, 0.021), (0.472, 0.026), (0.503, 0.025)
    ),
    "supcon+resample": (
        (0.619, 0.041), (0.459, 0.011), (0.790, 0.042), (0.376, 0.033), (0.417, 0.007)
    ),
    # issue 19's control, run 2026-12-05 on another machine than the rows above (same seeds,
    # so the same splits)
    "linear-imagenet": (
        (0.601, 0.067), (0.364, 0.036), (0.787, 0.065), (0.324, 0.022), (0.279, 0.046)
    ),
}  # fmt: skip
SUPCON_COLUMNS = ("Acc", "macro F1", "F1 majority", "F1 middle", "F1 minority")
# ham10000_supcon.md, issue 19's rerun of Table 1 on the control's machine, seeds 0-4: per seed
# (the supcon_table.py verdict metrics, SUPCON_RERUN_KEYS), so every row is paired by seed
SUPCON_RERUN: dict[str, tuple[tuple[float, ...], ...]] = {
    "ce": (
        (0.772, 0.512, 0.504, 0.895, 0.489, 0.428),
        (0.776, 0.544, 0.515, 0.890, 0.500, 0.480),
        (0.780, 0.550, 0.515, 0.894, 0.488, 0.495),
        (0.778, 0.515, 0.488, 0.895, 0.489, 0.432),
        (0.772, 0.515, 0.491, 0.897, 0.478, 0.437),
    ),
    "focal": (
        (0.743, 0.495, 0.492, 0.875, 0.455, 0.419),
        (0.768, 0.530, 0.486, 0.885, 0.491, 0.460),
        (0.762, 0.526, 0.489, 0.886, 0.440, 0.480),
        (0.762, 0.488, 0.459, 0.891, 0.442, 0.409),
        (0.752, 0.490, 0.478, 0.889, 0.400, 0.435),
    ),
    "ldam": (
        (0.766, 0.490, 0.473, 0.892, 0.493, 0.388),
        (0.749, 0.491, 0.477, 0.869, 0.499, 0.392),
        (0.747, 0.456, 0.464, 0.880, 0.402, 0.377),
        (0.747, 0.467, 0.512, 0.888, 0.440, 0.376),
        (0.570, 0.322, 0.494, 0.794, 0.216, 0.256),
    ),
    "supcon": (
        (0.615, 0.384, 0.475, 0.801, 0.380, 0.281),
        (0.619, 0.383, 0.467, 0.813, 0.357, 0.288),
        (0.629, 0.416, 0.510, 0.809, 0.382, 0.335),
        (0.612, 0.398, 0.517, 0.801, 0.386, 0.304),
        (0.637, 0.406, 0.486, 0.818, 0.407, 0.303),
    ),
    "ce+resample": (
        (0.687, 0.497, 0.554, 0.836, 0.454, 0.433),
        (0.627, 0.491, 0.573, 0.762, 0.452, 0.442),
        (0.681, 0.522, 0.596, 0.824, 0.454, 0.480),
        (0.671, 0.537, 0.606, 0.808, 0.479, 0.497),
        (0.667, 0.523, 0.570, 0.816, 0.431, 0.496),
    ),
    "supcon+resample": (
        (0.635, 0.470, 0.541, 0.802, 0.408, 0.418),
        (0.579, 0.428, 0.539, 0.751, 0.365, 0.378),
        (0.642, 0.486, 0.569, 0.808, 0.377, 0.461),
        (0.624, 0.439, 0.535, 0.802, 0.370, 0.383),
        (0.618, 0.436, 0.526, 0.798, 0.359, 0.384),
    ),
    "linear-imagenet": (
        (0.622, 0.403, 0.450, 0.799, 0.349, 0.331),
        (0.526, 0.331, 0.452, 0.717, 0.311, 0.245),
        (0.656, 0.359, 0.434, 0.846, 0.311, 0.261),
        (0.232, 0.213, 0.446, 0.252, 0.269, 0.175),
        (0.479, 0.351, 0.480, 0.627, 0.339, 0.288),
    ),
}  # fmt: skip
SUPCON_RERUN_KEYS = ("accuracy", "macro_f1", "mcr", "f1_majority", "f1_middle", "f1_minority")
# ham10000_supcon.md, temperature study, seed 0: macro F1 and minority F1 without / with resampling
TEMPERATURE = {
    0.01: ((0.380, 0.394), (0.290, 0.324)),
    0.05: ((0.382, 0.455), (0.272, 0.406)),
    0.1: ((0.391, 0.467), (0.296, 0.412)),
    0.5: ((0.392, 0.465), (0.281, 0.422)),
    1.0: ((0.377, 0.424), (0.267, 0.369)),
}
# *_constellation.md: mean ± std over 10 repeats (kNN BAC, silhouette, Davies-Bouldin); the
# rows of issue 19 (ce-finetuned, npairs-all) are added here once they are on the pages
CONSTELLATION = {
    "breastmnist": {
        "knn-imagenet": ((0.660, 0.041), (0.015, 0.000), (5.797, 0.000)),
        "triplet-hard": ((0.679, 0.053), (0.117, 0.081), (2.428, 0.695)),
        "npairs": ((0.607, 0.053), (0.028, 0.064), (5.538, 2.331)),
        "constellation-K3": ((0.657, 0.046), (0.098, 0.107), (2.667, 0.831)),
        "constellation-K5": ((0.667, 0.066), (0.085, 0.121), (2.385, 0.858)),
        "constellation-K7": ((0.657, 0.043), (0.076, 0.123), (2.431, 0.684)),
    },
    "ham10000": {
        "knn-imagenet": ((0.318, 0.026), (-0.037, 0.000), (6.688, 0.000)),
        "triplet-hard": ((0.454, 0.031), (0.031, 0.071), (4.042, 0.425)),
        "npairs": ((0.395, 0.041), (-0.112, 0.071), (5.680, 1.753)),
        "constellation-K3": ((0.452, 0.024), (-0.024, 0.107), (5.118, 0.824)),
        "constellation-K5": ((0.446, 0.047), (-0.031, 0.091), (5.245, 1.647)),
        "constellation-K7": ((0.456, 0.029), (-0.019, 0.059), (5.318, 1.496)),
    },
}
CONSTELLATION_COLUMNS = ("kNN BAC", "silhouette", "Davies-Bouldin")
# *_constellation.md, issue 19's reruns on one machine: per draw (kNN BAC, silhouette,
# Davies-Bouldin) of the new baselines and the rows they are paired with
CONSTELLATION_RERUN: dict[str, dict[str, tuple[tuple[float, float, float], ...]]] = {
    "breastmnist": {
        "knn-imagenet": (
            (0.724, 0.015, 5.797),
            (0.575, 0.015, 5.797),
            (0.668, 0.015, 5.797),
            (0.669, 0.015, 5.797),
            (0.664, 0.015, 5.797),
            (0.635, 0.015, 5.797),
            (0.632, 0.015, 5.797),
            (0.682, 0.015, 5.797),
            (0.702, 0.015, 5.797),
            (0.645, 0.015, 5.797),
        ),
        "triplet-hard": (
            (0.727, 0.215, 1.575),
            (0.548, -0.089, 5.065),
            (0.696, 0.056, 2.133),
            (0.702, 0.106, 1.820),
            (0.589, 0.026, 3.369),
            (0.701, 0.022, 2.428),
            (0.721, 0.201, 1.659),
            (0.651, 0.039, 3.106),
            (0.677, 0.137, 2.221),
            (0.598, 0.062, 3.759),
        ),
        "npairs": (
            (0.653, 0.133, 2.469),
            (0.694, 0.044, 3.652),
            (0.643, 0.171, 2.488),
            (0.577, -0.019, 11.663),
            (0.584, -0.026, 9.551),
            (0.589, -0.022, 9.054),
            (0.548, 0.065, 4.955),
            (0.583, 0.052, 4.766),
            (0.653, 0.013, 3.263),
            (0.531, 0.004, 6.816),
        ),
        "constellation-K3": (
            (0.693, 0.224, 1.917),
            (0.606, 0.079, 4.102),
            (0.596, 0.047, 3.418),
            (0.656, 0.121, 2.749),
            (0.592, -0.070, 3.621),
            (0.662, 0.089, 2.409),
            (0.718, 0.110, 1.688),
            (0.669, 0.093, 2.731),
            (0.695, 0.032, 1.791),
            (0.668, 0.087, 2.345),
        ),
        "constellation-K5": (
            (0.671, 0.266, 2.123),
            (0.650, 0.126, 2.615),
            (0.669, 0.097, 2.562),
            (0.689, 0.034, 1.885),
            (0.543, -0.066, 7.895),
            (0.648, 0.120, 3.040),
            (0.697, 0.044, 1.613),
            (0.619, 0.021, 3.252),
            (0.641, 0.154, 2.315),
            (0.633, 0.072, 2.919),
        ),
        "constellation-K7": (
            (0.702, 0.218, 2.076),
            (0.603, -0.019, 2.999),
            (0.713, 0.146, 1.869),
            (0.701, 0.298, 1.746),
            (0.576, -0.125, 3.232),
            (0.652, 0.080, 3.075),
            (0.667, 0.075, 2.011),
            (0.575, 0.023, 7.276),
            (0.634, 0.025, 2.906),
            (0.623, 0.106, 2.926),
        ),
        "ce-finetuned": (
            (0.638, -0.006, 6.687),
            (0.708, 0.012, 5.270),
            (0.548, -0.003, 7.359),
            (0.648, 0.003, 7.145),
            (0.674, 0.011, 7.609),
            (0.651, 0.020, 7.238),
            (0.700, 0.027, 5.529),
            (0.680, 0.003, 6.847),
            (0.646, 0.002, 6.659),
            (0.565, 0.013, 7.550),
        ),
        "npairs-all": (
            (0.680, 0.153, 2.238),
            (0.612, -0.035, 2.277),
            (0.680, 0.154, 2.056),
            (0.644, 0.130, 3.049),
            (0.537, -0.094, 5.752),
            (0.638, 0.177, 2.490),
            (0.709, 0.153, 1.813),
            (0.669, 0.088, 2.273),
            (0.709, 0.199, 1.895),
            (0.660, 0.072, 2.902),
        ),
    },
    "ham10000": {
        "knn-imagenet": (
            (0.354, -0.037, 6.688),
            (0.327, -0.037, 6.688),
            (0.359, -0.037, 6.688),
            (0.294, -0.037, 6.688),
            (0.324, -0.037, 6.688),
            (0.295, -0.037, 6.688),
            (0.303, -0.037, 6.688),
            (0.333, -0.037, 6.688),
            (0.278, -0.037, 6.688),
            (0.309, -0.037, 6.688),
        ),
        "triplet-hard": (
            (0.449, 0.003, 3.608),
            (0.471, -0.056, 3.615),
            (0.483, 0.013, 3.441),
            (0.438, -0.014, 3.827),
            (0.444, 0.047, 4.408),
            (0.467, 0.047, 3.488),
            (0.420, -0.030, 4.141),
            (0.456, -0.041, 3.853),
            (0.443, 0.032, 3.901),
            (0.488, 0.022, 3.628),
        ),
        "npairs": (
            (0.425, -0.068, 5.386),
            (0.410, -0.056, 6.746),
            (0.361, -0.135, 11.452),
            (0.368, -0.133, 5.387),
            (0.417, 0.279, 4.847),
            (0.421, -0.283, 8.181),
            (0.381, -0.051, 8.889),
            (0.318, -0.145, 7.288),
            (0.395, -0.043, 4.562),
            (0.375, -0.206, 7.378),
        ),
        "constellation-K3": (
            (0.396, -0.204, 8.944),
            (0.446, 0.008, 4.474),
            (0.408, -0.040, 6.880),
            (0.418, -0.168, 14.444),
            (0.465, -0.141, 5.828),
            (0.499, 0.053, 4.636),
            (0.459, 0.026, 6.081),
            (0.416, -0.050, 5.792),
            (0.494, -0.025, 5.675),
            (0.455, -0.052, 5.119),
        ),
        "constellation-K5": (
            (0.445, -0.020, 3.623),
            (0.448, -0.026, 4.557),
            (0.472, -0.020, 4.832),
            (0.397, -0.082, 10.499),
            (0.446, -0.072, 5.665),
            (0.458, -0.004, 4.729),
            (0.427, 0.158, 6.900),
            (0.396, -0.114, 5.844),
            (0.434, -0.110, 4.894),
            (0.472, 0.100, 4.209),
        ),
        "constellation-K7": (
            (0.367, -0.254, 4.359),
            (0.445, 0.029, 4.536),
            (0.464, -0.154, 6.008),
            (0.402, -0.061, 7.007),
            (0.463, -0.093, 5.424),
            (0.489, -0.009, 4.131),
            (0.402, 0.037, 6.784),
            (0.469, -0.075, 6.135),
            (0.416, -0.122, 5.394),
            (0.424, -0.099, 4.631),
        ),
        "ce-finetuned": (
            (0.366, 0.008, 6.846),
            (0.401, -0.037, 6.322),
            (0.309, -0.040, 6.800),
            (0.320, -0.015, 6.933),
            (0.399, -0.031, 6.637),
            (0.329, -0.043, 6.342),
            (0.302, -0.043, 6.998),
            (0.306, -0.066, 7.086),
            (0.391, 0.007, 7.547),
            (0.423, -0.008, 6.411),
        ),
        "npairs-all": (
            (0.451, 0.027, 3.783),
            (0.457, 0.024, 4.689),
            (0.393, -0.007, 5.604),
            (0.467, -0.134, 7.094),
            (0.444, 0.108, 6.190),
            (0.501, -0.200, 4.094),
            (0.502, 0.003, 3.563),
            (0.445, -0.047, 4.397),
            (0.481, 0.040, 7.984),
            (0.440, 0.037, 5.059),
        ),
    },
}
# quality.md, seed 0 (Acc, MCR, AUC): (data, row) → values (BreastMNIST's frozen rows are means of
# two seeds, so they are not paired here)
QUALITY = {
    ("BreastMNIST", "weighted-ce (recipe)"): (0.769, 0.744, 0.854),
    ("BreastMNIST", "weighted-ce (recipe, TTA flips)"): (0.801, 0.796, 0.897),
    ("HAM10000", "weighted-ce (recipe)"): (0.604, 0.577, 0.842),
    ("HAM10000", "weighted-ce-blr1 (recipe)"): (0.689, 0.614, 0.877),
    ("HAM10000", "frozen + kNN"): (0.432, 0.425, 0.794),
    ("HAM10000", "deepknn (recipe)"): (0.689, 0.567, 0.810),
    ("HAM10000", "deepknn-blr1 (recipe)"): (0.694, 0.579, 0.802),
    ("PneumoniaMNIST", "weighted-ce (recipe)"): (0.867, 0.825, 0.950),
    ("PneumoniaMNIST", "weighted-ce-blr1 (recipe)"): (0.888, 0.853, 0.953),
    ("PneumoniaMNIST", "deepknn (recipe)"): (0.870, 0.829, 0.950),
    ("PneumoniaMNIST", "deepknn-blr1 (recipe)"): (0.897, 0.874, 0.962),
    ("PneumoniaMNIST", "frozen + kNN"): (0.851, 0.823, 0.925),
}
QUALITY_COLUMNS = ("Acc", "MCR", "AUC")
# official_splits.md: per seed (Acc, MCR, AUC) of the rows quality_table.py compares, per data set
OFFICIAL: dict[str, dict[str, tuple[tuple[float, float, float], ...]]] = {
    "breastmnist": {
        "ce+bst-dm (paper settings)": (
            (0.827, 0.761, 0.853),
            (0.827, 0.739, 0.848),
            (0.801, 0.706, 0.777),
        ),
        "frozen + kNN": (
            (0.808, 0.718, 0.807),
            (0.808, 0.718, 0.807),
            (0.808, 0.718, 0.807),
        ),
        "frozen + logistic regression": (
            (0.788, 0.735, 0.808),
            (0.788, 0.735, 0.808),
            (0.788, 0.735, 0.808),
        ),
        "constellation-K3 (paper settings)": (
            (0.814, 0.745, 0.810),
            (0.814, 0.745, 0.831),
            (0.885, 0.823, 0.911),
        ),
        "deepknn (paper settings)": (
            (0.833, 0.803, 0.834),
            (0.833, 0.766, 0.788),
            (0.865, 0.825, 0.844),
        ),
        "supcon (paper settings)": (
            (0.782, 0.731, 0.802),
            (0.769, 0.714, 0.795),
            (0.769, 0.752, 0.816),
        ),
    },
    "dermamnist": {
        "ce+bst-dm (paper settings)": (
            (0.728, 0.358, 0.891),
            (0.723, 0.331, 0.883),
            (0.729, 0.350, 0.891),
        ),
        "frozen + kNN": (
            (0.720, 0.333, 0.753),
            (0.720, 0.333, 0.753),
            (0.720, 0.333, 0.753),
        ),
        "frozen + logistic regression": (
            (0.644, 0.425, 0.825),
            (0.644, 0.425, 0.825),
            (0.644, 0.425, 0.825),
        ),
        "constellation-K3 (paper settings)": (
            (0.676, 0.320, 0.674),
            (0.675, 0.326, 0.713),
            (0.467, 0.375, 0.706),
        ),
        "deepknn (paper settings)": (
            (0.722, 0.537, 0.822),
            (0.714, 0.518, 0.817),
            (0.724, 0.540, 0.815),
        ),
        "supcon (paper settings)": (
            (0.648, 0.540, 0.852),
            (0.632, 0.558, 0.874),
            (0.625, 0.542, 0.887),
        ),
    },
}  # fmt: skip


def _paired(table: dict, columns: tuple[str, ...], a: str, b: str, column: str) -> str:
    index = columns.index(column)
    return compare(
        {seed: row[index] for seed, row in enumerate(table[a])},
        {seed: row[index] for seed, row in enumerate(table[b])},
        a=a,
        b=b,
        metric=column,
    ).line()


def _summary(table: dict, columns: tuple[str, ...], n: int, a: str, b: str, column: str) -> str:
    index = columns.index(column)
    return summary_verdict(
        table[a][index],
        table[b][index],
        n,
        a_label=a,
        b_label=b,
        metric=column,
        higher_is_better=column != "Davies-Bouldin",
    )


def deepknn_lines() -> list[str]:
    pairs = [
        ("deepknn", "knn-imagenet", ("MCR", "RS")),
        ("deepknn", "triplet", ("Acc", "MCR", "RS")),
        ("weighted-ce", "deepknn", ("Acc", "MCR", "RS")),
        ("deepknn-star", "deepknn", ("Acc", "MCR", "RS")),
        ("deepknn-star", "weighted-ce", ("Acc", "MCR", "RS")),
        ("deepknn", "deepknn-bank", ("Acc", "MCR", "RS")),
    ]
    lines = [_paired(DEEPKNN, DEEPKNN_COLUMNS, a, b, c) for a, b, cs in pairs for c in cs]
    summary = {key: (value,) for key, value in DEEPKNN_SUMMARY.items()}
    for a, b, column in (
        ("weighted-ce", "deepknn", "kNN BAC"),  # Table 4: kNN on CE-trained features
        ("deepknn-star", "weighted-ce", "kNN BAC"),
        ("deepknn", "knn-imagenet", "AUC"),
        ("deepknn", "triplet", "AUC"),
        ("deepknn (K_p = 1)", "knn-imagenet (K_p = 1)", "MCR"),
        ("deepknn (K_p = 1)", "triplet (K_p = 1)", "MCR"),
    ):
        lines.append(
            summary_verdict(
                summary[(a, column)][0],
                summary[(b, column)][0],
                3,
                a_label=a,
                b_label=b,
                metric=column,
            )
        )
    for a, b in (("K5_M5", "K5_M3"), ("K5_M7", "K5_M5"), ("K5_M7", "K5_M3")):
        lines.append(compare(dict(enumerate(M_LINE[a])), dict(enumerate(M_LINE[b])), a=a, b=b,
                             metric="MCR").line())  # fmt: skip
    for m in (3, 5, 7):
        for k in (1, 5):
            lines.append(
                compare(
                    {0: KM_GRID_KP5[(k, m)]},
                    {0: KM_GRID_KP5[(9, m)]},
                    a=f"K{k}_M{m}",
                    b=f"K9_M{m}",
                    metric="MCR at K_p = 5",
                ).line()
            )
    return lines


def deepknn_5seed_lines() -> list[str]:
    """deepknn_tables.py's verdicts on the five-seed reruns' per-seed values."""
    records = [
        {
            "label": label,
            "seed": seed,
            "metrics": {
                k: v for k, v in zip(DEEPKNN_5SEEDS_KEYS, row, strict=True) if v is not None
            },
        }
        for label, rows in DEEPKNN_5SEEDS.items()
        for seed, row in enumerate(rows)
    ]
    return _benchmark_script("deepknn_tables").verdicts(records)


def feature_lines() -> list[str]:
    pairs = [
        ("MLP+triplets", "kNN-basic"),
        ("MLP+CE", "kNN-basic"),
        ("MLP+deep-kNN", "kNN-basic"),
        ("NCA", "kNN-basic"),
        ("LMNN", "kNN-basic"),
        ("LMNN", "NCA"),
        ("MLP+deep-kNN", "LMNN"),
        ("MLP+deep-kNN", "NCA"),
        ("MLP+deep-kNN", "MLP+triplets"),
        ("MLP+deep-kNN", "MLP+CE"),
    ]
    return [_paired(FEATURES, DEEPKNN_COLUMNS, a, b, c) for a, b in pairs for c in DEEPKNN_COLUMNS]


def bstriplet_lines() -> list[str]:
    records = [
        {"label": label, "seed": seed, "metrics": dict(zip(BSTRIPLET_COLUMNS, row, strict=True))}
        for label, rows in BSTRIPLET.items()
        for seed, row in enumerate(rows)
    ]
    table = _benchmark_script("bstriplet_table")
    return verdict_lines(records, table.COMPARISONS, [(c, c) for c in BSTRIPLET_COLUMNS])


def supcon_lines() -> list[str]:
    pairs = [
        ("supcon", "ce"),
        ("supcon", "focal"),
        ("supcon", "ldam"),
        ("supcon+resample", "supcon"),
        ("focal", "ce"),
        ("ldam", "ce"),
        ("ce+resample", "ce"),
        ("supcon", "linear-imagenet"),
        ("linear-imagenet", "ce"),
    ]
    lines = [_summary(SUPCON, SUPCON_COLUMNS, 3, a, b, c) for a, b in pairs for c in SUPCON_COLUMNS]
    for column, index in (("macro F1", 0), ("F1 minority", 1)):
        for resampled, suffix in ((0, ""), (1, " + resample")):
            for tau in (0.01, 0.05, 0.5, 1.0):
                lines.append(
                    compare(
                        {0: TEMPERATURE[tau][index][resampled]},
                        {0: TEMPERATURE[0.1][index][resampled]},
                        a=f"tau {tau}{suffix}",
                        b=f"tau 0.1{suffix}",
                        metric=column,
                    ).line()
                )
    return lines


def supcon_rerun_lines() -> list[str]:
    """supcon_table.py's verdicts on the per-seed values of the one-machine rerun."""
    records = [
        {"label": label, "seed": seed, "metrics": dict(zip(SUPCON_RERUN_KEYS, row, strict=True))}
        for label, rows in SUPCON_RERUN.items()
        for seed, row in enumerate(rows)
    ]
    return _benchmark_script("supcon_table").verdicts(records)


def constellation_lines(data: str) -> list[str]:
    table = CONSTELLATION[data]
    script = _benchmark_script("constellation_table")
    pairs = [(a, b) for a, b in script.comparisons(list(table)) if a in table and b in table]
    lines = [
        _summary(table, CONSTELLATION_COLUMNS, 10, a, b, c)
        for a, b in pairs
        for c in CONSTELLATION_COLUMNS
    ]
    rerun = CONSTELLATION_RERUN.get(data, {})
    keys = ("knn_bac", "silhouette", "davies_bouldin")  # constellation_table.VERDICT_METRICS
    records = [
        {"label": label, "seed": seed, "metrics": dict(zip(keys, row, strict=True))}
        for label, rows in rerun.items()
        for seed, row in enumerate(rows)
    ]
    lines += script.verdicts(records)
    return lines + script.not_yet_run([*table, *rerun], data, f"runs/{data}-constellation")


def _benchmark_script(name: str) -> ModuleType:
    """``benchmarks/<name>.py`` beside this script, imported by path (the scripts are not a
    package, and this one is also loaded by the tests)."""
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{name}.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def quality_lines() -> list[str]:
    pairs = [
        ("BreastMNIST", "weighted-ce (recipe, TTA flips)", "weighted-ce (recipe)"),
        ("HAM10000", "weighted-ce (recipe)", "frozen + kNN"),
        ("HAM10000", "weighted-ce-blr1 (recipe)", "weighted-ce (recipe)"),
        ("HAM10000", "deepknn-blr1 (recipe)", "deepknn (recipe)"),
        ("HAM10000", "deepknn-blr1 (recipe)", "frozen + kNN"),
        ("PneumoniaMNIST", "weighted-ce-blr1 (recipe)", "weighted-ce (recipe)"),
        ("PneumoniaMNIST", "deepknn-blr1 (recipe)", "deepknn (recipe)"),
        ("PneumoniaMNIST", "deepknn-blr1 (recipe)", "frozen + kNN"),
        ("PneumoniaMNIST", "weighted-ce-blr1 (recipe)", "frozen + kNN"),
    ]
    return [
        compare(
            {0: QUALITY[(data, a)][index]},
            {0: QUALITY[(data, b)][index]},
            a=f"{a} [{data}]",
            b=b,
            metric=column,
        ).line()
        for data, a, b in pairs
        for index, column in enumerate(QUALITY_COLUMNS)
    ]


def official_lines(data: str) -> list[str]:
    keys = ("accuracy", "mcr", "auc")  # quality_table.py's VERDICT_METRICS
    records = [
        {"label": label, "seed": seed, "metrics": dict(zip(keys, row, strict=True))}
        for label, rows in OFFICIAL[data].items()
        for seed, row in enumerate(rows)
    ]
    return _benchmark_script("quality_table").verdicts(records)


PAGES: dict[str, Callable[[], list[str]]] = {
    "ham10000_deepknn": lambda: deepknn_lines() + deepknn_5seed_lines(),
    "feature_vectors": feature_lines,
    "pneumoniamnist_bstriplet": bstriplet_lines,
    "ham10000_supcon": lambda: supcon_lines() + supcon_rerun_lines(),
    "breastmnist_constellation": lambda: constellation_lines("breastmnist"),
    "ham10000_constellation": lambda: constellation_lines("ham10000"),
    "quality": quality_lines,
    "official_splits": lambda: [line for data in OFFICIAL for line in official_lines(data)],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pages", nargs="*", choices=[[], *PAGES], help="pages (default: all)")
    args = parser.parse_args()
    for page in args.pages or PAGES:
        print(f"## {page}\n")
        print("\n".join(f"- {line}" for line in PAGES[page]()) + "\n")


if __name__ == "__main__":
    main()

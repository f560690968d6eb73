"""uniGradICON family: learned deformable registration (uniGradICON, multiGradICON, LungGradICON).

All three share one network (three stacked ``tallUNet2`` steps, two of them at coarser scales)
working on a 175^3 grid. We build it from ``icon_registration``'s own blocks (the ``unigradicon``
module itself imports itk, 1.5 GB, at the top), load the weights from a local file with
``weights_only=True``, and never download unless the user says ``download=True``.

Point mapping: the network is called as ``regis_net(target, source)``, whose map carries
coordinates of the source grid to the matching coordinates of the target (I_T(phi(x)) ~ I_S(x)).
The field is read by trilinear interpolation at the point, and grid indices are converted to the
network's [0, 1] coordinates with the same cell-centred convention as the resize, so anisotropic
spacing and different fields of view keep their physical meaning. A lesion's centre is also
placed by where the field carries its surroundings (``changing``), kept only where the field at
the centre parts from it: a lesion that has gone is not carried onto what looked like it.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import SimpleITK as sitk

from .. import model_dir
from ..errors import BackendUnavailableError, InputError
from ..model_dir import placement_hint
from ..registry import register_registration
from ..segmentation.torch_utils import (
    load_weights,
    resolve_device,
    weights_backend_problem,
)
from ..voxels import voxels
from .base import PointMapper, Registration
from .changing import PARTED, Changing, around_from_shell, choose
from .icon_io import instance_optimise
from .lung_mask import checked_lung_mask

log = logging.getLogger(__name__)

NETWORK_GRID = 175
_RELEASES = "https://github.com/uncbiag"
WEIGHT_URLS = {
    "unigradicon": f"{_RELEASES}/uniGradICON/releases/download/unigradicon_weights/Step_2_final.trch",
    "multigradicon": (
        f"{_RELEASES}/uniGradICON/releases/download/multigradicon_weights/Step_2_final.trch"
    ),
    "lunggradicon": (
        f"{_RELEASES}/ICON/releases/download/pretrained_models_v1.0.0/lung_model_weights_step_2.trch"
    ),
}


@dataclass(frozen=True)
class GridGeometry:
    """Index <-> LPS geometry of one image, without keeping its voxels."""

    size_zyx: np.ndarray
    origin: np.ndarray
    spacing: np.ndarray
    direction: np.ndarray

    @classmethod
    def of(cls, image: sitk.Image) -> GridGeometry:
        return cls(
            np.array(image.GetSize()[::-1], dtype=float),
            np.array(image.GetOrigin(), dtype=float),
            np.array(image.GetSpacing(), dtype=float),
            np.array(image.GetDirection(), dtype=float).reshape(3, 3),
        )

    def to_index_zyx(self, points_lps: np.ndarray) -> np.ndarray:
        ijk = np.linalg.solve(self.direction, (points_lps - self.origin).T).T / self.spacing
        return ijk[:, ::-1]

    def to_physical(self, index_zyx: np.ndarray) -> np.ndarray:
        ijk = index_zyx[:, ::-1] * self.spacing
        return self.origin + (self.direction @ ijk.T).T


def index_to_unit(index_zyx: np.ndarray, size_zyx: np.ndarray, grid_zyx: np.ndarray) -> np.ndarray:
    """Image index -> network [0, 1] coordinate (resize with align_corners=False, node j at j/(G-1))."""
    net_index = (index_zyx + 0.5) * grid_zyx / size_zyx - 0.5
    return net_index / (grid_zyx - 1)


def unit_to_index(unit_zyx: np.ndarray, size_zyx: np.ndarray, grid_zyx: np.ndarray) -> np.ndarray:
    """Inverse of ``index_to_unit``."""
    net_index = unit_zyx * (grid_zyx - 1)
    return (net_index + 0.5) * size_zyx / grid_zyx - 0.5


class DisplacementFieldMapper(PointMapper):
    """Maps source points through a dense map sampled on the network grid of the source.

    ``field`` is (3, Gz, Gy, Gx): at each source grid node, the target position in [0, 1]
    network coordinates, channels in array-axis order (z, y, x).
    """

    def __init__(self, field: np.ndarray, source: GridGeometry, target: GridGeometry) -> None:
        self.field = np.asarray(field, dtype=np.float32)
        self.grid = np.array(self.field.shape[1:], dtype=float)
        self.source = source
        self.target = target

    def map_points(self, points_lps: np.ndarray) -> np.ndarray:
        from scipy.ndimage import map_coordinates

        pts = np.asarray(points_lps, dtype=float).reshape(-1, 3)
        unit_src = index_to_unit(self.source.to_index_zyx(pts), self.source.size_zyx, self.grid)
        node = unit_src * (self.grid - 1)  # continuous node index on the network grid
        unit_tgt = np.stack(
            [map_coordinates(self.field[c], node.T, order=1, mode="nearest") for c in range(3)],
            axis=1,
        )
        return self.target.to_physical(unit_to_index(unit_tgt, self.target.size_zyx, self.grid))

    def map_lesion(self, centre_lps: np.ndarray, lesion: sitk.Image | None = None) -> tuple[np.ndarray, float]:
        """The field at the centre, or where it carries the lesion's surroundings when the two
        part (``changing``). The confidence is their agreement: 1 - apart / (2 PARTED) radii,
        so 0.5 (the quality flag's threshold) where they can no longer both be on the centre;
        NaN without a lesion (nothing to compare)."""
        centre = np.asarray(centre_lps, dtype=float).reshape(3)
        own = self.map_points(centre)[0]
        changing = Changing.of(lesion, centre) if lesion is not None else None
        if changing is None:
            return own, math.nan
        shell = changing.shell()
        around = around_from_shell(centre, shell, self.map_points(shell))
        agreement = float(np.clip(1.0 - np.linalg.norm(own - around) / changing.radius_mm / (2 * PARTED), 0.0, 1.0))
        (placed, _), _ = choose((own, agreement), (around, agreement), changing.radius_mm)
        return placed, agreement


def build_network(grid_zyx: tuple[int, int, int]) -> Any:
    """The uniGradICON/LungGradICON architecture, random weights, for a given network grid.

    Same layout as ``unigradicon.make_network(..., include_last_step=True)`` (checked: identical
    state-dict keys and shapes). The grid must be >= 125 per axis: the innermost U-Net pools 5x.
    """
    from icon_registration import losses, network_wrappers, networks

    def step() -> Any:
        return network_wrappers.FunctionFromVectorField(networks.tallUNet2(dimension=3))

    inner = step()
    for _ in range(2):
        inner = network_wrappers.TwoStepRegistration(
            network_wrappers.DownsampleRegistration(inner, dimension=3), step()
        )
    inner = network_wrappers.TwoStepRegistration(inner, step())
    net = losses.GradientICONSparse(inner, similarity=losses.LNCC(sigma=5), lmbda=1.5)
    net.assign_identity_map([1, 1, *grid_zyx])
    return net


class _IconRegistration(Registration):
    """Shared code of the three models; subclasses set the model name and preprocessing."""

    model: ClassVar[str] = "unigradicon"
    concurrent_pairs: ClassVar[bool] = False  # a forward pass takes all cores and ~3.6 GB
    ct_window: ClassVar[tuple[float, float]] = (-1000.0, 1000.0)

    def __init__(
        self,
        device: str = "cpu",
        weights: str | None = None,
        io_steps: int = 0,
        io_learning_rate: float = 2e-5,
        grid: int = NETWORK_GRID,
        download: bool = False,
        **options: Any,
    ) -> None:
        weights = model_dir.found(self.name, weights)
        super().__init__(
            device=device,
            weights=weights,
            io_steps=io_steps,
            io_learning_rate=io_learning_rate,
            grid=grid,
            download=download,
            **options,
        )
        if int(io_steps) < 0:
            raise InputError(f"{self.name}: io_steps must be >= 0, got {io_steps}")
        self.weights = weights
        self.io_steps = int(io_steps)
        self.io_learning_rate = float(io_learning_rate)
        self.grid = (int(grid),) * 3
        self.download = bool(download)
        # The loaded network (a GradientICON wrapper whose ``regis_net`` registers a pair).
        # Tests may set any icon_registration module with ``regis_net`` and ``identity_map``.
        self.network: Any = None

    @classmethod
    def _how_to_get(cls) -> str:
        return (
            f"download {WEIGHT_URLS[cls.model]} and {placement_hint(cls.model)} "
            "(or download=true to let LinGuinE fetch it there)"
        )

    @classmethod
    def unavailable_reason(cls, **options: Any) -> str | None:
        options = model_dir.fill_options(cls.name, options)
        return weights_backend_problem(("torch", "icon_registration"), options, cls._how_to_get(),
                                       allow_download=True)

    # -- loading -----------------------------------------------------------------------
    def load(self) -> Any:
        """Build the network and load the weights (once); errors are one line."""
        if self.network is not None:
            return self.network
        reason = self.unavailable_reason(device=self.device, **self.options)
        if reason:
            raise BackendUnavailableError(f"registration backend '{self.name}' cannot run: {reason}")
        path = Path(self.weights).expanduser()
        if not path.is_file():
            self._download(path)
        state = load_weights(path, f"registration backend '{self.name}'", self._how_to_get())
        net = build_network(self.grid)
        self._load_state(net.regis_net, state)
        from icon_registration import config

        # The package's loss (used by instance optimisation) draws noise on config.device,
        # which it sets to CUDA whenever a GPU exists: keep it on our device.
        config.device = resolve_device(self.device)
        self.network = net.to(config.device).eval()
        log.info("%s: loaded weights %s on %s", self.name, path, self.device)
        return self.network

    def _load_state(self, regis_net: Any, state: Any) -> None:
        if not isinstance(state, dict):
            raise BackendUnavailableError(
                f"registration backend '{self.name}': weights file holds a "
                f"{type(state).__name__}, not a state dict; {self._how_to_get()}"
            )
        result = regis_net.load_state_dict(state, strict=False)
        if result.missing_keys or len(result.unexpected_keys) == len(state):
            raise BackendUnavailableError(
                f"registration backend '{self.name}': weights do not fit the network "
                f"({len(result.missing_keys)} missing, {len(result.unexpected_keys)} unexpected "
                f"tensors); is this the {self.model} file? {self._how_to_get()}"
            )
        if result.unexpected_keys:
            log.warning("%s: ignored %d extra tensors", self.name, len(result.unexpected_keys))

    def _download(self, path: Path) -> None:
        """Only when the user asked (download=True)."""
        import urllib.request

        url = WEIGHT_URLS[self.model]
        log.warning("%s: downloading weights %s -> %s (asked with download=true)", self.name, url, path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".part")
        try:
            urllib.request.urlretrieve(url, tmp)
        except OSError as exc:
            raise BackendUnavailableError(
                f"registration backend '{self.name}': download of {url} failed ({exc}); "
                f"download it by hand and pass weights=PATH"
            ) from None
        tmp.replace(path)

    # -- preprocessing -----------------------------------------------------------------
    def intensities(self, hu: np.ndarray, spacing_zyx: tuple[float, float, float] = (1.0, 1.0, 1.0)
                    ) -> np.ndarray:
        """HU array -> the [0, 1] input the model was trained on."""
        lo, hi = self.ct_window
        return ((np.clip(hu, lo, hi) - lo) / (hi - lo)).astype(np.float32)

    def to_network(self, image: sitk.Image) -> Any:
        """(1, 1, G, G, G) float tensor: intensities resized trilinearly to the network grid."""
        import torch
        import torch.nn.functional as F

        arr = self.intensities(voxels(image).astype(np.float32),
                               tuple(image.GetSpacing()[::-1]))
        t = torch.from_numpy(arr)[None, None]
        t = F.interpolate(t, size=self.grid, mode="trilinear", align_corners=False)
        return t.to(resolve_device(self.device))

    # -- registration ------------------------------------------------------------------
    def register(self, source: sitk.Image, target: sitk.Image) -> PointMapper:
        import torch

        for role, img in (("source", source), ("target", target)):
            if img.GetDimension() != 3:
                raise InputError(f"{self.name}: {role} image must be 3D, got {img.GetDimension()}D")
        net = self.load()
        src, tgt = self.to_network(source), self.to_network(target)
        saved = None
        if self.io_steps > 0:
            saved = {k: v.detach().clone() for k, v in net.state_dict().items()}
            self._instance_optimise(net, src, tgt)
        try:
            with torch.no_grad():
                phi = net.regis_net(tgt, src)  # carries source coordinates to target ones
                field = phi(net.identity_map)[0].float().cpu().numpy()
        finally:
            if saved is not None:
                net.load_state_dict(saved)
                net.eval()
        return DisplacementFieldMapper(field, GridGeometry.of(source), GridGeometry.of(target))

    def _instance_optimise(self, net: Any, src: Any, tgt: Any) -> None:
        """A few Adam steps on the pair's GradICON loss, eval mode (then restored by register)."""
        log.info("%s: %d instance-optimisation steps", self.name, self.io_steps)
        instance_optimise(net, tgt, src, self.io_steps, self.io_learning_rate)


@register_registration("unigradicon")
class UniGradICON(_IconRegistration):
    """uniGradICON 1.0: CT window [-1000, 1000] HU."""

    model = "unigradicon"


@register_registration("multigradicon")
class MultiGradICON(_IconRegistration):
    """multiGradICON 1.0 (multi-modal training); same CT preprocessing as uniGradICON."""

    model = "multigradicon"


@register_registration("lunggradicon")
class LungGradICON(_IconRegistration):
    """ICON's lung CT model: window [-1000, 0] HU, multiplied by a lung mask (option lung_mask).

    The mask (``lung_mask.py``) is checked: a scan where no plausible lung is found is an error
    that names the way out (``lung_mask=false``, another backend), never two blank images.
    """

    model = "lunggradicon"
    ct_window = (-1000.0, 0.0)
    extra_options = ("lung_mask",)  # read from self.options, not a constructor argument

    def intensities(self, hu: np.ndarray, spacing_zyx: tuple[float, float, float] = (1.0, 1.0, 1.0)
                    ) -> np.ndarray:
        scaled = super().intensities(hu, spacing_zyx)
        if self.options.get("lung_mask", True) in (False, "false", "none", 0):
            return scaled
        mask = checked_lung_mask(hu, spacing_zyx, f"registration backend '{self.name}'")
        return scaled * mask.astype(np.float32)

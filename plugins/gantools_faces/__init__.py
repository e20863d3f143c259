"""Built-in plugin ``faces``: a face generator with age/gender control, and face projection.

* ``generate(n, seed, truncation, labels)`` / ``interpolate(seed_a, seed_b, frames)``: new faces
  from seeds (see :mod:`.generate` for the reproducibility contract); ``gantools generate faces``.
  ``backend=`` / ``--backend`` picks what runs the synthesis network (:mod:`.backend`: torch, or
  the exported graph in ONNX Runtime or OpenVINO; ``auto`` by the measured table, family ``facegan``).
* ``process(image)``: projection (GAN inversion, :mod:`.project`): the input (an aligned face
  crop) is centre-cropped to a square, resized to the generator's resolution and reconstructed
  by optimising a latent for ``--steps`` steps; the reconstruction (at the generator's
  resolution) is returned, re-rendered with ``--age`` / ``--gender`` when given. The PSNR of the
  reconstruction against the resized input is in ``plugin.last_psnr`` (also for inputs with no
  face-like content: the closest reconstruction is still returned). ``--save-latent DIR`` writes
  one ``latent-<digest>.npz`` per input (``digest`` = sha1 of the input pixels; it holds ``w``,
  ``w_out`` (after relabelling), ``psnr``, the estimated and output labels and ``resolution``).

Weights: the shipped model (``weights/manifest.toml`` entry task ``faces``, name ``default``) or
``--weights RUN/export.safetensors`` from ``gantools train faces``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any


from gantools.plugin import Descriptor, Option, OptionError, Plugin
from gantools.registry import register_plugin

if TYPE_CHECKING:  # numpy is imported where it is used, so `gantools list` does not load it
    import numpy as np

NO_SHIPPED = (
    "no shipped faces model yet; train one with `gantools train faces --data FACES --out RUN ...` "
    "and pass --weights RUN/export.safetensors"
)


def weights_summary() -> str:
    """``"default (64 px, 3169 steps)"`` from the manifest, or a hint; no torch, never raises."""
    try:
        from gantools.weights import shipped

        models = shipped("faces")
    except Exception as exc:  # a broken manifest must not break `gantools list`
        return f"manifest unreadable ({type(exc).__name__})"
    if not models:
        return "none shipped yet (gantools train faces)"
    return ", ".join(f"{m.name} ({m.extra.get('resolution', '?')} px, {m.extra.get('steps', '?')} steps)" for m in models)


@register_plugin
class Faces(Plugin):
    descriptor = Descriptor(
        name="faces",
        task="faces",
        description="Face generator with age/gender control; process() projects a face into it (GAN inversion) "
                    "and returns the projection at the generator's resolution (64x64 for the shipped model), "
                    "not at the input's size",
        scale=1,
        channels=(1, 3, 4),
        tiling=False,
        kind="generator",
        options=(
            Option("steps", int, 200, "projection: optimisation steps; the result has the generator's "
                   "resolution (e.g. 64x64), not the input's size", min=0, max=100_000),
            Option("age", str, None, "age to render: years (60 means 60-69) or a group (0-2 ... 70+)"),
            Option("gender", str, None, "gender to render: female or male"),
            Option("truncation", float, 1.0, "generation: truncation psi in (0, 1] (lower = more typical faces)",
                   min=0.0, max=1.0),
            Option("save_latent", str, None, "projection: folder for one .npz latent per input"),
        ),
        weights=weights_summary(),
        trainable=True,
    )

    last_psnr: float | None = None
    last_labels: tuple[int, int] | None = None

    # -- options and weights ---------------------------------------------------------------
    def check_options(self) -> None:
        from gantools_faces.labels import LabelError, parse_age, parse_gender

        if not 0.0 < self.options["truncation"] <= 1.0:
            raise OptionError(f"option --truncation: {self.options['truncation']} is not in (0, 1]")
        parsed = {}
        for name, parse in (("age", parse_age), ("gender", parse_gender)):
            try:
                parsed[name] = None if self.options[name] is None else parse(self.options[name])
            except LabelError as exc:
                raise OptionError(f"option --{name}: {exc}") from None
        self.age, self.gender = parsed["age"], parsed["gender"]
        self.weights_path = self._resolve_weights()

    def _resolve_weights(self) -> Path:
        if self.runtime.weights:
            from gantools.checkpoint import check_task, check_weights_file, peek_metadata

            path = Path(self.runtime.weights)
            check_weights_file(path)
            meta = peek_metadata(path)
            check_task(path, meta, "faces", "a faces generator")
            if meta is not None and meta.get("arch") not in (None, "facegan"):
                raise OptionError(f"{path}: a {meta.get('arch')!r} model, not a faces generator")
            return path
        from gantools.weights import shipped

        found = shipped("faces", name="default")
        if not found:
            raise OptionError(NO_SHIPPED)
        return found[0].verify()

    # -- setup -------------------------------------------------------------------------------
    @property
    def device(self) -> Any:
        from gantools.device import torch_device

        return torch_device(self.runtime.device)

    def setup(self) -> None:
        from gantools.checkpoint import weights_errors
        from gantools.device import resolve_precision, set_threads
        from gantools_faces.generate import FaceModel

        set_threads(self.runtime.threads)
        precision = resolve_precision(self.runtime.precision, str(self.device), allow_bf16=self.descriptor.bf16)
        with weights_errors(self.weights_path):
            self.face = FaceModel.load(self.weights_path, precision=precision, device=self.device)
        self._use_backend(self.runtime.backend)

    def _use_backend(self, name: str) -> None:
        """Generation's synthesis through backend ``name`` (:mod:`gantools_faces.backend`);
        ``OptionError`` where it cannot run here (the runner's message)."""
        from gantools.backends import BackendUnavailable

        try:
            self.face.use_backend(name)
        except BackendUnavailable as exc:
            raise OptionError(str(exc)) from None

    @property
    def resolution(self) -> int:
        self.ensure_setup()
        return self.face.resolution

    # -- generation ----------------------------------------------------------------------------
    def _labels(self, labels: Any) -> tuple[int | None, int | None]:
        return (self.age, self.gender) if labels is None else labels

    def generate(self, n: int, seed: int, truncation: float | None = None, labels: Any = None) -> list[np.ndarray]:
        """``n`` faces (HxWx3 BGR uint8) for seeds ``seed..seed+n-1``; defaults from the options."""
        self.ensure_setup()
        psi = self.options["truncation"] if truncation is None else truncation
        return self.face.generate(n, seed, psi, self._labels(labels))

    def interpolate(self, seed_a: int, seed_b: int, frames: int, truncation: float | None = None,
                    labels: Any = None) -> list[np.ndarray]:
        """A walk of ``frames`` faces from ``seed_a`` to ``seed_b`` (slerp of z)."""
        self.ensure_setup()
        psi = self.options["truncation"] if truncation is None else truncation
        return self.face.interpolate(seed_a, seed_b, frames, psi, self._labels(labels))

    # -- latent directions (gantools.latent.LatentGenerator) -------------------------------------
    def sample_w(self, n: int, seed: int) -> np.ndarray:
        """Untruncated ``w`` (n, w_dim) float32 of seeds ``seed .. seed+n-1`` (labels as ``generate``)."""
        self.ensure_setup()
        return self.face.sample_w(n, seed, self._labels(None)).cpu().numpy()

    def seed_w(self, seed: int) -> np.ndarray:
        """The ``w`` (w_dim,) float32 that ``generate(1, seed)`` renders."""
        self.ensure_setup()
        return self.face.seed_w(seed, self.options["truncation"], self._labels(None))[0].cpu().numpy()

    def render_w(self, ws: np.ndarray) -> list[np.ndarray]:
        """Faces of the rows of ``ws`` (n, w_dim), batched as ``generate`` batches its seeds."""
        import numpy as np
        import torch

        self.ensure_setup()
        device = self.face.device
        return self.face.render_batched([torch.from_numpy(np.array(w[None], np.float32)).to(device) for w in ws])

    def modulation_weights(self) -> list[np.ndarray]:
        """Affine (style) weights (channels, w_dim) of the synthesis network's modulated convs."""
        self.ensure_setup()
        return [w.cpu().numpy() for w in self.face.modulation_weights()]

    # -- projection ------------------------------------------------------------------------------
    def process(self, image: np.ndarray) -> np.ndarray:
        import cv2

        from gantools.tensor import convert
        from gantools_faces.project import prepare_target, project, relabel

        self.check_image(image)
        self.ensure_setup()
        color, alpha, layout = convert.split(image)
        res = self.face.resolution
        target = prepare_target(color, res)
        proj = project(self.face, target, self.options["steps"], progress=self.report_progress)
        self.last_psnr, self.last_labels = proj.psnr, (proj.age, proj.gender)
        out_img, w_out = proj.image, proj.w
        if self.age is not None or self.gender is not None:
            w_out = relabel(self.face, proj, self.age, self.gender)
            out_img = self.face.render(w_out)
        if layout.gray:
            from kornia.color import rgb_to_grayscale

            out_img = rgb_to_grayscale(out_img)
        out = convert.from_tensor(out_img, layout.dtype, rgb_to_bgr=True)
        if alpha is not None:
            h, w = alpha.shape[:2]
            s = min(h, w)
            a = alpha[(h - s) // 2 : (h - s) // 2 + s, (w - s) // 2 : (w - s) // 2 + s]
            alpha = cv2.resize(a, (res, res), interpolation=cv2.INTER_AREA if s > res else cv2.INTER_CUBIC)
        if self.options["save_latent"]:
            self._save_latent(image, proj, w_out)
        return convert.merge(out, alpha, layout)

    def _save_latent(self, image: np.ndarray, proj: Any, w_out: Any) -> Path:
        import numpy as np

        folder = Path(self.options["save_latent"])
        digest = hashlib.sha1(np.ascontiguousarray(image).tobytes() + str(image.shape).encode()).hexdigest()[:12]
        path = folder / f"latent-{digest}.npz"
        a = proj.age if self.age is None else self.age
        g = proj.gender if self.gender is None else self.gender
        try:
            folder.mkdir(parents=True, exist_ok=True)
            np.savez(path, w=proj.w.cpu().numpy(), w_out=w_out.cpu().numpy(), psnr=np.float64(proj.psnr),
                     age_group=np.int64(proj.age), gender=np.int64(proj.gender), out_age_group=np.int64(a),
                     out_gender=np.int64(g), resolution=np.int64(self.face.resolution))
        except OSError as exc:
            raise OSError(f"{path}: cannot write latent: {exc.strerror or exc}") from None
        return path

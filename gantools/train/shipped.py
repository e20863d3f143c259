"""Continuing a shipped model: training-state files and ``--init NAME``.

A shipped model's **training state** (``weights/state/<stem>.d.safetensors``, listed in the
manifest with its sha256, not packed into the wheel) holds what continuing its adversarial
training needs besides the generator:

* tensors ``D.<key>``: the discriminator's state dict (float16; none for a task without D), or
  some of its children (``ship --d-part``: e.g. only the painting-side D of a domain style; the
  others then start fresh and warm up),
* tensors ``G.<key>``: the generator's parts that the shipped weights leave out (float16; e.g. the
  painting -> photo half of a domain style whose weights are only its photo -> painting half),
* metadata: ``format`` (``gantools-train-state-1``), ``task``, ``generator`` (the weights file)
  and ``generator_sha256`` (the state belongs to that file only), ``options`` (JSON: every task
  option of the run, resolved), ``settings`` (JSON: the engine's adversarial settings
  :data:`SETTINGS`), ``steps``, ``images_seen``, ``command``, ``date``.

:func:`run_state` takes a state from a run's checkpoint (``python -m gantools.train.ship``).
``--init REF`` (a weights file, or a shipped model's name) works for every task the same way:

* :func:`shipped_defaults` (used by :func:`gantools.train.api.make_config`): for a shipped
  model, the run's task options and :data:`SETTINGS` default to the shipped run's (from its
  state; without one, the options recorded in the generator's export metadata, and for older
  exports its manifest keys that are task options: ``scale``, ``mode``, ``resolution``); given
  flags win.
* :func:`start_from` (used by the engine): loads the generator (with the state's ``G.`` parts;
  a narrower generator is widened when its architecture can keep its images, e.g. FaceGAN) and,
  when the shipped model has a state, the discriminator (cast to float32). No state, or only
  some of D's children in it: a one-line notice that D (or those children) starts fresh (the
  engine then trains D alone for its first steps, ``--d-warmup``).
  A state whose D does not fit the task's D (the task's ``build_discriminator`` with other
  options): ``ValueError``, one line naming those options.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from gantools.plugin import OptionError
from gantools.weights import ShippedModel, find, manifest

if TYPE_CHECKING:
    import torch

    from gantools.train.task import TrainTask

FORMAT = "gantools-train-state-1"
#: engine settings a state records and ``--init NAME`` takes from it unless given
SETTINGS = ("adv_loss", "augment", "r1_gamma", "r1_every")
D_PREFIX = "D."
G_PREFIX = "G."


@dataclass(frozen=True)
class TrainState:
    """A training state's tensors (float32) and metadata: ``d`` the discriminator's state dict (or
    some of its children's), ``g`` the generator's entries the shipped weights lack (may be empty)."""

    d: dict[str, "torch.Tensor"]
    g: dict[str, "torch.Tensor"]
    meta: dict[str, str]


@dataclass(frozen=True)
class InitSource:
    """What ``--init REF`` names: the generator ``weights``, and for a shipped ``model`` its state."""

    weights: Path
    model: ShippedModel | None = None
    state: Path | None = None  # None: no state shipped, or not installed
    options: dict[str, Any] = field(default_factory=dict)  # the shipped run's task options
    settings: dict[str, Any] = field(default_factory=dict)  # the shipped run's SETTINGS
    d_loaded: bool = False  # start_from loaded a discriminator from the state

    @property
    def label(self) -> str:
        if self.model is None:
            return str(self.weights)
        return f"shipped {self.model.task} model {self.model.name!r} ({self.model.file})"


# -- state files ---------------------------------------------------------------------------
def write_state(path: str | Path, state: TrainState) -> Path:
    """Write a state file: ``state.d`` as float16 ``D.*`` tensors, ``state.g`` as ``G.*``, its
    metadata plus ``format`` (atomic). ``ValueError`` when a finite float does not fit float16.
    """
    from gantools.train.export import save_safetensors

    tensors = {**_half(state.d, D_PREFIX), **_half(state.g, G_PREFIX)}
    return save_safetensors(path, tensors, {**state.meta, "format": FORMAT})


def _half(tensors: dict[str, "torch.Tensor"], prefix: str) -> dict[str, "torch.Tensor"]:
    import torch

    out = {}
    for k, v in tensors.items():
        v = v.detach().cpu()
        if v.is_floating_point():
            half = v.to(torch.float16)
            if not torch.isfinite(half).all() and torch.isfinite(v).all():
                raise ValueError(f"tensor {prefix}{k} does not fit float16")
            v = half
        out[prefix + k] = v
    return out


def read_state_meta(path: str | Path) -> dict[str, str]:
    """A state file's metadata (tensors not read); ``ValueError`` when it is not a state file."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), "pt") as fh:
            meta = fh.metadata() or {}
    except Exception as exc:  # truncated or not safetensors
        raise ValueError(f"{path}: not a readable training state ({' '.join(str(exc).split())})") from None
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path}: not a gantools training state (no '{FORMAT}' metadata)")
    return meta


def read_state(path: str | Path) -> TrainState:
    """A state file's tensors (floats as float32) and metadata."""
    from safetensors.torch import load_file

    from gantools.train.export import float32_state

    meta = read_state_meta(path)
    tensors = load_file(str(path))

    def part(prefix: str) -> dict[str, "torch.Tensor"]:
        return float32_state({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})

    return TrainState(part(D_PREFIX), part(G_PREFIX), meta)


def _child(key: str) -> str:
    """The child module a state-dict key belongs to (``"painting"`` of ``"painting.net.0.weight"``)."""
    return key.split(".", 1)[0]


def _under(state: dict[str, Any], children: set[str] | list[str]) -> dict[str, Any]:
    """The entries of ``state`` that belong to ``children``."""
    return {k: v for k, v in state.items() if _child(k) in children}


def keep_parts(d_state: dict[str, "torch.Tensor"], parts: list[str]) -> dict[str, "torch.Tensor"]:
    """The entries of ``d_state`` under the children ``parts`` (e.g. ``["painting"]`` of a
    discriminator pair). ``ValueError`` naming the children there are when one has no entries."""
    children = sorted({_child(k) for k in d_state if "." in k})
    for p in parts:
        if p not in children:
            raise ValueError(f"the discriminator has no part {p!r} (its parts: {', '.join(children) or 'none'})")
    return _under(d_state, parts)


def run_state(export: str | Path, export_state: dict[str, "torch.Tensor"], export_meta: dict[str, str],
              checkpoint: str | Path | None = None) -> TrainState | None:
    """The training state of a run's export: D, the parts of the EMA generator a slimmed export
    left out, and metadata, from the checkpoint of the export's step.

    The checkpoint is ``checkpoint`` or the run's ``checkpoints/ckpt-<steps>.pt`` beside the export;
    None when there is no such file (the export is not in a run folder). ``ValueError`` when the
    checkpoint is not the one the export was written with (task, step or generator differ). A
    slimmed export (one child of the run's generator, e.g. ``python -m gantools_stylize.pair``)
    belongs to its run's checkpoint too.
    """
    from gantools.train.rundir import RunDir

    run = RunDir(Path(export).parent)
    steps = int(export_meta.get("steps", -1))
    path = Path(checkpoint) if checkpoint else run.ckpt_dir / f"ckpt-{steps:08d}.pt"
    if checkpoint is None and not (path.exists() and run.config_path.exists()):
        return None
    ckpt = run.load_checkpoint(path)
    if ckpt.get("task") != export_meta.get("task") or int(ckpt.get("step", -1)) != steps:
        raise ValueError(f"{path}: checkpoint of {ckpt.get('task')!r} step {ckpt.get('step')}, but the export "
                         f"is {export_meta.get('task')!r} step {steps}: not the run of this export")
    rest = _generator_rest(ckpt.get("G_ema", {}), export_state)
    if rest is None:
        raise ValueError(f"{path}: its generator differs from {export}: not the checkpoint of this export")
    config = run.read_config() if run.config_path.exists() else {}
    meta = {
        "task": export_meta["task"], "steps": str(steps), "images_seen": str(ckpt.get("images_seen", 0)),
        "options": json.dumps(_run_options(export_meta["task"], config.get("options", {}), export_meta),
                              sort_keys=True),
        "settings": json.dumps({k: config[k] for k in SETTINGS if k in config}, sort_keys=True),
        "command": str(config.get("command", export_meta.get("command", ""))),
        "date": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
    }
    return TrainState(dict(ckpt.get("D") or {}), rest, meta)


def _generator_rest(ema: dict[str, "torch.Tensor"], export_state: dict[str, "torch.Tensor"]) -> dict | None:
    """The entries of the checkpoint's EMA generator that ``export_state`` leaves out: ``{}`` when it
    is the whole generator, the other children when it is one child of it (a slimmed export such as
    the ``ab`` half of a generator pair; see :func:`_load_generator`); None when it is neither."""
    import torch

    prefixes = [""] + sorted({_child(k) + "." for k in ema if "." in k})
    for p in prefixes:
        part = {k[len(p):]: v for k, v in ema.items() if k.startswith(p)}
        if set(part) == set(export_state):
            if not all(torch.equal(part[k].to(v.dtype), v) for k, v in export_state.items()):
                return None
            return {k: v for k, v in ema.items() if not k.startswith(p)} if p else {}
    return None


def _run_options(task: str, given: dict[str, Any], export_meta: dict[str, str]) -> dict[str, Any]:
    """Every task option of a run: given, else recorded in the export, else decided at run time (the
    export's metadata), else default."""
    from gantools.train.task import get_task

    recorded = json.loads(export_meta.get("options", "{}"))
    out = {}
    for o in get_task(task).options:
        value = given.get(o.name, recorded.get(o.name))
        if value is None and o.name in export_meta:  # decided at run time, e.g. stylize --mode
            try:
                value = o.validate(export_meta[o.name])
            except OptionError:
                pass
        value = o.default if value is None else value
        if value is not None:
            out[o.name] = value
    return out


# -- --init ----------------------------------------------------------------------------------
def resolve_init(task: str, ref: str, given: dict[str, Any] | None = None) -> InitSource:
    """What ``--init ref`` names for ``task`` (``given``: the task options given, to pick among
    models shipped under one name). ``ValueError`` (one line) when ``ref`` is neither a file nor a
    shipped model, or the shipped files do not match the manifest.
    """
    from gantools.train.task import get_task

    options = {o.name: o for o in get_task(task).options}
    model = find(task, ref, {k: v for k, v in (given or {}).items() if k in options}, keys=options)
    if model is None:
        if Path(ref).is_file():
            return InitSource(Path(ref))
        names = ", ".join(sorted({m.name for m in manifest() if m.task == task})) or "none"
        raise ValueError(f"--init {ref}: no such file, and no shipped {task} model of that name (shipped: {names})")
    weights = model.verify()
    state = model.verify_state()
    if state is not None:
        meta = read_state_meta(state)
        if meta.get("generator_sha256") != model.sha256:
            raise ValueError(f"{state}: training state of another {model.file} (its sha256 differs): "
                             "ship them together")
        recorded, settings = json.loads(meta.get("options", "{}")), json.loads(meta.get("settings", "{}"))
    else:  # the generator's own record (exports since options were recorded), else the manifest's keys
        recorded, settings = {**model.extra, **_export_options(weights)}, {}
    shipped_options = {k: options[k].validate(v) for k, v in recorded.items() if k in options and v is not None}
    return InitSource(weights, model, state, shipped_options, {k: v for k, v in settings.items() if k in SETTINGS})


def _export_options(path: Path) -> dict[str, Any]:
    """The task options recorded in an export's metadata (``{}`` for older exports)."""
    from safetensors import safe_open

    with safe_open(str(path), "pt") as fh:
        return json.loads((fh.metadata() or {}).get("options", "{}"))


def shipped_defaults(task: str, ref: str, given: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(task options, engine settings)`` that ``--init ref`` brings (empty for a plain file)."""
    src = resolve_init(task, ref, given)
    return src.options, src.settings


def start_from(task: "TrainTask", ref: str, G: "torch.nn.Module", D: "torch.nn.Module | None",
               log: Callable[[str], None] = print) -> InitSource:
    """Load ``--init ref`` into ``task``'s ``G`` and, from a shipped state, into its ``D``.

    Logs one line per network. ``ValueError`` (one line) when the weights or the state do not fit.
    """
    src = resolve_init(task.config.task, ref, task.opts)
    part = _load_generator(G, src.weights, log)
    state = read_state(src.state) if src.state is not None else None
    if part and state is not None and state.g:
        _load_rest(G, state.g, src.state)
        log(f"initialised generator part {part} from {src.label}, the rest from {src.state}")
    elif part:
        log(f"initialised generator part {part} from {src.label}; the rest of the generator starts fresh")
    else:
        log(f"initialised generator from {src.label}")
    if D is None:
        return src
    if state is None:
        why = ("not a shipped model" if src.model is None else "none shipped" if not src.model.state
               else "not installed (weights/state/ is in a source checkout)")
        log(f"{src.label}: no training state ({why}): the discriminator starts fresh")
        return src
    if not state.d:
        log(f"{src.label}: its run trained no discriminator: the discriminator starts fresh")
        return src
    mine = _shapes(D.state_dict())
    theirs = _shapes(state.d)
    step = state.meta.get("steps", "?")
    if mine == theirs:
        D.load_state_dict(state.d)
        log(f"initialised discriminator from {src.state} (step {step})")
        return dataclasses.replace(src, d_loaded=True)
    fresh = _fresh_children(mine, theirs)
    if fresh is None:
        raise ValueError(f"{src.state}: the shipped discriminator does not fit this run's: "
                         f"{_mismatch(task, D, state.d, src)}; drop those options to continue the shipped model")
    D.load_state_dict(state.d, strict=False)
    log(f"initialised discriminator from {src.state} (step {step}) but its part(s) {', '.join(fresh)}: "
        "not shipped, they start fresh")
    return src


def _fresh_children(mine: dict[str, tuple], theirs: dict[str, tuple]) -> list[str] | None:
    """The children of a discriminator (shapes ``mine``) that a partial state (``theirs``) leaves
    out, when ``theirs`` is exactly some of its children; else None."""
    kept = {_child(k) for k in theirs}
    fresh = sorted({_child(k) for k in mine} - kept)
    if not fresh or _under(mine, kept) != theirs:
        return None
    return fresh


def _load_rest(G: "torch.nn.Module", rest: dict[str, "torch.Tensor"], path: Path) -> None:
    """Load a state's ``G.`` entries into ``G``; ``ValueError`` when they do not fit it."""
    own = _shapes(G.state_dict())
    bad = [k for k, v in _shapes(rest).items() if own.get(k) != v]
    if bad:
        raise ValueError(f"{path}: its generator part {bad[0]} does not fit this run's generator")
    G.load_state_dict(rest, strict=False)


def _load_generator(G: "torch.nn.Module", path: Path, log: Callable[[str], None] = print) -> str:
    """Load ``path`` into ``G``, else widened into ``G`` (a narrower generator of its architecture,
    see :func:`_widen`), else into the one child of ``G`` it fits (e.g. ``ab`` of a generator pair,
    from a slimmed export); returns that child's name ("" for all of ``G``)."""
    from gantools.checkpoint import read_state_dict
    from gantools.train.export import load_generator_weights

    try:
        load_generator_weights(G, path)
        return ""
    except ValueError:
        state = read_state_dict(path)[0]
        if _widen(G, state, path, log):
            return ""
        keys = state.keys()
        for name, child in G.named_children():
            if child.state_dict().keys() == keys:
                load_generator_weights(child, path)
                return name
        raise


def _widen(G: "torch.nn.Module", state: dict[str, "torch.Tensor"], path: Path, log: Callable[[str], None]) -> bool:
    """Load a narrower generator's ``state`` into ``G`` when ``G``'s architecture can widen it with
    the same images (a ``widened_state`` method, e.g. FaceGAN's); False when it cannot."""
    from gantools.train.export import float32_state

    widen = getattr(G, "widened_state", None)
    if widen is None:
        return False
    try:
        G.load_state_dict(widen(float32_state(state)))
    except ValueError:
        return False
    log(f"{path}: a narrower generator, widened to this run's widths (the new channels start with zero "
        "weights into the old ones: the same images)")
    return True


def _shapes(state: dict[str, "torch.Tensor"]) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in state.items()}


def _mismatch(task: "TrainTask", D: "torch.nn.Module", d_state: dict[str, "torch.Tensor"], src: InitSource) -> str:
    """The options that make ``task``'s D differ from the shipped one (each rebuilt with the
    shipped value), or the first differing tensor when no single option explains it."""
    flags = {o.name: o.flag for o in task.options}
    mine, theirs, opts = _shapes(D.state_dict()), _shapes(d_state), task.opts
    culprits = []
    for k, v in src.options.items():
        if k in opts and opts[k] != v:
            task.opts = {**opts, k: v}
            try:
                if _shapes(task.build_discriminator().state_dict()) != mine:
                    culprits.append(f"{flags.get(k, k)} {opts[k]} (shipped: {v})")
            finally:
                task.opts = opts
    if culprits:
        return ", ".join(culprits)
    key = next(k for k in sorted(set(mine) | set(theirs)) if mine.get(k) != theirs.get(k))
    shipped, here = (list(s[key]) if key in s else "missing" for s in (theirs, mine))
    return f"{key}: {shipped} shipped, {here} here"

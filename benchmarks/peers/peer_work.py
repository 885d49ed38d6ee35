"""What every engine in ``benchmarks/bench_peers.py`` runs, and how its result is reported.

Imported by both environments: the project's ``.venv`` (plain loop, Spark) and the peers venv
(``benchmarks/peers/.venv``: Ray Data, Daft), with ``src/`` and this folder on ``PYTHONPATH``, so the
decoder (:func:`fleetvision.decode.decode_batch`) and the fused model
(:func:`fleetvision.models.pretrained.fuse_task_models` over the starter models) are the checkout's code
in both. Only numpy, PIL, Keras/TensorFlow and psutil here; no engine is imported.

The unit of work, one batch of photo uris: read and decode every photo (``decode_batch``, the job's
limits), run the fused model on the good ones ``model_batch`` rows at a time, and return one float32 row
of :data:`OUTPUT_WIDTH` values per photo (NaN for a photo that could not be decoded).
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

OUTPUT_WIDTHS: dict[str, int] = {"angle": 27, "banner": 1, "plate_presence": 1, "plate_box": 4, "body": 7}
"""The fused model's outputs in the order they are packed into one row (docs/CONTRACTS.md shapes)."""
OUTPUT_WIDTH = sum(OUTPUT_WIDTHS.values())


@dataclasses.dataclass(frozen=True)
class WorkSettings:
    """The decoder's limits and the batch sizes, copied from the project's config by the driver.

    Attributes:
        starter_dir: Folder of the starter models (``<task>/head.keras`` + ``backbone.json``).
        photo_root: The only folder photo uris may point into.
        image_size: Side of the models' uint8 input.
        max_pixels: ``scoring.max_image_pixels``.
        max_declared_pixels: ``scoring.max_declared_pixels``.
        max_bytes: ``scoring.max_image_bytes``.
        decode_batch: Photos decoded per call (the job's ``spark.arrow_max_records_per_batch``).
        model_batch: Rows per model call (the job's ``scoring.batch_size``).
    """

    starter_dir: str
    photo_root: str
    image_size: int
    max_pixels: int
    max_declared_pixels: int
    max_bytes: int
    decode_batch: int
    model_batch: int

    def __post_init__(self) -> None:
        for name in ("image_size", "max_pixels", "max_declared_pixels", "max_bytes", "decode_batch", "model_batch"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"WorkSettings.{name} must be a positive int, got {value!r}")

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> WorkSettings:
        return cls(**json.loads(text))


PredictFn = Callable[[np.ndarray], Mapping[str, np.ndarray]]


def load_fused_model(settings: WorkSettings) -> PredictFn:
    """The starter models fused on one backbone pass, wrapped as scoring wraps them.

    Raises:
        ValueError: The starter models do not fuse into one model (more than one backbone pass).
    """
    from fleetvision.models.serving import read_model_folder

    folder = read_model_folder(Path(settings.starter_dir))
    if folder.input_size != settings.image_size:
        raise ValueError(f"starter models in {folder.folder} take {folder.input_size} px, the work settings "
                         f"{settings.image_size}")
    fused = folder.predictors()
    if len(fused) != 1:
        raise ValueError(f"starter models in {folder.folder} fuse into {len(fused)} models, "
                         "expected one backbone pass")
    return next(iter(fused.values()))


class StarterModelSet:
    """What the scoring UDF's model cache needs of a model set: an id (the starter files' digest).

    Its loader is :func:`starter_loader`; both live here so Spark workers (which import ``peer_work``)
    can unpickle them for ``bench_peers.py`` and ``udf_ab.py`` alike.
    """

    def __init__(self, settings_json: str, model_set_id: str) -> None:
        self.settings_json = settings_json
        self.model_set_id = model_set_id

    def __repr__(self) -> str:
        return f"StarterModelSet({self.model_set_id})"


def starter_loader(model_set: StarterModelSet) -> dict[str, PredictFn]:
    """The scoring UDF's model loader for the starter files: one fused predict function."""
    return {"angle+banner+plate+body": load_fused_model(WorkSettings.from_json(model_set.settings_json))}


def infer_uris(uris: Sequence[str | None], predict: PredictFn, settings: WorkSettings) -> np.ndarray:
    """Decode a batch of photos by uri and run the fused model on it.

    Returns:
        float32 ``[len(uris), OUTPUT_WIDTH]``; the rows of photos that failed to decode are NaN.
    """
    from fleetvision.decode import decode_batch
    from fleetvision.photo_uris import PhotoRoots

    uris = list(uris)
    batch, photos = decode_batch(
        [None] * len(uris),
        settings.image_size,
        settings.max_pixels,
        uris=uris,
        max_declared_pixels=settings.max_declared_pixels,
        max_bytes=settings.max_bytes,
        roots=PhotoRoots((settings.photo_root,)),
    )
    out = np.full((len(uris), OUTPUT_WIDTH), np.nan, dtype=np.float32)
    ok = np.array([i for i, p in enumerate(photos) if p.ok], dtype=np.int64)
    for start in range(0, len(batch), settings.model_batch):
        raw = predict(batch[start : start + settings.model_batch])
        packed = np.concatenate([np.asarray(raw[k], np.float32).reshape(-1, w) for k, w in OUTPUT_WIDTHS.items()], 1)
        out[ok[start : start + len(packed)]] = packed
    return out


# ------------------------------------------------------------------------------------ measurement
def machine() -> dict[str, Any]:
    """Cores, memory and CPU model of this machine (Linux /proc; 'unknown' elsewhere)."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram_gib = None
    try:
        kb = next(int(x.split()[1]) for x in Path("/proc/meminfo").read_text().splitlines() if x.startswith("MemTotal"))
        ram_gib = round(kb / 1024 / 1024, 1)
    except (OSError, StopIteration, ValueError):
        pass
    return {
        "cores": os.cpu_count(),
        "ram_gib": ram_gib,
        "cpu_model": cpu,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average_1m_at_start": round(os.getloadavg()[0], 2),
    }


_INFRA = ("raylet", "gcs_server", "dashboard", "log_monitor", "/monitor.py", "runtime_env/agent", "ray_client_server")


def process_role(name: str, cmdline: Sequence[str], is_root: bool) -> str:
    """``driver`` (the measured process), ``jvm``, ``infra`` (Ray's own daemons) or ``worker``.

    Ray names its actor processes ``ray::<Class>`` (they start as ``default_worker.py``); Spark's Python
    workers are forks of ``pyspark.daemon``; Daft's process pool runs plain Python children. Every other
    descendant counts as a worker.
    """
    line = " ".join(cmdline)
    if is_root:
        return "driver"
    if name == "java" or line.startswith("java ") or "/java " in line:
        return "jvm"
    if line.startswith("ray::") or name.startswith("ray::"):
        return "worker"
    if any(k in line for k in _INFRA) or name in _INFRA:
        return "infra"
    return "worker"


class RssSampler:
    """Peak resident memory of a process tree, per process, sampled on a thread every ``interval`` s.

    Operating limits: a process that lives shorter than ``interval`` can be missed; peaks between two
    samples are not seen (RSS rises slowly while a batch is decoded and inferred, so 0.25 s is close).
    """

    def __init__(self, root_pid: int, interval: float = 0.25) -> None:
        import psutil

        self._psutil = psutil
        self.root_pid = root_pid
        self.interval = interval
        self.peaks: dict[int, dict[str, Any]] = {}
        self.peak_total = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        psutil = self._psutil
        try:
            root = psutil.Process(self.root_pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            return
        total = 0
        for p in procs:
            try:
                rss = p.memory_info().rss
                # re-read every time: a process can change what it is (spark-class's bash execs java, a
                # Ray worker renames itself after it starts); the last look wins
                name, cmd = p.name(), p.cmdline()
                role = process_role(name, cmd, p.pid == self.root_pid)
                entry = self.peaks.setdefault(p.pid, {"role": role, "name": name, "rss": 0})
                entry.update(role=role, name=name)
                entry["rss"] = max(entry["rss"], rss)
                total += rss
            except psutil.Error:
                continue
        self.peak_total = max(self.peak_total, total)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def report(self) -> dict[str, Any]:
        """Peak RSS in MiB: per worker (max over worker processes, or the driver when the work ran in it)."""
        mib = 1024 * 1024
        by_role: dict[str, list[int]] = {}
        for entry in self.peaks.values():
            by_role.setdefault(entry["role"], []).append(entry["rss"])
        # Small Python helpers (Spark's daemon before it forks, Ray's idle workers) are workers too; the
        # peak is the largest one, which is the one that held the model.
        workers = [r for r in by_role.get("worker", []) if r > 300 * mib]
        driver = max(by_role.get("driver", [0]))
        return {
            "peak_rss_mib_per_worker": round(max(workers) / mib) if workers else round(driver / mib),
            "workers_seen": len(workers) if workers else 1,
            "work_in_driver": not workers,
            "peak_rss_mib_driver": round(driver / mib),
            "peak_rss_mib_jvm": round(max(by_role["jvm"]) / mib) if "jvm" in by_role else None,
            "peak_rss_mib_total": round(self.peak_total / mib),
        }


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def peers_table(methods: Mapping[str, Mapping[str, Any]], floor: str = "plain_loop") -> dict[str, dict[str, Any]]:
    """photos/s and the ratio to the floor for every method that finished.

    Args:
        methods: Method -> at least ``photos`` and ``seconds`` (a method without ``seconds`` failed and
            is kept with its ``error``).
        floor: The method the ratios are against.

    Returns:
        Method -> the input entry plus ``photos_per_second`` and ``ratio_to_floor`` (None without a floor).

    Raises:
        ValueError: A finished method has no photos or a non-positive time.
    """
    rates: dict[str, float] = {}
    for name, m in methods.items():
        if m.get("seconds") is None:
            continue
        photos, seconds = m.get("photos"), m["seconds"]
        if not isinstance(photos, int) or photos < 1 or not seconds > 0:
            raise ValueError(f"method {name!r}: photos {photos!r} and seconds {seconds!r} must be positive")
        rates[name] = photos / seconds
    base = rates.get(floor)
    return {
        name: {
            **m,
            "photos_per_second": round(rates[name], 2) if name in rates else None,
            "ratio_to_floor": round(rates[name] / base, 3) if name in rates and base else None,
        }
        for name, m in methods.items()
    }


# ------------------------------------------------------------------------------- repeated readings
def round_order(methods: Sequence[str], round_index: int) -> list[str]:
    """The methods' order in one round of a repeated run: as given, then reversed, alternately (A B C C B A).

    Alternating cancels a drift that grows through the run (the machine warming, a neighbour starting)
    to first order, where repeating the same order would hand it to the methods at the end.
    """
    return list(methods) if round_index % 2 == 0 else list(reversed(methods))


def combine_readings(readings: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One method's entry from its readings: the median reading's fields, every reading's time kept.

    Args:
        readings: One result per round, in the order they ran; a failed reading has no ``seconds``.

    Returns:
        The fields of the finished reading whose ``seconds`` is the median (the lower middle of an even
        count), ``readings_seconds`` (every finished reading, in run order), ``readings``/``readings_failed``
        and the largest ``peak_rss_mib_*`` over all readings. Without any finished reading: the last
        reading (with its ``error``).
    """
    if not readings:
        raise ValueError("a method needs at least one reading")
    done = [r for r in readings if r.get("seconds") is not None]
    if not done:
        return {**readings[-1], "readings": len(readings), "readings_failed": len(readings)}
    ordered = sorted(done, key=lambda r: r["seconds"])
    median = ordered[(len(ordered) - 1) // 2]
    out = {**median, "readings": len(readings), "readings_failed": len(readings) - len(done),
           "readings_seconds": [r["seconds"] for r in done]}
    for key in {k for r in readings for k in r if k.startswith("peak_rss_mib_")}:
        values = [r[key] for r in readings if isinstance(r.get(key), (int, float))]
        out[key] = max(values) if values else None
    return out


def head_to_head(rounds: Sequence[Mapping[str, Mapping[str, Any]]], method: str, others: Sequence[str]
                 ) -> dict[str, dict[str, Any]]:
    """How ``method`` fared against each of ``others`` round by round (each round: method -> reading).

    Returns:
        Other -> ``rounds`` (rounds where both finished), ``wins`` (rounds where ``method`` took less
        time) and ``median_speed_ratio`` (the median over those rounds of other's seconds / method's
        seconds: above 1 means ``method`` is faster), or None without a common round.
    """
    out: dict[str, dict[str, Any]] = {}
    for other in others:
        ratios = []
        for r in rounds:
            a, b = r.get(method, {}).get("seconds"), r.get(other, {}).get("seconds")
            if a and b:
                ratios.append(b / a)
        ratios.sort()
        mid = len(ratios) // 2
        median = None if not ratios else ratios[mid] if len(ratios) % 2 else (ratios[mid - 1] + ratios[mid]) / 2
        out[other] = {"rounds": len(ratios), "wins": sum(1 for x in ratios if x > 1),
                      "median_speed_ratio": None if median is None else round(median, 3)}
    return out

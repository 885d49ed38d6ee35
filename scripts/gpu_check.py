"""The fused scoring model on a lent accelerator: Keras on JAX, checked against CPU TensorFlow.

Two steps (``scripts/gpu_check.sh`` runs them; docs/runbook.md, *GPU check*):

``prepare`` (here, in the project's ``.venv`` with TensorFlow; needs the package index once):
    writes ``build/gpu_check/``: ``fused.keras`` (the starter models fused on one backbone pass, saved
    as one self-contained file, backbone included, checked to load in safe mode), ``reference.npz``
    (a few decoded photos and the fused model's CPU TensorFlow outputs on them), ``wheels/`` (keras
    3.15.1 and the few pure or binary wheels it imports that a JAX + PyTorch machine may lack, for
    CPython 3.10-3.13) and ``manifest.json``. Refuses to leave more than 64 MiB.

``run`` (on the device; Python with JAX, no TensorFlow, no package index):
    installs the carried wheels into a temporary folder (``pip --no-index``, only those whose module
    is missing), loads ``fused.keras`` with ``KERAS_BACKEND=jax`` in safe mode, compares its outputs on
    the reference photos with TensorFlow's (float32 at JAX's ``highest`` matmul precision: ``atol``;
    and at the default precision, reported), then measures photos/s at each batch size (uint8 photos
    from host memory in, numpy outputs out, as a scoring worker would) and writes JSON. Where
    ``prepare`` left sample photos (``photos/``, from bench_peers' cache), it also measures how fast the
    device's CPU cores decode them with ``fleetvision.decode.decode_batch`` (one process, then one per
    core): the rate a GPU executor's decode can feed the model at; and, where the device's PyTorch has
    torchvision, how fast nvJPEG decodes them on the GPU (``scripts/gpu_decode.py``; measured only).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DIR = ROOT / "build" / "gpu_check"
KERAS_VERSION = "3.15.1"
CARRY_LIMIT = 64 * 1024 * 1024
REFERENCE_PHOTOS = 16
SAMPLE_PHOTO_BYTES = 8 * 1024 * 1024  # the decode sample carried beside the model (the carry limit is 64 MiB)
DECODE_SECONDS = 3.0  # least time each decode measurement runs for
OUTPUTS = ("angle", "banner", "plate_presence", "plate_box", "body")
# module -> distribution, for keras' imports a JAX + PyTorch machine may lack (h5py reads .keras weights)
KERAS_DEPS = {
    "absl": "absl-py==2.5.1", "rich": "rich==15.0.0", "markdown_it": "markdown-it-py==4.3.0", "mdurl": "mdurl==0.1.2",
    "pygments": "pygments==2.21.0", "namex": "namex==0.1.0", "optree": "optree==0.20.0", "h5py": "h5py==3.16.0",
    "ml_dtypes": "ml-dtypes==0.7.0", "packaging": "packaging==26.4", "typing_extensions": "typing-extensions==4.16.0",
}
BINARY_DEPS = ("optree==0.20.0", "h5py==3.16.0", "ml-dtypes==0.7.0")
PYTHONS = ("3.10", "3.11", "3.12", "3.13")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


# ------------------------------------------------------------------------------------------ prepare
def _bench_photos() -> list[Path]:
    """The photo files of bench_peers' cache (every format it renders), in a fixed order."""
    return sorted(p for p in (ROOT / "benchmarks" / "peers" / ".cache").glob("*/photos/*") if p.is_file())


def _copy_sample_photos(folder: Path) -> int:
    """Copy a spread of bench_peers' photos (real file sizes, all formats) up to SAMPLE_PHOTO_BYTES into ``photos/``."""
    import shutil

    target = folder / "photos"
    shutil.rmtree(target, ignore_errors=True)
    files = _bench_photos()
    if not files:
        return 0
    target.mkdir(parents=True)
    # every k-th file, k chosen so that the whole spread about fills the budget: the sample keeps the set's
    # mix of sizes and formats (skipping big files to fit more would make decode look cheaper than it is)
    total = sum(f.stat().st_size for f in files)
    step = max(1, -(-total // SAMPLE_PHOTO_BYTES))
    used = 0
    for f in files[::step]:
        size = f.stat().st_size
        if used + size > SAMPLE_PHOTO_BYTES:
            break
        shutil.copyfile(f, target / f.name)
        used += size
    return len(list(target.iterdir()))


def _reference_photos(size: int) -> tuple[Any, str]:
    """Up to REFERENCE_PHOTOS decoded benchmark photos (bench_peers' cache), else seeded noise."""
    import numpy as np

    from fleetvision.decode import decode_batch

    files = [p for p in _bench_photos() if p.suffix == ".jpg"][: REFERENCE_PHOTOS * 2]
    if files:
        batch, _ = decode_batch([f.read_bytes() for f in files], size, 40_000_000)
        if len(batch) >= REFERENCE_PHOTOS:
            return batch[:REFERENCE_PHOTOS], "decoded synthetic listing photos (bench_peers cache)"
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (REFERENCE_PHOTOS, size, size, 3), dtype=np.uint8), "seeded uniform noise"


def prepare(folder: Path, starter: Path, skip_wheels: bool) -> dict[str, Any]:
    import keras
    import numpy as np

    from fleetvision.models.serving import read_model_folder

    folder.mkdir(parents=True, exist_ok=True)
    fused = read_model_folder(starter).fused()
    if len(fused) != 1:
        raise ValueError(f"starter models in {starter} fuse into {len(fused)} models, expected one")
    model = fused[0][1]
    path = folder / "fused.keras"
    model.save(path)
    # the file must stand alone: load it back in safe mode, with nothing of fleetvision registered
    reloaded = keras.saving.load_model(path, compile=False, safe_mode=True)
    size = int(model.inputs[0].shape[1])
    photos, source = _reference_photos(size)
    out = reloaded.predict_on_batch(photos)
    direct = model.predict_on_batch(photos)
    names = [n for n in OUTPUTS if n in out]
    if sorted(names) != sorted(out):
        raise ValueError(f"fused model outputs {sorted(out)}, expected {sorted(OUTPUTS)}")
    for n in names:
        if not np.allclose(out[n], direct[n], atol=1e-6):
            raise ValueError(f"{path} reloaded gives other {n!r} outputs than the model it was saved from")
    np.savez_compressed(folder / "reference.npz", photos=photos, **{f"out_{n}": np.asarray(out[n]) for n in names})
    sample_photos = _copy_sample_photos(folder)
    if not skip_wheels:
        wheels = folder / "wheels"
        wheels.mkdir(exist_ok=True)
        pip = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", str(wheels)]
        subprocess.run([*pip, f"keras=={KERAS_VERSION}"], check=True)
        pure = [d for d in KERAS_DEPS.values() if d not in BINARY_DEPS]
        subprocess.run([*pip, "--only-binary=:all:", *pure], check=True)
        for py in PYTHONS:
            subprocess.run([*pip, "--only-binary=:all:", "--python-version", py, "--implementation", "cp",
                            "--platform", "manylinux_2_17_x86_64", "--platform", "manylinux2014_x86_64",
                            "--platform", "manylinux_2_28_x86_64", *BINARY_DEPS], check=True)
    total = _folder_bytes(folder)
    manifest = {
        "keras": keras.__version__,
        "tensorflow": importlib.import_module("tensorflow").__version__,
        "input_size": size,
        "reference_photos": len(photos),
        "reference_source": source,
        "sample_photos": sample_photos,
        "outputs": names,
        "fused_keras_sha256": _sha256(path),
        "fused_keras_mib": round(path.stat().st_size / 2**20, 2),
        "params": int(model.count_params()),
        "wheels": sorted(p.name for p in (folder / "wheels").glob("*.whl")),
        "total_mib": round(total / 2**20, 2),
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    if total > CARRY_LIMIT:
        raise ValueError(f"{folder} holds {total / 2**20:.1f} MiB, over the 64 MiB a device run may carry")
    return manifest


# ---------------------------------------------------------------------------------------------- run
def install_wheels(folder: Path) -> tuple[Path, list[str]]:
    """Install keras and whichever of its imports are missing, from the carried wheels, into a temp folder."""
    target = Path(tempfile.mkdtemp(prefix="gpu-check-keras-"))
    missing = []
    for module, dist in KERAS_DEPS.items():
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(dist)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps", "--find-links",
                    str(folder / "wheels"), "--target", str(target), f"keras=={KERAS_VERSION}", *missing],
                   check=True)
    return target, missing


def _compare(out: dict[str, Any], ref: Any) -> dict[str, Any]:
    import numpy as np

    report: dict[str, Any] = {}
    for n in OUTPUTS:
        a, b = np.asarray(out[n], np.float64), np.asarray(ref[f"out_{n}"], np.float64)
        entry = {"max_abs_diff": float(np.max(np.abs(a - b)))}
        if n in ("angle", "body"):
            entry["argmax_agreement"] = float(np.mean(a.argmax(1) == b.argmax(1)))
        report[n] = entry
    return report


def _decode_files(args: tuple[list[str], int, int]) -> int:
    """Decode the files (one process's share) as the scoring UDF does, on ``threads``; the number decoded ok."""
    paths, size, threads = args
    sys.path.insert(0, str(ROOT / "src"))
    from fleetvision.decode import decode_batch

    batch, _ = decode_batch([Path(p).read_bytes() for p in paths], size, 40_000_000, threads=threads)
    return len(batch)


def measure_decode(folder: Path, size: int) -> dict[str, Any] | None:
    """Photos/s of ``decode_batch`` on the carried sample: one process, one process on a thread per core
(``scoring.decode_threads``: one GPU task decoding its batches), and one process per core."""
    import multiprocessing

    files = sorted(str(p) for p in (folder / "photos").glob("*")) if (folder / "photos").is_dir() else []
    if not files:
        return None
    cores = os.cpu_count() or 1
    report: dict[str, Any] = {"sample_photos": len(files), "sample_mib": round(
        sum(Path(f).stat().st_size for f in files) / 2**20, 2), "cpu_count": cores, "output_size": size}
    try:
        import PIL

        report["pillow"] = PIL.__version__
        with multiprocessing.get_context("spawn").Pool(cores) as pool:
            for name, procs, threads in (("one_process", 1, 1), ("one_process_threads", 1, cores),
                                         ("all_cores", cores, 1)):
                work = [(files, size, threads)] * procs
                pool.map(_decode_files, [(files, size, 1)] * cores)  # warm every worker (imports, caches)
                done, start = 0, time.perf_counter()
                while time.perf_counter() - start < DECODE_SECONDS:
                    done += sum(pool.map(_decode_files, work))
                seconds = time.perf_counter() - start
                report[f"photos_per_second_{name}"] = round(done / seconds, 1)
                print(f"decode, {procs:3d} process(es) x {threads:3d} thread(s): {done / seconds:10.1f} photos/s",
                      flush=True)
    except Exception as exc:  # the check's verdict is the model's; a decode failure is reported, not fatal
        report["error"] = f"{type(exc).__name__}: {exc}"
    return report


def run(folder: Path, out_path: Path, batches: list[int], iters: int, atol: float) -> dict[str, Any]:
    os.environ["KERAS_BACKEND"] = "jax"
    manifest = json.loads((folder / "manifest.json").read_text())
    have_tf = importlib.util.find_spec("tensorflow") is not None
    target, installed = install_wheels(folder)
    sys.path.insert(0, str(target))
    import jax
    import keras
    import numpy as np

    if keras.backend.backend() != "jax":
        raise RuntimeError(f"keras runs on {keras.backend.backend()}, expected jax")
    start = time.perf_counter()
    model = keras.saving.load_model(folder / "fused.keras", compile=False, safe_mode=True)
    load_s = time.perf_counter() - start
    ref = np.load(folder / "reference.npz")
    photos = ref["photos"]
    tv = [v.value for v in model.trainable_variables]
    ntv = [v.value for v in model.non_trainable_variables]

    @jax.jit
    def forward(tv: Any, ntv: Any, x: Any) -> Any:
        return model.stateless_call(tv, ntv, x, training=False)[0]

    def predict(x: Any) -> dict[str, Any]:
        return {k: np.asarray(v) for k, v in forward(tv, ntv, x).items()}

    with jax.default_matmul_precision("highest"):
        strict = _compare(predict(photos), ref)
    default = _compare(predict(photos), ref)
    ok = all(v["max_abs_diff"] <= atol for v in strict.values())
    size = int(manifest["input_size"])
    rng = np.random.default_rng(0)
    throughput = []
    for bs in batches:
        x = rng.integers(0, 256, (bs, size, size, 3), dtype=np.uint8)
        first = time.perf_counter()
        predict(x)  # compile for this shape
        compile_s = time.perf_counter() - first
        predict(x)
        start = time.perf_counter()
        for _ in range(iters):
            predict(x)
        seconds = time.perf_counter() - start
        throughput.append({"batch": bs, "photos_per_second": round(bs * iters / seconds, 1),
                           "ms_per_batch": round(seconds / iters * 1000, 2), "compile_seconds": round(compile_s, 2)})
        print(f"batch {bs:5d}: {bs * iters / seconds:10.1f} photos/s", flush=True)
    decode = measure_decode(folder, size)
    gpu_decode = None
    if (folder / "photos").is_dir():
        sys.path.insert(0, str(ROOT / "src"))  # decode_batch, for the pixel comparison
        from gpu_decode import measure_gpu_decode

        gpu_decode = measure_gpu_decode(sorted((folder / "photos").glob("*")), size, seconds=DECODE_SECONDS)
    devices = jax.devices()
    result = {
        "check": "gpu_check",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "passed": ok,
        "atol": atol,
        "compare_highest_precision": strict,
        "compare_default_precision": default,
        "reference_photos": len(photos),
        "reference_source": manifest.get("reference_source"),
        "throughput": throughput,
        "iterations_per_batch_size": iters,
        "timing": "uint8 photos from host memory in, numpy outputs back; after one compile and one warm call",
        "model_load_seconds": round(load_s, 2),
        "decode_on_device_cpu": decode,
        "decode_on_gpu": gpu_decode,
        "fused_keras_sha256": _sha256(folder / "fused.keras"),
        "devices": [f"{d.platform}:{getattr(d, 'device_kind', '?')}" for d in devices],
        "jax": jax.__version__,
        "keras": keras.__version__,
        "keras_backend": keras.backend.backend(),
        "tensorflow_present": have_tf,
        "wheels_installed": ["keras", *installed],
        "python": platform.python_version(),
        "reference_made_with": {"tensorflow": manifest.get("tensorflow"), "keras": manifest.get("keras")},
    }
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(result, indent=2) + "\n")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="step", required=True)
    p = sub.add_parser("prepare", help="fused.keras, reference.npz and wheels (here, with TensorFlow)")
    p.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    p.add_argument("--starter", type=Path, default=ROOT / "models" / "starter")
    p.add_argument("--skip-wheels", action="store_true", help="keep the wheels already downloaded")
    r = sub.add_parser("run", help="the check, on the device (JAX)")
    r.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    r.add_argument("--out", type=Path, default=None, help="JSON path (default $OUT/gpu_check.json)")
    r.add_argument("--batches", default="64,128,256,512,1024")
    r.add_argument("--iters", type=int, default=10, help="timed calls per batch size")
    r.add_argument("--atol", type=float, default=1e-3)
    args = parser.parse_args(argv)
    if args.step == "prepare":
        manifest = prepare(args.dir, args.starter, args.skip_wheels)
        print(json.dumps({k: manifest[k] for k in ("fused_keras_mib", "total_mib", "params", "outputs")}))
        return 0
    out = args.out or Path(os.environ.get("OUT", ".")) / "gpu_check.json"
    batches = [int(b) for b in args.batches.split(",") if b.strip()]
    result = run(args.dir, out, batches, args.iters, args.atol)
    print(json.dumps({k: result[k] for k in ("passed", "devices", "compare_highest_precision")}, indent=1))
    print(f"results: {out}")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())

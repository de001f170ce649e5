"""Start a run: prepare every host (agent, specs, LLM Studio config), then start the agents detached."""

from __future__ import annotations

import json
import logging
import shlex
import time
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from labctl import __version__
from labctl.config.experiment import Experiment, load_experiment
from labctl.errors import ConfigError, HostError, Interrupted, LabctlError, RunError
from labctl.experiment import llmstudio_keys as K
from labctl.experiment.agent.ship import ARCHIVE, agent_archive
from labctl.experiment.hosts import Target, resolve_hosts
from labctl.experiment.modelsize import emulated_checkpoint_bytes
from labctl.experiment.remote import Remote
from labctl.experiment.render import render_config
from labctl.experiment.runs import new_run_id, save_manifest
from labctl.experiment.unstarted import starting, undo
from labctl.formats.bundle import Spec
from labctl.paths import repo_data

log = logging.getLogger(__name__)
BPF_PROGRAM = "io_by_second.bt"


def bpf_program() -> Path | None:
    """The report's bpftrace program (labctl/data/bpf/io_by_second.bt), if shipped."""
    path = Path(__file__).resolve().parents[1] / "data" / "bpf" / BPF_PROGRAM
    return path if path.is_file() else None


def host_rundir(target: Target, run_id: str) -> str:
    """Host-local directory of this run (hosts of one machine may share the workdir)."""
    return f"{str(target.var('labctl_host_workdir')).rstrip('/')}/{run_id}/{target.name}"


def output_dir(exp: Experiment, target: Target, run_id: str) -> str:
    """LLM Studio's output directory, on the FlexGroup (where the checkpoint bursts must land)."""
    base = exp.output_dir or f"{target.mount.rstrip('/')}/labctl/{run_id}"
    return f"{base.rstrip('/')}/{target.name}"


def agent_spec(exp: Experiment, target: Target, run_id: str) -> dict[str, Any]:
    """What the host agent runs (the trainer part is filled in by `trainer_spec`)."""
    m = exp.monitors
    return {
        "run_id": run_id,
        "host": target.name,
        "rundir": host_rundir(target, run_id),
        "mount": target.mount,
        "proc_mountstats": str(target.var("labctl_proc_mountstats")),
        "proc_mounts": str(target.var("labctl_proc_mounts")),
        "llmstudio_dir": str(target.var("labctl_llmstudio_dir")) if exp.trainer == "llmstudio" else None,
        "dataset": exp.dataset.train_dataframe or f"{target.dataset_dir}/train_full.pq",
        "backbone_dir": local_backbone(exp, target),
        "monitors": {
            "dmon": m.dmon,
            "dmon_interval_s": m.dmon_interval_s,
            "nfsiostat": m.nfsiostat,
            "nfsiostat_interval_s": m.nfsiostat_interval_s,
            "mountstats": m.mountstats,
            "mountstats_interval_s": m.mountstats_interval_s,
            "bpftrace": m.bpftrace and bool(bpf_program()),
            "lead_s": m.lead_s,
            "tail_s": m.tail_s,
        },
        "gpus": exp.gpus_per_host,
        "bpftrace": {"program": BPF_PROGRAM, "strlen": 128},
    }


def emulator_spec(exp: Experiment, target: Target, out: str, dataset: str) -> dict[str, Any]:
    e, t = exp.emulate, exp.training
    root = target.vars.get("labctl_sim_host_root")
    return {
        "output_dir": out,
        "dataset_path": dataset,
        "experiment_name": exp.name,
        "backbone": exp.model.backbone,
        "backbone_dtype": exp.model.backbone_dtype,
        "epochs": t.epochs,
        "steps_per_epoch": e.steps_per_epoch,
        "step_compute_s": e.step_compute_s,
        "read_bytes_per_step": e.read_bytes_per_step,
        "startup_s": e.startup_s,
        "validation_s": e.validation_s,
        "checkpoint_bytes": emulated_checkpoint_bytes(exp),
        "write_chunk_bytes": e.write_chunk_bytes,
        "dataset_bytes": e.dataset_bytes,
        "evaluation_epochs": t.evaluation_epochs,
        "save_checkpoint": t.save_checkpoint,
        "evaluate_before_training": t.evaluate_before_training,
        "metric": t.metric,
        "gpus": exp.gpus_per_host,
        "gpu_mem_mib": e.gpu_mem_mib,
        "loader_workers": e.loader_workers,
        "seed": t.seed,
        "activity_path": f"{root}/gpu/activity.json" if root else None,
    }


def trainer_spec(exp: Experiment, target: Target, rundir: str, out: str, version: str) -> dict[str, Any]:
    """The trainer command: LLM Studio's CLI (torchrun for N GPUs) or the emulator."""
    gpus = ",".join(str(i) for i in range(exp.gpus_per_host))
    if exp.trainer == "emulate":
        return {
            "kind": "emulate",
            "argv": [target.python, f"{rundir}/agent/{ARCHIVE}", "emulate", f"{rundir}/emulator.json"],
            "cwd": rundir,
            "output_dir": out,
            "flags_path": f"{out}/flags.json",
            "env": {"CUDA_VISIBLE_DEVICES": gpus},
        }
    repo = str(target.var("labctl_llmstudio_dir"))
    venv = target.var("labctl_llmstudio_venv")
    python = target.var("labctl_llmstudio_python") or (f"{venv}/bin/python" if venv else "python3")
    script = K.train_script(version)
    if exp.gpus_per_host == 1:
        argv = [python, script, "-Y", f"{rundir}/cfg.yaml"]
    else:
        argv = [
            python,
            "-m",
            "torch.distributed.run",
            f"--nproc_per_node={exp.gpus_per_host}",
            script,
            "-Y",
            f"{rundir}/cfg.yaml",
        ]
    return {
        "kind": "llmstudio",
        "argv": argv,
        "cwd": repo,
        "output_dir": out,
        "flags_path": f"{out}/flags.json",
        "env": {"CUDA_VISIBLE_DEVICES": gpus, **trainer_env(target)},
    }


def trainer_env(target: Target) -> dict[str, str]:
    """LLM Studio's environment from the inventory: caches on host-local disk, and offline Hugging Face."""
    env = {
        "HF_HOME": str(target.var("labctl_model_cache")),
        "TRITON_CACHE_DIR": str(target.var("labctl_triton_cache")),
    }
    if target.var("labctl_hf_offline"):
        env.update({name: "1" for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")})
    return env


def _backbone(exp: Experiment, target: Target) -> str:
    """The backbone this host loads: `labctl_llmstudio_backbone_dir` (a pre-staged copy) when the inventory
    sets it for an LLM Studio run, else the experiment's."""
    local = target.var("labctl_llmstudio_backbone_dir")
    return str(local) if local and exp.trainer == "llmstudio" else exp.model.backbone


def local_backbone(exp: Experiment, target: Target) -> str | None:
    """The model directory LLM Studio loads on the host (a pre-staged one, or an absolute llm_backbone)."""
    backbone = _backbone(exp, target)
    return backbone if exp.trainer == "llmstudio" and backbone.startswith("/") else None


def with_local_backbone(exp: Experiment, target: Target) -> Experiment:
    """The experiment as this host runs it (its backbone is `_backbone`)."""
    backbone = _backbone(exp, target)
    if backbone == exp.model.backbone:
        return exp
    return exp.model_copy(update={"model": exp.model.model_copy(update={"backbone": backbone})})


class HostRun:
    """One host's part of a run, from preparation to start."""

    def __init__(self, exp: Experiment, target: Target, run_id: str) -> None:
        self.exp, self.target, self.run_id = exp, target, run_id
        self.remote = Remote(target)
        self.rundir = host_rundir(target, run_id)
        self.out = output_dir(exp, target, run_id)
        self.spec = agent_spec(exp, target, run_id)
        self.facts: dict[str, Any] = {}
        self.record: dict[str, Any] = {
            **target.as_json(),
            "rundir": self.rundir,
            "output_dir": self.out,
            "mount": target.mount,
        }

    def prepare(self) -> None:
        """Connect, upload the agent, learn the host's facts, check the mount."""
        r = self.remote
        mount = self.target.mount.rstrip("/") + "/"
        if (self.rundir.rstrip("/") + "/").startswith(mount):
            raise ConfigError(
                f"labctl_host_workdir ({self.target.var('labctl_host_workdir')}) is on the measured mount",
                where=self.target.name,
                fix="monitors write host-local files: set labctl_host_workdir to local disk",
            )
        for sub in ("agent", "raw", "logs"):
            r.mkdir(f"{self.rundir}/{sub}")
        r.put_bytes(agent_archive(), f"{self.rundir}/agent/{ARCHIVE}")
        if bpf_program():
            from labctl.experiment.bpfprogram import render_program

            r.put_text(render_program(self.target.mount), f"{self.rundir}/agent/{BPF_PROGRAM}")
        r.put_text(Spec.from_dict(self.spec).to_json(), f"{self.rundir}/spec.json")
        out = r.check(self._agent("facts", f"{self.rundir}/spec.json"))
        self.facts = json.loads(out)
        self.record["facts"] = self.facts
        self._check_facts()

    def _check_facts(self) -> None:
        """Fail before anything starts when the host cannot run this experiment."""
        f, name = self.facts, self.target.name
        gpus = len([ln for ln in (f.get("gpus") or "").splitlines() if ln.startswith("GPU ")])
        if f.get("gpus") is not None and gpus < self.exp.gpus_per_host:
            raise HostError(
                f"gpus_per_host is {self.exp.gpus_per_host} but nvidia-smi -L lists {gpus} GPU(s)",
                where=name,
                fix="lower gpus_per_host in experiment.yaml",
            )
        if self.exp.trainer == "llmstudio":
            if not f.get("llmstudio_tag"):
                raise HostError(
                    f"no LLM Studio checkout at {self.spec['llmstudio_dir']}",
                    where=name,
                    fix="run `labctl provision` (installs LLM Studio), or use trainer: emulate",
                )
            if not f.get("dataset_exists"):
                raise HostError(
                    f"the data set {self.spec['dataset']} does not exist",
                    where=name,
                    fix="run `labctl provision` (prepares OASST), or set dataset.train_dataframe",
                )
            if self.spec.get("backbone_dir") and not f.get("backbone_exists"):
                raise HostError(
                    f"the model directory {self.spec['backbone_dir']} does not exist",
                    where=name,
                    fix="run `labctl provision` (labctl_llmstudio_backbone_script makes it), or copy the "
                    "model there (labctl_llmstudio_backbone_dir)",
                )
        if not f.get("mounts"):
            raise HostError(
                f"nothing is mounted at {self.target.mount} (per {self.spec['proc_mounts']})",
                where=self.target.name,
                fix="run `labctl provision` first",
            )

    def launch(self, version: str) -> None:
        """Render and upload the config and trainer, record the clock offset, start the agent."""
        r, exp = self.remote, with_local_backbone(self.exp, self.target)
        dataset = exp.dataset.train_dataframe or f"{self.target.dataset_dir}/train_full.pq"
        cfg = render_config(
            exp,
            version=version,
            output_directory=self.out,
            train_dataframe=dataset,
            experiment_name=f"{exp.name}-{self.run_id}-{self.target.name}",
        )
        self.record["rendered_config"] = cfg
        r.put_text(cfg, f"{self.rundir}/cfg.yaml")
        if exp.trainer == "emulate":
            r.put_text(
                json.dumps(emulator_spec(exp, self.target, self.out, dataset), indent=1),
                f"{self.rundir}/emulator.json",
            )
        self.spec["trainer"] = trainer_spec(exp, self.target, self.rundir, self.out, version)
        r.put_text(Spec.from_dict(self.spec).to_json(), f"{self.rundir}/spec.json")
        r.mkdir(self.out)
        clock = r.clock_offset()
        self.record["clock"] = clock
        r.put_text(json.dumps({**clock, "checks": [clock]}, indent=1), f"{self.rundir}/raw/clock.json")
        started = json.loads(r.check(self._agent("start", f"{self.rundir}/spec.json")))
        self.record.update(
            agent_pid=started.get("pid"), started_at=round(time.time(), 6), trainer=self.spec["trainer"]
        )

    def _agent(self, cmd: str, arg: str) -> str:
        return " ".join(
            shlex.quote(a) for a in (self.target.python, f"{self.rundir}/agent/{ARCHIVE}", cmd, arg)
        )


def choose_version(exp: Experiment, runs: list[HostRun]) -> str:
    """The installed LLM Studio release (LLM Studio runs), else the experiment's or inventory's pin."""
    if exp.trainer == "llmstudio":
        tags = {h.facts.get("llmstudio_tag") for h in runs} - {None}
        if len(tags) > 1:
            raise RunError(
                f"the hosts run different LLM Studio releases: {', '.join(sorted(tags))}",
                fix="run `labctl provision` so every host has the pinned release",
            )
        if tags:
            installed = tags.pop()
            try:
                K.parse_version(installed)
                return installed
            except ValueError:
                log.warning("LLM Studio checkout is at %s (not a release tag)", installed)
    pinned = exp.llmstudio.version or (runs[0].target.var("labctl_llmstudio_version") if runs else None)
    return str(pinned or K.PINNED_VERSION)


def _parallel(fn, items: list) -> list[BaseException | None]:
    """`fn` on every item at once; each one's exception (or None). On Ctrl-C the calls under way are waited
    for (those not begun are cancelled), so that undoing the run cannot race a host still being prepared."""
    pool = ThreadPoolExecutor(max_workers=max(1, min(16, len(items))))
    try:
        futures = [pool.submit(fn, item) for item in items]
        wait(futures)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    errors: list[BaseException | None] = []
    for f in futures:
        errors.append(f.exception())
    return errors


def start_run(experiment_file: Path, inventory: Path, runs_root: Path) -> Path:
    """Prepare and start a run on every host; returns the bundle directory (manifest.json written)."""
    exp = load_experiment(experiment_file)
    if exp.trainer == "emulate":
        emulated_checkpoint_bytes(exp, str(experiment_file))  # its size is checked before any host is touched
    targets = resolve_hosts(inventory, exp.hosts)
    runs_root.mkdir(parents=True, exist_ok=True)
    run_id = new_run_id(exp.name, runs_root)
    bundle = runs_root / run_id
    bundle.mkdir(mode=0o700)
    bundle.chmod(0o700)  # owner-only whatever the umask: the bundle holds the lab's facts and logs
    (bundle / "raw").mkdir(mode=0o700)
    runs = [HostRun(exp, t, run_id) for t in targets]
    manifest: dict[str, Any] = {
        "run_id": run_id,
        "complete": False,
        "state": "preparing",
        "experiment_file": str(Path(experiment_file).resolve()),
        "inventory": str(Path(inventory).resolve()),
        "experiment": exp.model_dump(mode="json"),
        "experiment_yaml": Path(experiment_file).read_text(encoding="utf-8"),
        "trainer": exp.trainer,
        "times": {"created": round(time.time(), 6)},
        "hosts": [h.record for h in runs],  # before any host is touched: what to undo if killed
        "errors": [],
    }
    with starting(bundle):
        save_manifest(bundle, manifest)
        _start_hosts(bundle, manifest, exp, runs)
    return bundle


def _start_hosts(bundle: Path, manifest: dict[str, Any], exp: Experiment, runs: list[HostRun]) -> None:
    """Prepare and start every host; on failure or Ctrl-C undo the run (hosts and bundle) and re-raise."""
    try:
        _raise_first(_parallel(HostRun.prepare, runs), runs)
        version = choose_version(exp, runs)
        manifest["llmstudio"] = {
            "version": version,
            "template": str(repo_data("templates", "llmstudio", "cfg.yaml.j2")),
        }
        if exp.trainer == "emulate":
            manifest["emulator"] = {"checkpoint_bytes": emulated_checkpoint_bytes(exp)}
        _raise_first(_parallel(lambda h: h.launch(version), runs), runs)
    except (LabctlError, KeyboardInterrupt) as exc:
        interrupted = isinstance(exc, KeyboardInterrupt)
        for h in runs:
            h.remote.close()
        manifest.update(state="interrupted before start" if interrupted else "failed to start",
                        hosts=[h.record for h in runs])
        manifest["errors"].append("interrupted (Ctrl-C) while starting" if interrupted else str(exc))
        save_manifest(bundle, manifest)
        _, left = undo(bundle, manifest, manifest["hosts"])  # stops any agent started; leaves nothing
        kept = (f"; could not remove {'; '.join(left)} (the bundle is kept: `labctl attach {bundle}` retries)"
                if left else "; nothing of it is left on the hosts or under runs/")
        if interrupted:
            raise Interrupted(
                "interrupted while the run was starting: the agents already started were stopped, so no "
                "training is left running" + kept,
                where=str(bundle),
                fix="start it again with `labctl run`",
            ) from exc
        if isinstance(exc, LabctlError):
            exc.message += f" (the run did not start{kept})"
        raise
    finally:
        for h in runs:
            h.remote.close()
    manifest.update(state="running", hosts=[h.record for h in runs], labctl_version=__version__)
    manifest["times"]["started"] = min(h.record["started_at"] for h in runs)
    save_manifest(bundle, manifest)


def _raise_first(errors: list[BaseException | None], runs: list[HostRun]) -> None:
    for err, h in zip(errors, runs, strict=True):
        if err is None:
            continue
        if isinstance(err, LabctlError):
            raise err
        raise HostError(f"{type(err).__name__}: {err}", where=h.target.name) from err

